"""Single heads' queries, keys and values computed from a residual stream in plain torch
(:func:`circuitry.models.head_inputs.head_inputs`) equal what the adapter reads from a pass through the model,
for every family (including the zoo's shortformer positions on queries and keys, grouped-query key/value
heads, Gemma-2's offset norms); and the patched forward that uses them (greedy search, ACDC, faithfulness
curves) gives the same numbers as the adapter-only path a remote model takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.models import load_model
from circuitry.models.head_inputs import head_inputs
from tests.models import hf_families as ref


@pytest.mark.parametrize("family", ref.FAMILIES + ["zoo:attn-only-2l", "zoo:llama-2l-gqa"])
def test_head_inputs_equal_the_adapters_reads(family):
    torch.manual_seed(0)
    m = load_model(family) if family.startswith("zoo:") else load_model(ref.build(family))
    ids = torch.randint(1, 60, (3, 9))
    x = torch.randn(3, 9, m.info.d_model)
    l = m.info.n_layers - 1
    out = m.run(ids, reads=[(k, l) for k in "qkv"], start=(l, x), logits=False)
    recs = [("q", 1), ("k", 0), ("v", m.info.n_kv_heads - 1), ("q", 0), ("k", m.info.n_kv_heads - 1)]
    got = head_inputs(m, l, x, recs)
    for i, (kind, j) in enumerate(recs):
        want = out[(kind, l)][:, :, j]
        assert want.abs().max() > 1e-2  # not vacuous
        torch.testing.assert_close(got[i], want, atol=5e-6, rtol=1e-5)
    shifted = head_inputs(m, l, x + torch.randn_like(x), recs[:1])[0]  # the input matters
    assert (shifted - got[0]).abs().max() > 1e-3


@pytest.mark.parametrize("family", ["gpt2", "llama3"])
def test_patched_circuits_equal_the_adapter_only_path(family, monkeypatch):
    """A tensor-parallel or remote model gets ``None`` and runs the layer through the adapter instead."""
    import circuitry.models.head_inputs as hi
    from circuitry.discovery import prepare
    from circuitry.discovery.runs import evaluate_circuits
    from circuitry.prompts import induction_pairs

    torch.set_num_threads(1)
    m = load_model(ref.build(family))
    data = induction_pairs(4, block_len=4, vocab_size=ref.V, bos=0, seed=1)
    pr = prepare(m, data)
    keep = np.random.default_rng(0).random((3, len(pr.edges))) < np.array([[0.2], [0.5], [0.9]])
    fast = evaluate_circuits(m, pr.edges, pr.ids, pr.clean, pr.corr, keep, pr.metric, pr.targets)
    monkeypatch.setattr(hi, "head_inputs", lambda *a, **k: None)
    slow = evaluate_circuits(m, pr.edges, pr.ids, pr.clean, pr.corr, keep, pr.metric, pr.targets)
    assert fast.std() > 1e-3
    torch.testing.assert_close(fast, slow, atol=2e-5, rtol=1e-5)
