"""Retrieval detector: needle sequences, steps, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.errors import InputError
from circuitry.scores import needle_tokens, retrieval_per_sample, score_heads


def test_needle_layout(rand_model):
    t = needle_tokens(rand_model, n=3, needle_len=6, haystack_len=40, seed=2)
    assert t.shape == (3, 1 + 6 + 40 + 6)
    assert (t[:, 0] == 0).all()
    assert torch.equal(t[:, 1:7], t[:, -6:])  # the needle comes back after the haystack
    assert (t[:, 1:] != 0).all()  # BOS never drawn


def test_hits_need_far_attention_and_matching_prediction(uniform_model):
    """Uniform attention ties: argmax is key 0 (BOS), never a needle token, so no head retrieves."""
    t = needle_tokens(uniform_model, n=2, needle_len=6, haystack_len=40)
    assert retrieval_per_sample(uniform_model, t).max() == 0.0


def test_default_recipe_and_validation(rand_model):
    s = score_heads(rand_model, "retrieval", n_samples=3, n_resamples=200)["retrieval"]
    assert s.recipe["shape"] == [3, 128]  # fills the context (n_ctx = 128)
    assert np.all((s.numpy() >= 0) & (s.numpy() <= 1))
    with pytest.raises(InputError, match="no retrieval step"):
        retrieval_per_sample(rand_model, torch.tensor([[0, 1, 2, 1, 2]]))
    with pytest.raises(InputError, match="haystack_len=10"):
        needle_tokens(rand_model, n=1, haystack_len=10)
