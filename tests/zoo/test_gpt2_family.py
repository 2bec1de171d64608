"""The zoo trainer builds Hugging Face GPT-2 models too (family ``"gpt2"``; the P4b benchmark model)."""

from __future__ import annotations

import pytest
import torch

from circuitry.zoo.registry import load_zoo, zoo_corpus
from circuitry.zoo.train import GPT2Spec, TrainRecipe, sha256_bytes, train, weights_bytes


def _recipe(steps: int = 3) -> TrainRecipe:
    c = zoo_corpus()
    return TrainRecipe(name="gpt2-tiny", family="gpt2", model=GPT2Spec(n_layers=1, n_heads=2, d_model=16,
                       d_vocab=c.d_vocab, n_ctx=c.seq_len), corpus=c, batch_size=4, steps=steps, warmup=1,
                       eval_every=steps)


def test_gpt2_recipe_trains_reproducibly_and_loads_back(tmp_path):
    a = train(_recipe(), tmp_path / "a", progress=False)
    b = train(_recipe(), tmp_path / "b", progress=False)
    assert a.weights_sha256 == b.weights_sha256  # one thread: byte-identical
    assert a.family == "gpt2" and a.transformers_version
    module, manifest = load_zoo("gpt2-tiny", root=tmp_path / "a")
    assert type(module).__name__ == "GPT2LMHeadModel" and manifest.config["n_layers"] == 1
    assert sha256_bytes(weights_bytes(module)) == a.weights_sha256  # the tied unembedding is stored once
    assert module.lm_head.weight.data_ptr() == module.transformer.wte.weight.data_ptr()
    first = train(_recipe(steps=4), tmp_path / "c", progress=False)
    assert first.weights_sha256 != a.weights_sha256  # a different schedule trains other weights

    from circuitry.models import load_model

    model = load_model(module, bos="none")
    assert model.info.family == "gpt2" and model.info.n_heads == 2
    ids = torch.tensor([[0, 5, 6, 7, 5, 6]])
    with torch.no_grad():
        assert torch.allclose(model.run(ids).logits, module(ids).logits, atol=1e-6)


def test_gpt2_recipe_needs_a_gpt2_spec():
    from circuitry.zoo.arch import ZooConfig

    c = zoo_corpus()
    zoo = ZooConfig(n_layers=1, n_heads=2, d_model=16, d_head=8, d_vocab=c.d_vocab, n_ctx=c.seq_len)
    with pytest.raises(ValueError, match="needs model to be a GPT2Spec"):
        TrainRecipe(name="x", family="gpt2", model=zoo, corpus=c)
    with pytest.raises(ValueError, match="n_heads | d_model"):
        GPT2Spec(n_layers=1, n_heads=3, d_model=16, d_vocab=c.d_vocab, n_ctx=c.seq_len)
