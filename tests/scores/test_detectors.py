"""Pattern and function detectors, the registry, validation, intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.errors import InputError
from circuitry.scores import (HeadScores, available_detectors, function_detector, pattern_detector,
                              register_detector, score_heads)
from circuitry.scores.detectors import duplicate_token_target, induction_target, previous_token_target


def test_targets_on_a_small_sequence():
    toks = torch.tensor([[0, 7, 8, 7, 8]])
    ind = induction_target(toks)[0]
    assert ind.nonzero().tolist() == [[3, 2], [4, 3]]  # 7 at 3 -> 8 at 2; 8 at 4 -> 7 at 3
    assert duplicate_token_target(toks)[0].nonzero().tolist() == [[3, 1], [4, 2]]
    assert previous_token_target(toks)[0].nonzero().tolist() == [[1, 0], [2, 1], [3, 2], [4, 3]]


def _distinct_repeat(block: int, repeats: int, n: int = 3) -> torch.Tensor:
    rows = [[0] + [1 + ((j + 5 * i) % 150) for j in range(block)] * repeats for i in range(n)]
    return torch.tensor(rows)


def test_uniform_attention_gives_the_analytic_scores(uniform_model):
    """With W_Q = 0 every head attends uniformly to positions 0..q, so a query at q puts 1/(q+1) on each key."""
    B = 20
    toks = _distinct_repeat(B, 2)
    s = score_heads(uniform_model, ["previous_token", "induction", "duplicate_token"], tokens=toks, n_resamples=200)
    P = toks.shape[1]
    prev = np.mean([1 / (q + 1) for q in range(1, P)])
    later = np.mean([1 / (q + 1) for q in range(1 + B, P)])  # one target per later-repeat query
    np.testing.assert_allclose(s["previous_token"].numpy(), prev, rtol=1e-5)
    np.testing.assert_allclose(s["induction"].numpy(), later, rtol=1e-5)
    np.testing.assert_allclose(s["duplicate_token"].numpy(), later, rtol=1e-5)
    assert s["induction"].n_samples == 3 and s["induction"].recipe["user_tokens"] is True


def test_custom_pattern_and_function_detectors(uniform_model):
    def to_bos(tokens):
        T = torch.zeros(tokens.shape[0], tokens.shape[1], tokens.shape[1])
        T[:, :, 0] = 1
        return T

    def layer_index(model, tokens):
        return np.broadcast_to(np.arange(model.info.n_layers)[None, :, None],
                               (tokens.shape[0], model.info.n_layers, model.info.n_heads)).copy()

    bos = pattern_detector("test_bos", to_bos, description="attention to BOS")
    fn = register_detector(function_detector("test_layer", layer_index, description="layer index"), overwrite=True)
    assert "test_layer" in available_detectors()
    toks = _distinct_repeat(10, 2)
    s = score_heads(uniform_model, [bos, "test_layer"], tokens=toks, n_resamples=200)
    P = toks.shape[1]
    np.testing.assert_allclose(s["test_bos"].numpy(), np.mean([1 / (q + 1) for q in range(P)]), rtol=1e-5)
    assert s["test_layer"].numpy().tolist() == [[0.0] * 8, [1.0] * 8]
    with pytest.raises(InputError, match="already registered"):
        register_detector(fn)


def test_recipe_defaults_intervals_and_round_trip(rand_model, tmp_path):
    s = score_heads(rand_model, "induction", n_samples=6, n_resamples=300, seed=3)["induction"]
    per = s.per_sample.numpy()
    assert per.shape == (6, 2, 8)
    assert s.recipe["block_len"] == 25 and s.recipe["repeats"] == 4 and s.recipe["shape"] == [6, 101]
    np.testing.assert_allclose(s.numpy(), per.mean(0))
    assert np.all(s.ci_low.numpy() <= s.numpy()) and np.all(s.numpy() <= s.ci_high.numpy())
    assert np.all(s.ci_high.numpy() - s.ci_low.numpy() > 0)
    assert s.provenance.seed == 3 and len(s.provenance.dataset_sha256) == 64
    assert HeadScores.model_validate_json(s.model_dump_json()) == s
    assert s.heatmap(tmp_path / "ind.png").stat().st_size > 1000
    again = score_heads(rand_model, "induction", n_samples=6, n_resamples=300, seed=3)["induction"]
    assert again.values == s.values  # same seed, same sequences


def test_validation_before_work(rand_model):
    with pytest.raises(InputError, match="detector='nope'"):
        score_heads(rand_model, ["nope"])
    with pytest.raises(InputError, match="block_len=0"):
        score_heads(rand_model, block_len=0)
    with pytest.raises(InputError, match="n_ctx=128"):
        score_heads(rand_model, block_len=40, repeats=4)
    with pytest.raises(InputError, match=r"ids in \[0, 200\)"):
        score_heads(rand_model, tokens=torch.tensor([[0, 5, 300]]))
    with pytest.raises(InputError, match="selects no query position in any"):
        score_heads(rand_model, "induction", tokens=torch.tensor([[0, 1, 2, 3]]))
    # a sequence without a repeated token is left out, the other one counts
    s = score_heads(rand_model, "induction", tokens=torch.tensor([[0, 1, 2, 3], [0, 1, 2, 1]]))["induction"]
    assert s.n_samples == 1 and s.per_sample.shape == (1, 2, 8)
