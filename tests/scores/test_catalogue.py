"""The head catalogue: each detector finds its head type in a hand-built model, labels nothing in random ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.errors import InputError
from circuitry.models import load_model
from circuitry.scores import (HeadScores, available_detectors, function_detector, head_significance,
                              pattern_detector, register_detector, score_heads, successor_detector)
from circuitry.scores.results import head_catalogue as catalogue

from .handbuilt import catalogue_model

NEW = ["attention_sink", "streaming", "ngram_induction", "successor", "copy_suppression", "negative_copying"]
EXPECTED = {  # detector -> the heads built to have it (tests/scores/handbuilt.py)
    "attention_sink": {"L0H2"},
    "streaming": {"L0H0", "L0H1", "L0H2", "L1H3"},  # sink + the three local heads
    "ngram_induction": {"L1H0"},
    "induction": {"L1H0", "L1H1"},  # a 3-gram head also attends to tokens after earlier occurrences
    "previous_token": {"L0H0", "L1H3"},
    "successor": {"L1H2"},
    "copy_suppression": {"L1H3"},
    "negative_copying": {"L1H3"},
    "duplicate_token": set(),
    "copying": set(),
}


@pytest.fixture(scope="module")
def handbuilt():
    torch.set_num_threads(1)
    return load_model(catalogue_model())


@pytest.fixture(scope="module")
def hand_scores(handbuilt):
    return score_heads(handbuilt, sorted(EXPECTED), n_samples=10, n_resamples=200)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detector_finds_the_head_built_for_it(hand_scores, name):
    s = hand_scores[name]
    assert set(s.significant_heads()) == EXPECTED[name], (name, s.top(5))
    for head in EXPECTED[name]:
        lay, h = int(head[1]), int(head[3])
        assert s.numpy()[lay, h] > 0.9 and s.significance.adjusted_pvalue.numpy()[lay, h] < 0.01


def test_ngram_null_separates_plain_induction(hand_scores):
    s = hand_scores["ngram_induction"]
    # the plain induction head L1H1 spreads over all unigram matches: its 3-gram mass is at its null
    assert abs(s.significance.excess.numpy()[1, 1]) < 0.05
    assert s.significance.excess.numpy()[1, 0] > 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_random_init_models_have_no_significant_head(make_zoo, seed):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=120, n_positions=128,
                                      bos_token_id=0, eos_token_id=0))
    for module in (make_zoo(seed), gpt2):
        scores = score_heads(load_model(module), available_detectors(), n_samples=10, n_resamples=100)
        assert catalogue(scores) == {}, {k: v.significant_heads() for k, v in scores.items()}
        assert all(v.significance is not None for v in scores.values())  # every built-in has a null


def test_successor_on_a_user_order(handbuilt):
    order = list(range(1, 16))
    fwd = score_heads(handbuilt, successor_detector(order, name="up"), n_resamples=100)["up"]
    back = score_heads(handbuilt, successor_detector(order[::-1], name="down"), n_resamples=100)["down"]
    assert fwd.significant_heads() == ["L1H2"] and fwd.numpy()[1, 2] == 1.0
    assert back.significant_heads() == [] and back.numpy()[1, 2] == 0.0
    with pytest.raises(InputError, match="order"):
        successor_detector([3, 3, 4])


def test_significance_floor_and_flat_heads():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.01, size=(20, 1, 3))
    x[:, 0, 0] += 0.05  # consistently above the null, but by less than the floor
    x[:, 0, 1] = 0.9    # identical on every sample
    sig = head_significance(x, 0.0, min_effect=0.1)
    assert sig.significant == ["L0H1"] and sig.pvalue.numpy()[0, 1] == 0.0
    assert sig.pvalue.numpy()[0, 0] > 0.5
    assert head_significance(x, 0.0, min_effect=0.01).significant == ["L0H1", "L0H0"]
    with pytest.raises(InputError, match="broadcast"):
        head_significance(x, np.zeros(5))


def test_user_detector_registers_in_a_few_lines(handbuilt):
    def two_back(tokens):  # attention to the token two positions back
        n, p = tokens.shape
        return torch.diag_embed(torch.ones(n, p - 2), offset=-2)

    register_detector(pattern_detector("two_back", two_back, description="attention from i to i-2"), overwrite=True)
    s = score_heads(handbuilt, "two_back", n_resamples=100)["two_back"]
    assert s.significant_heads() == ["L0H1"]
    # a function detector without a null is reported, never labelled
    plain = function_detector("q_norm_free", lambda m, t: np.ones((t.shape[0], 2, 4)), description="constant")
    assert score_heads(handbuilt, plain, n_resamples=100)["q_norm_free"].significance is None


def test_scores_with_significance_round_trip(hand_scores):
    s = hand_scores["successor"]
    again = HeadScores.model_validate_json(s.model_dump_json())
    assert again == s and again.significance.method == "holm" and again.significance.controls
    cat = catalogue(hand_scores)
    assert cat["L1H3"] == ["copy_suppression", "negative_copying", "previous_token", "streaming"]
    assert "L0H3" not in cat  # the all-zero head gets no label


def test_ablation_effect_on_the_zoo_model():
    """Mean-ablating the previous-token head or an induction head raises the loss on repeated tokens."""
    s = score_heads(load_model("zoo:attn-only-2l"), "ablation_loss", n_resamples=100)["ablation_loss"]
    sig = s.significant_heads()
    assert sig[0] == "L0H3" and s.numpy()[0, 3] > 1.0
    assert {"L1H0", "L1H2", "L1H5"} <= set(sig)
    assert s.significance.min_effect == 0.05
