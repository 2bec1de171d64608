"""Random-head baseline: calibration under a true null, exact enumeration, p-value floor, verdicts."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from circuitry.errors import InputError
from circuitry.labels import all_heads, parse_head
from circuitry.stats import RandomHeadTest, monte_carlo_pvalue, random_head_test, verdict


def additive_effect_fn(weights, noise_gen=None, sd=0.3):
    """Ablating a set costs the sum of its heads' weights, plus evaluation noise."""
    def fn(sets):
        out = np.array([sum(weights[h] for h in s) for s in sets], dtype=float)
        if noise_gen is not None:
            out += noise_gen.normal(0.0, sd, len(sets))
        return out
    return fn


def rejection_rate(n_layers, n_heads, k, *, n_draws, reps=400, seed=0, weights=None, **kw):
    heads = all_heads(n_layers, n_heads)
    gen = np.random.default_rng(seed)
    if weights is None:
        weights = dict(zip(heads, gen.gamma(2.0, 1.0, len(heads))))
    hits, last = 0, None
    for r in range(reps):
        cand = list(gen.choice(heads, k, replace=False))  # the null: the candidate is a random set
        fn = additive_effect_fn(weights, np.random.default_rng(10_000 + r))
        last = random_head_test(fn, cand, heads, n_draws=n_draws, rng=r, **kw)
        hits += last.pvalue <= 0.05
    return hits, reps, last


def calibrated(hits, reps, level=0.05):
    return stats.binomtest(hits, reps, level).pvalue > 0.001


def test_exact_null_is_calibrated_for_random_candidates():
    hits, reps, last = rejection_rate(2, 8, 2, n_draws=1000)
    assert last.exact and last.n_distinct_sets == 120
    assert calibrated(hits, reps), hits / reps


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_sampled_null_is_calibrated_for_random_candidates(alternative):
    hits, reps, last = rejection_rate(4, 12, 3, n_draws=199, alternative=alternative, seed=1)
    assert not last.exact and last.n_draws == 199
    assert calibrated(hits, reps), (alternative, hits / reps)


def test_layer_matched_null_is_calibrated():
    hits, reps, last = rejection_rate(3, 6, 3, n_draws=199, match="layer", seed=2)
    assert calibrated(hits, reps), hits / reps


def test_excluding_candidates_is_anticonservative_with_a_dominant_head():
    # The documented failure mode: with one dominant head, any candidate containing it beats every
    # draw from the *other* heads, so the random-candidate null is rejected too often.
    heads = all_heads(2, 8)
    weights = {h: 1.0 for h in heads}
    weights["L1H0"] = 50.0
    excl, reps, _ = rejection_rate(2, 8, 2, n_draws=1000, weights=weights, exclude_candidates=True, seed=3)
    incl, _, _ = rejection_rate(2, 8, 2, n_draws=1000, weights=weights, exclude_candidates=False, seed=3)
    assert excl / reps > 0.10  # ~2/16 candidates contain the dominant head, plus the nominal 5% of the rest
    assert calibrated(incl, reps), incl / reps


def brute_force_pvalue(weights, cand, heads, *, exclude, layer):
    cand_labels = tuple(sorted(cand, key=parse_head))
    pool = [h for h in heads if not (exclude and h in cand)]
    per_layer = sorted(parse_head(h)[0] for h in cand)
    sets = []
    for combo in itertools.combinations(pool, len(cand)):
        if layer and sorted(parse_head(h)[0] for h in combo) != per_layer:
            continue
        sets.append(tuple(sorted(combo, key=parse_head)))
    obs = sum(weights[h] for h in cand_labels)
    values = [sum(weights[h] for h in s) for s in sets]
    if not exclude:
        # the classical randomization p-value: share of ALL admissible sets (candidate included) >= observed
        return len(sets), sum(v >= obs for v in values) / len(sets), values
    return len(sets), (1 + sum(v >= obs for v in values)) / (1 + len(sets)), values


