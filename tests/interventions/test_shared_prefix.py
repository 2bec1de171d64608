"""Head-set ablations through the layer trie equal one plain-torch pass per set, and compute less."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from circuitry.interventions import ablate_heads
from circuitry.interventions.ablation import ablation_values
from circuitry.metrics import Targets, loss
from circuitry.models import load_model
from circuitry.prompts import induction_pairs

V, L, H = 40, 4, 4


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(5)
    module = GPT2LMHeadModel(GPT2Config(n_layer=L, n_head=H, n_embd=32, vocab_size=V, n_positions=32,
                                        bos_token_id=0, eos_token_id=0))
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.2)
    module.eval()
    model = load_model(module)
    data = induction_pairs(5, block_len=4, vocab_size=V, seed=1)
    return module, model, data.clean_ids(), Targets(*data.targets())


def _reference(module, ids, heads, value, dh):
    """One plain forward per set: pre-hooks on each c_proj overwrite the ablated heads' z."""
    def make(l):
        def fn(mod, a):
            z = a[0].clone().view(*a[0].shape[:2], H, dh)
            for hl, h in heads:
                if hl == l:
                    z[:, :, h] = value[l][..., h, :] if torch.is_tensor(value[l]) else value[l]
            return (z.view(a[0].shape),)
        return fn
    hs = [module.transformer.h[l].attn.c_proj.register_forward_pre_hook(make(l)) for l in range(L)]
    try:
        with torch.no_grad():
            return module(ids).logits
    finally:
        for h in hs:
            h.remove()


def _draws(k, n, seed):
    rng = random.Random(seed)
    heads = [(l, h) for l in range(L) for h in range(H)]
    return [rng.sample(heads, k) for _ in range(n)]


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_trie_equals_one_pass_per_set(setup, method):
    module, model, ids, t = setup
    sets = _draws(3, 40, 0) + [[(0, 1)], [(0, 1)], [(3, 2)], [(0, 0), (0, 1), (0, 2), (0, 3)], [(2, 1), (0, 3)]]
    labels = [[f"L{l}H{h}" for l, h in s] for s in sets]
    got = ablate_heads(model, ids, labels, t, method=method, metric="loss", max_rows=3 * ids.shape[0])
    vals = ablation_values(model, ids, method=method)
    dh = model.info.d_head
    for i, s in enumerate(sets):
        want = loss(_reference(module, ids, s, vals, dh), t)
        torch.testing.assert_close(got[i], want, rtol=0, atol=2e-5)
    assert (got[0] - got[1]).abs().max() > 1e-4  # different sets, different numbers


def test_trie_computes_fewer_layers_than_one_pass_per_set(setup):
    module, model, ids, t = setup
    rows = [0] * L
    hooks = [module.transformer.h[l].mlp.register_forward_hook(  # inside the layer: skipped layers do not count
        
        (lambda l: lambda mod, a, o: rows.__setitem__(l, rows[l] + a[0].shape[0]))(l)) for l in range(L)]
    sets = [[f"L{l}H{h}" for l, h in s] for s in _draws(3, 200, 1)]
    try:
        ablate_heads(model, ids, sets, t, method="mean", metric="loss")
    finally:
        for h in hooks:
            h.remove()
    n = ids.shape[0]
    full = len(sets) * n * L
    # the unablated reference runs (ablation values, resid cache) cost 2 * n * L rows
    assert sum(rows) < 0.75 * full, (rows, full)
    assert rows[0] < 0.25 * len(sets) * n  # layer 0 is computed once per distinct layer-0 ablation


def test_random_head_null_hands_the_trie_every_draw_at_once(setup):
    """A random-head test gives a HeadSetEffect its whole null in one call (``HeadSetEffect.batch_size``):
    the trie then shares more layers than in smaller calls, for the same null values."""
    from circuitry.interventions import head_set_effect_fn
    from circuitry.labels import all_heads
    from circuitry.stats import random_head_test

    module, model, ids, t = setup
    fn = head_set_effect_fn(model, ids, t, method="mean", metric="loss")
    rows, calls = [0], []
    hooks = [module.transformer.h[l].mlp.register_forward_hook(
        lambda mod, a, o: rows.__setitem__(0, rows[0] + a[0].shape[0])) for l in range(L)]
    per_prompt = fn.per_prompt
    fn.per_prompt = lambda sets: calls.append(len(sets)) or per_prompt(sets)
    out = {}
    try:
        for bs in (None, 40):
            rows[0] = 0
            out[bs] = (random_head_test(fn, ["L1H0", "L2H1", "L3H2"], all_heads(L, H), n_draws=200, rng=3,
                                        batch_size=bs), rows[0])
    finally:
        for h in hooks:
            h.remove()
    assert calls == [1, 200, 1] + [40] * 5  # the candidate, then the draws
    (whole, rows_whole), (small, rows_small) = out[None], out[40]
    assert whole.null_distribution == pytest.approx(small.null_distribution, abs=1e-5)
    assert rows_whole < 0.9 * rows_small, (rows_whole, rows_small)
