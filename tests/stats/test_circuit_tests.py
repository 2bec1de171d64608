"""Shi et al. (2024) circuit hypothesis tests on synthetic, model-free effects."""

import numpy as np
import pytest
from scipy import stats

from circuitry.errors import InputError
from circuitry.stats import (equivalence_test, minimality_test,
                             partial_necessity_test, sufficiency_test, verdict)

UNIVERSE = [(f"L{i}H{j}", "logits") for i in range(3) for j in range(8)]  # 24 edges
CIRCUIT = UNIVERSE[:3]
IMPORTANCE = {e: (4.0 if e in CIRCUIT else 0.05) for e in UNIVERSE}


def loss_fn(sets):
    """Faithfulness loss of keeping only the set: the importance it leaves out."""
    total = sum(IMPORTANCE.values())
    return [total - sum(IMPORTANCE[e] for e in s) for s in sets]


def test_sufficiency_of_a_true_circuit_reaches_the_binomial_floor():
    res = sufficiency_test(loss_fn, CIRCUIT, UNIVERSE, n_random=50, q=0.9, rng=0)
    assert res.n_beaten == 50 and res.share_beaten == 1.0
    assert res.pvalue == pytest.approx(0.9 ** 50) == res.min_attainable_pvalue
    assert res.circuit[0] == "L0H0->logits" and res.circuit_size == 3 and res.universe_size == 24
    assert verdict(res, 0.01).outcome == "supported"
    assert verdict(res, 0.001).outcome == "inconclusive"  # 0.9**50 = 0.0052 > 0.001


def test_sufficiency_of_a_random_circuit_is_not_supported():
    res = sufficiency_test(loss_fn, UNIVERSE[10:13], UNIVERSE, n_random=100, rng=1)
    assert res.n_beaten < 90 and res.pvalue > 0.5
    assert res.pvalue == pytest.approx(stats.binomtest(res.n_beaten, 100, 0.9, alternative="greater").pvalue)


def test_partial_necessity_evaluates_complements():
    seen = []
    def fn(sets):
        seen.extend(sets)
        return loss_fn(sets)
    res = partial_necessity_test(fn, CIRCUIT, UNIVERSE, n_random=30, rng=0)
    assert len(seen[0]) == 21 and not set(seen[0]) & set(CIRCUIT)  # first call: universe - circuit
    assert res.property == "partial_necessity" and res.n_beaten == 30 and res.pvalue < 0.05
    weak = partial_necessity_test(fn, UNIVERSE[10:13], UNIVERSE, n_random=30, rng=0)
    assert weak.pvalue > 0.5


def test_custom_sampler_is_used_and_checked():
    always = lambda gen: UNIVERSE[20:23]
    res = sufficiency_test(loss_fn, CIRCUIT, UNIVERSE, n_random=10, sampler=always, rng=0)
    assert len(set(res.null_distribution)) == 1
    with pytest.raises(InputError, match="outside universe"):
        sufficiency_test(loss_fn, CIRCUIT, UNIVERSE, n_random=5, sampler=lambda g: [("x", "y")], rng=0)


def test_minimality_flags_the_unneeded_edge():
    circuit = CIRCUIT + [UNIVERSE[5]]  # UNIVERSE[5] has importance 0.05 like every outside edge

    def score(sets):
        return [sum(IMPORTANCE[e] for e in s) for s in sets]

    res = minimality_test(score, circuit, UNIVERSE, n_random=60, q=0.9, correction="holm", rng=0)
    assert [e.rejected for e in res.edges] == [True, True, True, False]
    assert res.edges[0].delta == pytest.approx(4.0) and res.edges[3].n_beaten == 0
    assert res.n_rejected == 3 and res.pvalue == pytest.approx(1.0)  # intersection-union: the worst edge
    assert verdict(res, 0.05).outcome == "refuted"
    tight = minimality_test(score, CIRCUIT, UNIVERSE, n_random=60, rng=0)
    assert tight.pvalue == pytest.approx(0.9 ** 60) and verdict(tight, 0.01).outcome == "supported"
    # Holm over 3 equal p-values multiplies them by 3
    assert tight.edges[0].adjusted_pvalue == pytest.approx(3 * 0.9 ** 60)