@pytest.mark.parametrize("exclude", [False, True])
@pytest.mark.parametrize("match", ["all", "layer"])
def test_exact_enumeration_matches_brute_force(exclude, match):
    heads = all_heads(3, 4)
    gen = np.random.default_rng(4)
    weights = dict(zip(heads, np.round(gen.normal(0, 1, len(heads)), 3)))
    cand = ["L0H1", "L2H3", "L2H0"]
    res = random_head_test(additive_effect_fn(weights), cand, heads, exact="always", match=match,
                           exclude_candidates=exclude, rng=0)
    n_sets, p, values = brute_force_pvalue(weights, cand, heads, exclude=exclude, layer=match == "layer")
    assert res.enumerated and res.n_distinct_sets == n_sets
    assert res.exact is (not exclude)  # a candidate outside the enumerated population is never "exact"
    assert res.null == ("other-heads" if exclude else "layer" if match == "layer" else "pool")
    assert res.pvalue == pytest.approx(p)
    expected_null = sorted(values) if exclude else sorted(values)
    if not exclude:  # the candidate's own set is the observation, not part of the null
        expected_null.remove(sum(weights[h] for h in cand))
    assert sorted(res.null_distribution) == pytest.approx(expected_null)
    assert res.rank_floor == pytest.approx(1 / (1 + len(expected_null)))
    # the other-heads rank is descriptive: floor 1, so verdict() can never call it supported
    assert res.calibrated is (not exclude)
    assert res.min_attainable_pvalue == (1.0 if exclude else pytest.approx(1 / (1 + len(expected_null))))


def test_set_counts_for_a_16_head_model():
    fn = additive_effect_fn({h: 0.0 for h in all_heads(2, 8)})
    assert random_head_test(fn, ["L1H3", "L1H5"], all_heads(2, 8), rng=0).n_distinct_sets == 120
    assert random_head_test(fn, ["L1H3", "L1H5"], all_heads(2, 8), exclude_candidates=True,
                            rng=0).n_distinct_sets == math.comb(14, 2)
    assert random_head_test(fn, ["L0H1", "L1H5"], all_heads(2, 8), match="layer", rng=0).n_distinct_sets == 64


def test_strong_effect_reaches_the_resolution_limit_and_no_further():
    heads = all_heads(4, 12)
    weights = {h: 0.01 for h in heads}
    weights.update({"L1H3": 5.0, "L2H7": 5.0, "L3H1": 5.0})
    fn = additive_effect_fn(weights, np.random.default_rng(0), sd=0.01)
    sampled = random_head_test(fn, ["L1H3", "L2H7", "L3H1"], heads, n_draws=99, exclude_candidates=True, rng=0)
    assert not sampled.exact and sampled.pvalue == pytest.approx(1 / 100) == sampled.rank_floor
    assert not sampled.calibrated and sampled.min_attainable_pvalue == 1.0
    assert sampled.effect_size > 50
    small = {h: 0.01 for h in all_heads(2, 8)} | {"L1H3": 5.0, "L1H5": 5.0}
    exact = random_head_test(additive_effect_fn(small), ["L1H3", "L1H5"], all_heads(2, 8), rng=0)
    assert exact.exact and exact.pvalue == pytest.approx(1 / 120) == exact.min_attainable_pvalue


def test_verdict_is_inconclusive_below_the_floor_never_supported():
    small = {h: 0.01 for h in all_heads(2, 8)} | {"L1H3": 5.0, "L1H5": 5.0}
    res = random_head_test(additive_effect_fn(small), ["L1H3", "L1H5"], all_heads(2, 8), rng=0)
    low = verdict(res, 0.001)
    assert low.outcome == "inconclusive" and "below the smallest attainable p-value" in low.reason
    assert verdict(res, 0.01).outcome == "supported"
    null_cand = random_head_test(additive_effect_fn(small), ["L0H0", "L0H1"], all_heads(2, 8), rng=0)
    assert verdict(null_cand, 0.05).outcome == "refuted" and null_cand.pvalue > 0.5


