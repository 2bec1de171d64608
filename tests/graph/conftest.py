"""Fixtures of the graph tests (cases in graph_cases.py)."""

import pytest
from tests.graph.graph_cases import make_small_graph


@pytest.fixture
def small_graph():
    return make_small_graph()
