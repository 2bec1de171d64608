"""Fixtures: a random-init 2-layer x 8-head zoo-architecture model (the shipped model's shape) and a tiny
random GPT-2 saved as a Hugging Face directory (so a claim file's `model:` can name it in a subprocess)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def random_2l():
    from circuitry.models import load_model
    from circuitry.zoo.arch import ZooConfig, ZooTransformer

    torch.manual_seed(0)
    module = ZooTransformer(ZooConfig(n_layers=2, n_heads=8, d_model=64, d_head=8, d_vocab=100, n_ctx=40)).eval()
    return load_model(module)


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    m = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=60, n_positions=24,
                                   bos_token_id=0, eos_token_id=0)).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    path = tmp_path_factory.mktemp("gpt2")
    m.save_pretrained(path)
    return path
