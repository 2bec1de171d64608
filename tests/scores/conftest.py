"""Fixtures for the score tests: a random-init zoo model, hand-built models, the shipped zoo model."""

from __future__ import annotations

import pytest
import torch

from circuitry.models import load_model
from circuitry.zoo.arch import ZooConfig, ZooTransformer


def random_zoo(seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = dict(n_layers=2, n_heads=8, d_model=64, d_head=16, d_vocab=200, n_ctx=128)
    cfg.update(kw)
    return ZooTransformer(ZooConfig(**cfg))


@pytest.fixture(scope="session")
def make_zoo():
    """``make_zoo(seed, **config overrides)`` -> a random-initialized ZooTransformer."""
    return random_zoo


@pytest.fixture(scope="session")
def rand_model():
    """Random-initialized 2-layer attention-only zoo model (8 heads, d_model 64)."""
    return load_model(random_zoo())


@pytest.fixture(scope="session")
def uniform_model():
    """Random model with W_Q = 0 and b_Q = 0: every head attends uniformly to the causal prefix."""
    m = random_zoo(1)
    with torch.no_grad():
        for block in m.blocks:
            block.attn.q_proj.weight.zero_()
            block.attn.q_proj.bias.zero_()
    return load_model(m)


@pytest.fixture(scope="session")
def zoo_model():
    """The shipped attn-only-2l (a missing or corrupted checkpoint fails the tests that use it)."""
    return load_model("zoo:attn-only-2l")
