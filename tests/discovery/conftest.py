"""Fixtures: the shipped attn-only-2l with 16 induction prompt pairs, scored once per session."""

from __future__ import annotations

import pytest
import torch

REFERENCE_HEADS = ("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"])


@pytest.fixture(scope="session")
def zoo():
    from circuitry.models import load_model

    torch.set_num_threads(1)
    return load_model("zoo:attn-only-2l")


@pytest.fixture(scope="session")
def induction(zoo):
    from circuitry.prompts import make_task

    return make_task("induction", zoo, n_prompts=16, seed=0)


@pytest.fixture(scope="session")
def prepared(zoo, induction):
    from circuitry.discovery import prepare

    return prepare(zoo, induction)


@pytest.fixture(scope="session")
def scored(zoo, induction, prepared):
    from circuitry.discovery import score_edges

    return {m: score_edges(zoo, induction, method=m, prepared=prepared, progress=False, seed=0)
            for m in ("exact", "eap", "eap-ig")}


@pytest.fixture(scope="session")
def reference(prepared):
    from circuitry.discovery import induction_reference

    return prepared.edges.mask(induction_reference(*REFERENCE_HEADS))
