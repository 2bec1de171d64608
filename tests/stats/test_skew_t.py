"""Hall's skewness-corrected t-test and the interval that inverts it: calibration by simulation, agreement
with the sign-flip permutation test on symmetric data, monotone power, degenerate samples."""

import numpy as np
import pytest
from scipy import stats as sst

from circuitry.stats._common import signflip_pvalue
from circuitry.stats.skew_t import ratio_interval, skew_t_pvalue, skew_t_statistic

SHAPES = {
    "normal": lambda g, s: g.standard_normal(s),
    "exponential": lambda g, s: g.exponential(size=s) - 1.0,
    "chi2(4)": lambda g, s: (g.chisquare(4, size=s) - 4) / np.sqrt(8),
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("n", [10, 16, 32])
def test_rejection_rate_under_the_null_is_nominal(shape, n):
    g = np.random.default_rng(hash((shape, n)) % 2**32)
    x = SHAPES[shape](g, (20000, n))
    rate = float((skew_t_pvalue(x) <= 0.05).mean())
    assert 0.03 <= rate <= 0.07, rate
    for alt in ("greater", "less"):  # one-sided at 0.025: at most 2.2x (Student's t: 0.002 and 0.10 at n = 10)
        one = float((skew_t_pvalue(x, alternative=alt) <= 0.025).mean())
        assert 0.005 <= one <= 0.055, (alt, one)


def test_student_t_and_sign_flips_over_reject_skewed_changes_where_hall_does_not():
    g = np.random.default_rng(5)
    x = SHAPES["exponential"](g, (20000, 10))
    assert (sst.ttest_1samp(x, 0, axis=1).pvalue <= 0.05).mean() > 0.085
    assert (skew_t_pvalue(x) <= 0.05).mean() < 0.065


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["normal", "exponential"])
@pytest.mark.parametrize("n", [10, 16, 32])
def test_share_interval_covers(shape, n):
    g = np.random.default_rng(n + len(shape))
    theta, R = 0.3, 3000
    gap = 1 + 0.5 * g.standard_normal((R, n))
    a = theta * gap + 0.4 * SHAPES[shape](g, (R, n))
    _, lo, hi = ratio_interval(a, gap)
    cover = float(((lo <= theta) & (theta <= hi)).mean())
    assert 0.93 <= cover <= 0.97, cover


def test_interval_excludes_zero_exactly_when_the_test_rejects():
    g = np.random.default_rng(1)
    a = 0.05 + 0.3 * (g.exponential(size=(3000, 16)) - 1)
    b = 1 + 0.2 * g.standard_normal(16)
    _, lo, hi = ratio_interval(a, b)
    rejects = skew_t_pvalue(a) <= 0.05
    assert 0.05 < rejects.mean() < 0.95  # both kinds occur
    assert np.array_equal((lo > 0) | (hi < 0), rejects)


def test_unresolved_gap_gives_an_unbounded_interval():
    g = np.random.default_rng(2)
    b = g.standard_normal(20)  # a gap indistinguishable from 0
    a = 0.5 * b + 0.1 * g.standard_normal(20)
    _, lo, hi = ratio_interval(a, b)
    assert skew_t_pvalue(b) > 0.05 and (np.isinf(lo[0]) or np.isinf(hi[0]))


def test_agrees_with_the_sign_flip_permutation_test_on_symmetric_changes():
    # where the sign-flip test is exact (symmetric changes), the two tests give nearly the same p-values
    g = np.random.default_rng(3)
    x = 0.35 * g.standard_normal((150, 16)) + g.uniform(-0.2, 0.8, size=(150, 1))
    hall = skew_t_pvalue(x)
    flips = np.array([signflip_pvalue(row, n_permutations=2**16) for row in x])
    both = (hall > 1e-3) | (flips > 1e-3)  # below that the sign flips' resolution (2**-15) dominates
    assert both.sum() > 50
    assert np.median(np.abs(np.log10(hall[both] / flips[both]))) < 0.1
    assert np.mean((hall <= 0.05) == (flips <= 0.05)) >= 0.95


def test_statistic_is_monotone_so_a_strong_effect_against_the_skew_is_detected():
    # Johnson's (1978) quadratic-only correction turns back towards 0 for large effects against the skew;
    # Hall's cubic is non-decreasing (its slope is (1 + G S / 3)**2), flat only at S = -3 / G
    g = np.random.default_rng(4)
    base = g.exponential(size=32) - 1
    shifts = np.linspace(-6, 6, 241)
    x = base[None, :] + shifts[:, None]
    T = skew_t_statistic(x)
    assert np.all(np.diff(T) >= -1e-9)
    assert np.all(skew_t_pvalue(base[None, :] - np.array([2.0, 3.0, 4.0, 6.0])[:, None]) < 0.01)
    n, m, s = 32, x.mean(1), x.std(1, ddof=1)
    mu3 = ((x - m[:, None]) ** 3).mean(1)
    johnson = (m + mu3 / (6 * s**2 * n) + mu3 * m**2 / (3 * s**4)) / (s / np.sqrt(n))
    assert np.any(np.diff(johnson) < 0)


def test_degenerate_samples():
    assert skew_t_pvalue(np.zeros(12)) == 1.0
    assert skew_t_pvalue(np.full(12, 0.25)) == 0.0
    assert skew_t_pvalue([0.1, 0.3]) == pytest.approx(sst.ttest_1samp([0.1, 0.3], 0).pvalue)  # n = 2: Student
    x = np.array([[0.1, 0.4, 0.2, 0.3, 0.0], [0.0] * 5])
    assert skew_t_pvalue(x).shape == (2,) and skew_t_pvalue(x)[1] == 1.0


def test_interval_search_moments_equal_the_direct_statistic():
    """ratio_interval evaluates Hall's |T| of a - theta b from moments taken once (polynomials in theta);
    they equal the statistic computed from a - theta b element by element, and at each finite end of the
    interval the direct test's p-value is 1 - confidence, for skewed, nearly and exactly proportional rows."""
    from circuitry.stats.skew_t import _LinearMoments

    g = np.random.default_rng(5)
    n = 24
    b = 1 + 0.3 * g.standard_normal(n)
    a = np.stack([0.6 * b + 0.2 * g.standard_normal(n), g.exponential(1, n) - 1 + 0.1 * b,
                  0.6 * b + 1e-9 * g.standard_normal(n), 0.25 * b, -2.0 * b + 0.5 * g.standard_normal(n)])
    est, lo, hi = ratio_interval(a, b)
    moments = _LinearMoments(a, np.broadcast_to(b, a.shape), est)
    for theta in (est - 0.3, est + 1e-4, est + 2.0):
        direct = np.abs(skew_t_statistic(a - theta[:, None] * b))
        fast = moments(np.arange(len(a)), theta)
        np.testing.assert_allclose(fast, direct, rtol=1e-7, atol=1e-9)
    assert np.isfinite(lo).all() and np.isfinite(hi).all() and (lo <= est).all() and (est <= hi).all()
    assert (hi - lo)[[0, 1, 4]].min() > 0.1 and hi[2] - lo[2] < 1e-7
    for end in (lo, hi):
        p = skew_t_pvalue(a - end[:, None] * b)
        np.testing.assert_allclose(p[[0, 1, 4]], 0.05, atol=1e-6)
    assert hi[3] - lo[3] < 1e-6  # exactly proportional: a point interval at the ratio
