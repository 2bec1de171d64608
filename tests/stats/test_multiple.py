"""Holm, Benjamini-Hochberg and Bonferroni against hand-computed values."""

import numpy as np
import pytest

from circuitry.errors import InputError
from circuitry.stats import CorrectedPValues, adjust_pvalues, correct_pvalues

P = [0.01, 0.04, 0.03, 0.005]


def test_holm_hand_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*.005=.02, 3*.01=.03, 2*.03=.06, 1*.04=.04 -> running max .06
    assert adjust_pvalues(P, method="holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_bh_hand_example():
    # m/rank * p: .005*4/1=.02, .01*4/2=.02, .03*4/3=.04, .04*4/4=.04 -> running min from the top
    assert adjust_pvalues(P, method="bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_bonferroni_caps_at_one():
    assert adjust_pvalues([0.2, 0.5, 0.01], method="bonferroni") == pytest.approx([0.6, 1.0, 0.03])


def test_holm_textbook_example():
    # Holm (1979)-style example: p = .01, .02, .03, .04, .05 -> 5p, 4p, 3p, 2p, p = .05, .08, .09, .08, .05
    # running max -> .05, .08, .09, .09, .09
    assert adjust_pvalues([0.04, 0.01, 0.05, 0.03, 0.02], method="holm") == pytest.approx(
        [0.09, 0.05, 0.09, 0.09, 0.08])


def test_holm_is_monotone_capped_and_between_raw_and_bonferroni():
    p = np.random.default_rng(0).uniform(0, 0.3, 50)
    holm = adjust_pvalues(p, method="holm")
    order = np.argsort(p)
    assert np.all(np.diff(holm[order]) >= 0)
    assert np.all(holm <= 1.0) and np.all(holm >= p)
    assert np.all(holm <= adjust_pvalues(p, method="bonferroni") + 1e-15)
    assert np.all(adjust_pvalues(p, method="bh") <= holm + 1e-15)


def test_single_pvalue_is_unchanged():
    for method in ("holm", "bh", "bonferroni"):
        assert adjust_pvalues([0.03], method=method) == pytest.approx([0.03])


def test_result_names_the_correction_and_round_trips():
    res = correct_pvalues(P, method="holm", alpha=0.05, labels=["L0H1", "L0H2", "L1H0", "L1H3"])
    assert res.method == "holm" and res.controls == "family-wise error rate"
    assert res.rejected == [True, False, False, True] and res.n_tests == 4
    assert CorrectedPValues.model_validate_json(res.model_dump_json()) == res
    assert correct_pvalues(P, method="bh").rejected == [True, True, True, True]


@pytest.mark.parametrize("pvalues, method, match", [
    ([0.1, 1.2], "holm", "not a probability"),
    ([0.1, -0.1], "bh", "not a probability"),
    ([0.1, float("nan")], "holm", "not finite"),
    ([0.1], "fdr", "method"),
    ([], "holm", "at least 1"),
])
def test_validation(pvalues, method, match):
    with pytest.raises(InputError, match=match):
        adjust_pvalues(pvalues, method=method)
    with pytest.raises(InputError, match="labels"):
        correct_pvalues([0.1, 0.2], method="holm", labels=["a"])


def test_corrected_pvalues_carry_their_floors():
    from circuitry.stats import correct_pvalues

    # 16 heads, each a sign-flip test on 4 prompts: floor 1/16 each; Holm can never reach 0.05
    r = correct_pvalues([1 / 16] * 16, method="holm", alpha=0.05, floors=[1 / 16] * 16)
    assert r.adjusted_floors == [1.0] * 16 and all(r.inconclusive) and not any(r.rejected)
    r = correct_pvalues([0.0001, 0.5], method="bh", alpha=0.05, floors=[0.0001, 0.0001])
    assert r.adjusted_floors == [0.0001, 0.0001] and r.inconclusive == [False, False] and r.rejected == [True, False]
