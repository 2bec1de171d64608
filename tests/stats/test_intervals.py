"""Intervals chosen by n cover at small n, for symmetric and skewed data; one-sided mean tests hold their size;
shares test their gap first; the studentized sign-flip statistic orders sign patterns like the mean."""

import numpy as np
import pytest
from scipy import stats

from circuitry.errors import InputError
from circuitry.stats import bootstrap_ci, fieller_interval, mean_interval, mean_test, share_test
from circuitry.stats.intervals import choose_method
from circuitry.stats.prompt_effects import signflip_pvalue

R = 2000  # binomial sd of a 0.95 coverage: 0.5 points, so [0.92, 0.97] is 6 sd below and 4 sd above
DATA = {"normal": (lambda g, n: g.normal(0.0, 1.0, n), 0.0), "exponential": (lambda g, n: g.exponential(1.0, n), 1.0)}


@pytest.mark.parametrize("n", [16, 64])
@pytest.mark.parametrize("dist", sorted(DATA))
def test_auto_interval_covers_at_small_n(dist, n):
    draw, mu = DATA[dist]
    gen = np.random.default_rng(n)
    hits = 0
    for _ in range(R):
        lo, hi, _, used = mean_interval(draw(gen, n), confidence_level=0.95, n_resamples=999, rng=gen)
        hits += lo <= mu <= hi
    assert used == "studentized"
    assert 0.92 <= hits / R <= 0.97, (dist, n, hits / R)


def test_method_by_n_and_statistic():
    assert choose_method(5) == "t" and choose_method(8) == "studentized"
    assert bootstrap_ci(np.arange(6.0), method="auto", rng=0).method == "t"
    assert bootstrap_ci(np.arange(20.0), method="auto", rng=0).method == "studentized"
    assert bootstrap_ci(np.arange(20.0), statistic="median", method="auto", n_resamples=200, rng=0).method == "BCa"
    t = bootstrap_ci(np.arange(6.0), method="t", rng=0).confidence_interval
    ref = stats.ttest_1samp(np.arange(6.0), 0).confidence_interval(0.95)
    assert (t.low, t.high) == pytest.approx((ref.low, ref.high))
    with pytest.raises(InputError, match="method"):
        bootstrap_ci(np.arange(20.0), statistic="median", method="studentized")


def test_one_sided_mean_test_has_its_size_and_matches_its_bound():
    gen = np.random.default_rng(7)
    rej = 0
    for _ in range(600):
        res = mean_test(gen.normal(0.0, 1.0, 16), threshold=0.0, confidence_level=0.95, n_resamples=499, rng=gen)
        rej += res.pvalue <= 0.05
        assert (res.bound > 0) == (res.pvalue <= 0.05) or abs(res.bound) < 0.05  # bound and p agree
    assert stats.binomtest(rej, 600, 0.05).pvalue > 0.001, rej / 600
    t = mean_test([1.0, 2.0, 2.5, 3.0], threshold=0.0, method="t")
    assert t.min_attainable_pvalue == 0.0
    assert t.pvalue == pytest.approx(stats.ttest_1samp([1.0, 2.0, 2.5, 3.0], 0.0, alternative="greater").pvalue)


def test_fieller_is_unbounded_exactly_when_the_gap_is_unresolved():
    gen = np.random.default_rng(3)
    for _ in range(50):
        b = gen.normal(gen.uniform(-1, 1), 1.0, 12)
        a = 0.5 * b + gen.normal(0, 0.3, 12)
        gap = stats.ttest_1samp(b, 0.0).confidence_interval(0.95)
        r = fieller_interval(a, b, confidence_level=0.95)
        assert (r.kind == "bounded") == (gap.low > 0 or gap.high < 0)
        if r.kind == "bounded":
            assert r.low <= a.mean() / b.mean() <= r.high


def share_data(n, share=0.8, gap=3.0, seed=0):
    g = np.random.default_rng(seed)
    clean = gap + g.normal(0, 0.3, n)
    corrupted = g.normal(0, 0.3, n)
    return clean - share * (clean - corrupted) + g.normal(0, 0.05, n), clean, corrupted


@pytest.mark.parametrize("n", [2, 3, 5])
def test_share_on_few_prompts_is_inconclusive(n):
    res = share_test(*share_data(n), min_share=0.5, alpha=0.05, rng=0)
    assert res.outcome == "inconclusive"
    assert res.effect_floor == 0.0 and "Hall" in res.test  # the site's effect test has no floor


def test_share_of_a_zero_straddling_gap_is_inconclusive_not_a_number():
    p, c, k = share_data(30, gap=0.0, seed=1)
    res = share_test(p, c, k, min_share=0.5, alpha=0.05, rng=0)
    assert not res.gap.resolved and res.share is None and res.interval.kind == "unbounded"
    assert res.outcome == "inconclusive" and "gap is unresolved" in res.reason
    assert type(res).model_validate_json(res.model_dump_json()) == res  # no NaN/inf in the JSON


def test_share_supported_and_refuted_with_resolved_gap():
    ok = share_test(*share_data(24), min_share=0.5, alpha=0.01, rng=0)
    assert ok.outcome == "supported" and ok.at_least.bound > 0 and ok.interval.low > 0.5
    assert ok.pvalue == max(ok.gap.pvalue, ok.at_least.pvalue, ok.effect_pvalue)
    low = share_test(*share_data(24, share=0.2), min_share=0.5, alpha=0.01, rng=0)
    assert low.outcome == "refuted" and low.interval.high < 0.5


def test_studentized_signflip_equals_the_mean_statistic():
    """Under sign flips sum(d^2) is fixed, so t is increasing in the mean: identical p-values (exact enumeration)."""
    gen = np.random.default_rng(5)
    for _ in range(5):
        d = gen.exponential(1.0, 11) - 0.8
        t_stat = lambda x, axis=-1: x.mean(axis) / x.std(axis, ddof=1)  # noqa: E731
        ref = stats.permutation_test((d,), t_stat, permutation_type="samples", vectorized=True,
                                     n_resamples=9999, alternative="two-sided").pvalue
        assert signflip_pvalue(d, n_permutations=9999) == pytest.approx(ref)
