"""Headline claims on the shipped zoo:attn-only-2l (skipped until its checkpoint is committed).

Issue 3 "done when": the best layer-1 prefix-matching head and the best layer-0 previous-token head
stand far above every other head; the largest K-composition scores run from that previous-token head
into layer-1 induction heads, well above the random baseline, while Q and V composition of those
pairs stay near baseline.
"""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.scores import all_composition_scores, icl_score, score_heads


@pytest.fixture(scope="module")
def zoo_scores(zoo_model):
    heads = score_heads(zoo_model, ["previous_token", "induction"], n_samples=10, seed=0, n_resamples=500)
    comp = all_composition_scores(zoo_model, n_baseline=500, seed=0)
    return heads, comp


def _best_and_rest(arr: np.ndarray, layer: int) -> tuple[float, float]:
    flat = arr.copy()
    best = float(np.nanmax(flat[layer]))
    flat[layer, int(np.nanargmax(flat[layer]))] = np.nan
    return best, float(np.nanmax(flat))


def test_previous_token_head_stands_out(zoo_scores):
    prev = zoo_scores[0]["previous_token"].numpy()
    best, rest = _best_and_rest(prev, 0)
    assert best > 0.5 and best > 2 * rest


def test_induction_heads_stand_out(zoo_scores):
    ind = zoo_scores[0]["induction"]
    row = ind.numpy()[1]
    high, low = row[row >= 0.5], row[row < 0.5]
    assert 1 <= len(high) <= 4 and len(low) >= 4  # induction heads coexist with other heads in layer 1
    assert high.min() > low.max() + 0.3           # and stand far above every non-induction head
    lo = ind.ci_low.numpy()[1][row >= 0.5]
    assert lo.min() > low.max()                   # the intervals clear every other head


def test_k_composition_runs_from_prev_token_head_into_induction_heads(zoo_scores):
    heads, comp = zoo_scores
    prev_head = heads["previous_token"].best(layer=0)
    ind = heads["induction"].numpy()
    K = comp["K"]
    src, dst, raw, above = K.pairs(1)[0]
    assert src == prev_head
    assert ind[1, int(dst.split("H")[1])] > 0.3
    assert above > 10 * K.baseline_std
    for kind in "QV":  # K-composition dominates: Q and V stand at most half as far above their baselines
        c = comp[kind]
        assert c.score(src, dst) - c.baseline_mean < above / 2


def test_icl_score_is_negative(zoo_model):
    s = icl_score(zoo_model, n_samples=16, n_resamples=500)
    assert s.ci_high < 0
