from __future__ import annotations

import networkx as nx
import pytest

from circuitry.errors import InputError
from circuitry.graph import EdgeValue, circuit_subgraph, prune, strongest_edges, top_paths

B = ("embed", "L1H1", "logits")
C = ("embed", "L0H0", "L1H1", "logits")
A = ("embed", "logits")


def test_prune_absolute(small_graph):
    H = prune(small_graph, threshold=0.3)
    assert set(H.edges) == {("embed", "L0H0"), ("embed", "L1H1"), ("L0H0", "L1H1"), ("L0H1", "L1H1"),
                            ("L1H1", "logits"), ("L1H0", "logits")}
    assert set(H) == {"embed", "L0H0", "L0H1", "L1H0", "L1H1", "logits"}
    assert H.graph == small_graph.graph and H.edges["embed", "L1H1"] == small_graph.edges["embed", "L1H1"]
    assert small_graph.number_of_edges() == 10  # the input is untouched


def test_prune_signed_isolated_and_per_kind(small_graph):
    H = prune(small_graph, threshold=0.3, absolute=False)
    assert ("L1H0", "logits") not in H.edges and "L1H0" not in H
    H = prune(small_graph, threshold=0.3, absolute=False, keep_isolated=True)
    assert set(H) == set(small_graph) and H.number_of_edges() == 5
    H = prune(small_graph, threshold=0.5, attr="effect_k")
    assert set(H.edges) == {("embed", "L0H0"), ("L0H0", "L1H1")}
    assert "logits" in H and "embed" in H  # the anchors stay
    H = prune(small_graph, threshold=0.1, attr="composition")
    assert set(H.edges) == {("L0H0", "L1H1"), ("embed", "L1H0")}  # NaN never passes


def test_prune_errors(small_graph):
    with pytest.raises(InputError, match="attr='effekt'"):
        prune(small_graph, threshold=0.1, attr="effekt")
    with pytest.raises(InputError, match="threshold=nan"):
        prune(small_graph, threshold=float("nan"))


@pytest.mark.parametrize(
    ("combine", "expected"),
    [("product", [(B, 0.54), (C, 0.36), (A, 0.1)]),
     ("sum", [(C, 2.2), (B, 1.5), (A, 0.1)]),
     ("min", [(B, 0.6), (C, 0.5), (A, 0.1)])],
)
def test_top_paths_exact(small_graph, combine, expected):
    paths = top_paths(small_graph, k=10, combine=combine)
    assert [p.nodes for p in paths] == [e[0] for e in expected]  # nothing through the NaN edge into L1H0
    assert [p.score for p in paths] == pytest.approx([e[1] for e in expected])


def test_top_paths_details(small_graph):
    best, second = top_paths(small_graph, k=2)
    assert best.kinds == ("v", "out") and best.values == (0.6, 0.9)
    assert second.kinds == ("k", "k", "out") and second.edges == [("embed", "L0H0"), ("L0H0", "L1H1"), ("L1H1", "logits")]
    (only,) = top_paths(small_graph, k=1, attr="effect_k", target="L1H1")
    assert only.nodes == ("embed", "L0H0", "L1H1") and only.kinds == ("k", "k") and only.score == pytest.approx(0.4)
    assert top_paths(small_graph, source="L1H2") == []


def test_top_paths_errors(small_graph):
    with pytest.raises(InputError, match="source='L9H9'"):
        top_paths(small_graph, source="L9H9")
    with pytest.raises(InputError, match="k=0"):
        top_paths(small_graph, k=0)
    with pytest.raises(InputError, match="combine='mean'"):
        top_paths(small_graph, combine="mean")
    G = nx.DiGraph()
    G.add_edge("embed", "L0H0", effect=1.0)
    G.add_edge("L0H0", "embed", effect=1.0)
    G.add_edge("L0H0", "logits", effect=1.0)
    with pytest.raises(InputError, match="cycle"):
        top_paths(G)


def test_circuit_subgraph(small_graph):
    H = circuit_subgraph(small_graph, ["embed", "L0H0", "L1H1"])
    assert set(H.edges) == {("embed", "L0H0"), ("embed", "L1H1"), ("L0H0", "L1H1")}
    H = circuit_subgraph(small_graph, [("L0H0", "L1H1"), "L0H2"])
    assert set(H.edges) == {("L0H0", "L1H1")} and set(H) == {"L0H0", "L1H1", "L0H2"}
    assert H.nodes["L0H0"]["prev_token_score"] == 0.9 and H.graph["model_id"] == "test-2l"
    H = circuit_subgraph(small_graph, top_paths(small_graph, k=2))
    assert set(H.edges) == {("embed", "L1H1"), ("L1H1", "logits"), ("embed", "L0H0"), ("L0H0", "L1H1")}
    H.edges["embed", "L1H1"]["effect"] = 5.0
    assert small_graph.edges["embed", "L1H1"]["effect"] == 0.6  # a copy, not a view
    with pytest.raises(InputError, match="L7H0"):
        circuit_subgraph(small_graph, ["L7H0"])
    with pytest.raises(InputError, match="an edge of the graph"):
        circuit_subgraph(small_graph, [("embed", "L0H1")])
    with pytest.raises(InputError, match="at least one"):
        circuit_subgraph(small_graph, [])


def test_strongest_edges(small_graph):
    assert strongest_edges(small_graph, n=3) == [
        EdgeValue("L1H1", "logits", "out", 0.9), EdgeValue("L0H0", "L1H1", "k", 0.8),
        EdgeValue("L1H0", "logits", "out", -0.7)]
    assert strongest_edges(small_graph, kind="q") == [EdgeValue("embed", "L1H1", "q", 0.2),
                                                      EdgeValue("MLP0", "L1H2", "q", 0.04)]
    assert strongest_edges(small_graph, attr="composition", n=2) == [
        EdgeValue("L0H0", "L1H1", "k", 0.3), EdgeValue("embed", "L1H0", "v", 0.2)]
    with pytest.raises(InputError, match="n=0"):
        strongest_edges(small_graph, n=0)
    with pytest.raises(InputError, match="attr="):
        strongest_edges(small_graph, attr="nope")