def test_minimality_with_path_reference_sampler():
    def score(sets):
        return [sum(IMPORTANCE[e] for e in s) for s in sets]
    sampler = lambda gen: ([UNIVERSE[10], UNIVERSE[11]], UNIVERSE[11])
    res = minimality_test(score, CIRCUIT, UNIVERSE, n_random=20, reference_sampler=sampler, rng=0)
    assert res.reference_deltas == pytest.approx([0.05] * 20)
    with pytest.raises(InputError, match="knocked"):
        minimality_test(score, CIRCUIT, UNIVERSE, n_random=2, reference_sampler=lambda g: ([UNIVERSE[10]], "x"))


def test_equivalence_tost_supports_a_faithful_circuit_and_not_a_biased_one():
    gen = np.random.default_rng(0)
    model = gen.normal(2.0, 1.0, 400)
    good = equivalence_test(model + gen.normal(0, 0.1, 400), model, epsilon=0.1, rng=0)
    assert good.null == "not_equivalent" and good.pvalue < 0.01
    biased = equivalence_test(model - 0.05 + gen.normal(0, 0.05, 400), model, rng=0)
    assert biased.share_circuit_better < 0.3 and biased.pvalue > 0.5
    # k = 200 of 400 at the boundaries: max(P[K<=200 | .6], P[K>=200 | .4])
    k = good.n_circuit_better
    assert good.pvalue == pytest.approx(max(stats.binom.cdf(k, 400, 0.6), stats.binom.sf(k - 1, 400, 0.4)))


def test_equivalence_in_shi_orientation_and_floor_with_few_prompts():
    model = np.linspace(0, 1, 20)
    res = equivalence_test(model + 1.0, model, null="equivalent", rng=0)  # circuit better on all 20
    assert res.n_circuit_better == 20
    assert res.pvalue == pytest.approx(0.6 ** 20 + 0.4 ** 20)
    few = equivalence_test(model, model + np.linspace(-0.01, 0.01, 20), rng=0)
    assert few.min_attainable_pvalue > 0.05  # 20 prompts cannot establish equivalence at 0.05
    assert verdict(few, 0.05).outcome == "inconclusive"


def test_equivalence_breaks_ties_at_random():
    x = np.ones(1000)
    res = equivalence_test(x, x, rng=0)
    assert res.n_ties == 1000 and 430 < res.n_circuit_better < 570 and res.pvalue < 0.01


@pytest.mark.parametrize("make", [
    lambda: sufficiency_test(loss_fn, CIRCUIT, UNIVERSE, n_random=10, rng=3),
    lambda: minimality_test(loss_fn, CIRCUIT, UNIVERSE, n_random=10, rng=3),
    lambda: equivalence_test([1.0, 2.0, 3.0], [1.5, 1.0, 3.0], rng=3),
])
def test_results_round_trip_through_json(make):
    res = make()
    assert type(res).model_validate_json(res.model_dump_json()) == res
    assert res.seed == 3 and res.test


@pytest.mark.parametrize("call, match", [
    (lambda: sufficiency_test(loss_fn, [("L9H9", "logits")], UNIVERSE), "not in universe"),
    (lambda: sufficiency_test(loss_fn, CIRCUIT, UNIVERSE, q=1.0), "q=1.0"),
    (lambda: sufficiency_test(loss_fn, CIRCUIT, UNIVERSE, n_random=0), "n_random"),
    (lambda: sufficiency_test(loss_fn, UNIVERSE, UNIVERSE), "all 24 elements"),
    (lambda: sufficiency_test(lambda s: [0.0], CIRCUIT, UNIVERSE, n_random=5), "one effect per set"),
    (lambda: minimality_test(loss_fn, UNIVERSE, UNIVERSE), "empty"),
    (lambda: minimality_test(_never_called, CIRCUIT, UNIVERSE, correction="fdr"), "correction"),
    (lambda: equivalence_test([1.0, 2.0], [1.0]), "paired"),
    (lambda: equivalence_test([1.0], [1.0], epsilon=0.7), "epsilon"),
])
def test_validation(call, match):
    with pytest.raises(InputError, match=match):
        call()


def _never_called(sets):
    raise AssertionError("validation must happen before any evaluation")
