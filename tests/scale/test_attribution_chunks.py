"""EAP and EAP-IG scored in chunks of prompts and groups of receiver layers (the memory bound of
circuitry.discovery.attribution, docs/scale.md) give the scores of one pass over everything; the plan keeps
every group's gradients within the budget and the benchmark's plain-torch EAP-IG agrees with circuitry's."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from circuitry.discovery import prepare
from circuitry.discovery.attribution import attribution_per_prompt, attribution_plan, receiver_blocks
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from tests.models import hf_families as fams


@pytest.fixture(scope="module", params=["gpt2", "llama3"])
def setup(request):
    torch.set_num_threads(1)
    model = load_model(fams.build(request.param))
    data = induction_pairs(5, block_len=4, vocab_size=fams.V, bos=0, seed=3)
    return model, prepare(model, data)


@pytest.mark.parametrize("steps", [None, 3])
def test_chunked_scores_equal_one_pass(setup, steps):
    model, pr = setup
    args = (model, pr.edges, pr.ids, pr.clean, pr.corr, pr.metric, pr.targets)
    whole = attribution_per_prompt(*args, steps=steps, progress=False, chunk=5, budget=2**40)
    n, p = pr.ids.shape
    one_block = max(receiver_blocks(pr.edges).values()) * 2 * p * model.info.d_model * 4
    chunk, groups = attribution_plan(pr.edges, n, p, model.info.d_model, chunk=2, budget=one_block)
    assert chunk == 2 and len(groups) > 2  # the layers really are split: every group alone
    split = attribution_per_prompt(*args, steps=steps, progress=False, chunk=2, budget=one_block)
    assert float(whole.abs().max()) > 1e-3
    np.testing.assert_allclose(split.numpy(), whole.numpy(), atol=1e-6, rtol=1e-5)


def test_plan_respects_the_budget(setup):
    model, pr = setup
    n, p, d = 64, 16, model.info.d_model
    blocks = receiver_blocks(pr.edges)
    assert sum(blocks.values()) == len(pr.edges.receivers)
    for budget in (2**16, 2**20, 2**24):
        chunk, groups = attribution_plan(pr.edges, n, p, d, budget=budget)
        assert sorted(r for g in groups for r in g) == sorted(blocks)
        for g in groups:  # a group over budget holds a single block (no smaller unit exists)
            assert len(g) == 1 or sum(blocks[r] for r in g) * chunk * p * d * 4 <= budget


def test_benchmark_reference_matches_eap_ig():
    """benchmarks/reference.py's plain-torch EAP-IG (its own per-receiver copies of the residual stream,
    no circuitry code) against score_edges on a small GPT-2: every edge, every prompt."""
    from benchmarks import reference as ref
    from benchmarks.bench_discovery import _pairs
    from benchmarks.workloads import gpt2
    from circuitry.discovery import score_edges

    torch.set_num_threads(1)
    module = gpt2(2, 4, 32, 200, seed=1)
    model = load_model(copy.deepcopy(module), bos="none")
    data = _pairs(6, 12, 200, 1)
    got = score_edges(model, data, method="eap-ig", steps=3, progress=False)
    pos, ans, foil = data.targets()
    want = ref.eap_ig(ref.RefModel(module), data.clean_ids(), data.corrupted_ids(), pos, ans, foil, steps=3, chunk=4)
    assert set(want) == set(got.edges)
    w = np.stack([want[k].numpy() for k in got.edges])
    assert np.abs(w).max() > 1e-3
    np.testing.assert_allclose(got.per_prompt.numpy(), w, atol=1e-5)