def test_effect_fn_called_once_for_candidate_then_in_batches():
    calls = []
    def fn(sets):
        calls.append(len(sets))
        return np.zeros(len(sets))
    res = random_head_test(fn, ["L0H0"], all_heads(4, 12), n_draws=300, batch_size=128, exact="never", rng=0)
    assert calls == [1, 128, 128, 44] and res.n_draws == 300
    assert res.pvalue == 1.0  # all ties count against the claim


def test_null_summary_fields():
    heads = all_heads(4, 12)
    w = dict(zip(heads, np.linspace(0, 1, len(heads))))
    res = random_head_test(additive_effect_fn(w), ["L3H11"], heads, n_draws=500, exact="never", rng=1)
    null = np.array(res.null_distribution)
    assert res.null_mean == pytest.approx(null.mean()) and res.null_std == pytest.approx(null.std(ddof=1))
    assert res.null_quantiles["0.5"] == pytest.approx(np.median(null))
    assert res.effect_size == pytest.approx((1.0 - null.mean()) / null.std(ddof=1))


def test_monte_carlo_pvalue_hand_values():
    null = np.array([1.0, 2.0, 3.0, 4.0])
    assert monte_carlo_pvalue(3.0, null, alternative="greater") == pytest.approx(3 / 5)  # 1 + {3, 4}
    assert monte_carlo_pvalue(3.0, null, alternative="less") == pytest.approx(4 / 5)  # 1 + {1, 2, 3}
    # centre = mean(3, 1, 2, 3, 4) = 2.6; |obs - c| = 0.4; |null - c| = 1.6, .6, .4, 1.4 -> all 4 count
    assert monte_carlo_pvalue(3.0, null, alternative="two-sided") == pytest.approx(1.0)
    assert monte_carlo_pvalue(10.0, null, alternative="two-sided") == pytest.approx(1 / 5)


def test_result_round_trips_through_json_with_huge_set_counts():
    heads = all_heads(12, 12)
    cand = [f"L{i}H0" for i in range(10)]
    res = random_head_test(lambda s: np.ones(len(s)), cand, heads, n_draws=20, rng=9)
    assert res.n_distinct_sets == math.comb(144, 10)
    assert RandomHeadTest.model_validate_json(res.model_dump_json()) == res


@pytest.mark.parametrize("kwargs, match", [
    ({"candidate": ["L9H0"]}, "not in the head pool"),
    ({"candidate": ["L0H1", "L0H1"]}, "twice"),
    ({"candidate": ["head3"]}, "not a head label"),
    ({"candidate": []}, "at least one head"),
    ({"n_draws": 0}, "n_draws"),
    ({"alternative": "larger"}, "alternative"),
    ({"match": "heads"}, "match"),
    ({"candidate": ["L0H0", "L0H1"], "match": "layer", "exclude_candidates": True,
      "heads": ["L0H0", "L0H1", "L1H0"]}, "no random head set"),
    ({"exact": "always", "max_enumerate": 10}, "max_enumerate"),
])
def test_validation_errors_name_the_problem(kwargs, match):
    args = {"candidate": ["L0H1"], "heads": all_heads(2, 8)} | kwargs
    cand, heads = args.pop("candidate"), args.pop("heads")
    with pytest.raises(InputError, match=match):
        random_head_test(lambda s: np.zeros(len(s)), cand, heads, **args)


def test_wrong_effect_fn_output_is_reported():
    with pytest.raises(InputError, match="one effect per set"):
        random_head_test(lambda s: [0.0], ["L0H1"], all_heads(2, 8), rng=0)
    with pytest.raises(InputError, match="non-finite"):
        random_head_test(lambda s: [float("nan")] * len(s), ["L0H1"], all_heads(2, 8), rng=0)
