"""Copying score and OV eigenvalue positivity on hand-built models with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.models import load_model
from circuitry.scores import ov_eigenvalue_positivity, score_heads
from circuitry.zoo.arch import ZooConfig, ZooTransformer


def _identity_model(sign: float) -> ZooTransformer:
    """One head, W_E = W_U = I, W_OV = sign * I (one-hot tokens in a 16-dim stream)."""
    cfg = ZooConfig(n_layers=1, n_heads=1, d_model=16, d_head=16, d_vocab=16, n_ctx=16, normalization="none")
    m = ZooTransformer(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.embed.weight.copy_(torch.eye(16))
        m.unembed.weight.copy_(torch.eye(16))
        m.blocks[0].attn.v_proj.weight.copy_(torch.eye(16))
        m.blocks[0].attn.o_proj.weight.copy_(sign * torch.eye(16))
    return m


@pytest.mark.parametrize("sign,expected", [(1.0, 1.0), (-1.0, 0.0)])
def test_copying_score_known_answer(sign, expected):
    """Every key holds token 5: a copier raises only token 5 (share 1), an anti-copier lowers it (share 0)."""
    model = load_model(_identity_model(sign))
    toks = torch.full((3, 10), 5)
    s = score_heads(model, "copying", tokens=toks, n_resamples=200)["copying"]
    assert s.numpy()[0, 0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_ov_positivity_known_answer(sign):
    assert ov_eigenvalue_positivity(load_model(_identity_model(sign))).numpy()[0, 0] == pytest.approx(sign)


def test_ov_positivity_matches_full_vocab_eigenvalues(rand_model):
    w = rand_model.weights(fold_ln=True)
    got = ov_eigenvalue_positivity(rand_model).numpy()
    for layer, head in [(0, 0), (1, 5)]:
        full = w.W_E.double() @ w.W_OV[layer, head].double() @ w.W_U.double()  # [vocab, vocab]
        lam = torch.linalg.eigvals(full)
        ref = float(lam.sum().real / lam.abs().sum())
        assert got[layer, head] == pytest.approx(ref, abs=1e-6)
    assert np.all(np.abs(got) <= 1)


def test_copying_on_random_tokens_is_in_range(rand_model):
    s = score_heads(rand_model, "copying", n_samples=3, block_len=10, repeats=2, n_resamples=200)["copying"]
    assert s.recipe["shape"] == [3, 21]  # plain random tokens, same length as the repeated recipe
    assert np.all((s.numpy() >= 0) & (s.numpy() < 0.05))  # random heads barely favour the attended token
