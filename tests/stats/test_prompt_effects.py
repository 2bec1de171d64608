import numpy as np
import pytest
from scipy import stats as sst

from circuitry.errors import InputError
from circuitry.stats import prompt_effect


def test_null_pvalues_are_calibrated():
    r = np.random.default_rng(1)
    hits = 0
    for i in range(200):
        c, k = r.normal(3, 1, 24), r.normal(0, 1, 24)
        p = c + r.normal(0, 0.5, 24)  # noising that changes nothing on average
        hits += prompt_effect(p, c, k, direction="noising", n_resamples=999, rng=i).pvalue < 0.05
    assert sst.binomtest(int(hits), 200, 0.05).pvalue > 0.001


def test_ci_covers_true_normalized_effect():
    r = np.random.default_rng(2)
    covered = 0
    for i in range(100):
        c, k = r.normal(4, 1, 40), r.normal(0, 1, 40)
        p = 0.25 * c + 0.75 * k + r.normal(0, 0.3, 40)  # true normalized effect 0.25
        e = prompt_effect(p, c, k, direction="noising", confidence_level=0.9, n_resamples=999, rng=i)
        covered += e.ci_low <= 0.25 <= e.ci_high
    assert 78 <= covered <= 98


def test_strong_effect_small_p_and_directions():
    r = np.random.default_rng(3)
    c, k = r.normal(4, 1, 32), r.normal(0, 1, 32)
    e = prompt_effect(k + 0.1, c, k, direction="noising", rng=0)
    assert e.effect == pytest.approx(0.1 / (c.mean() - k.mean()), rel=1e-9)
    assert e.pvalue < 0.001 and e.mean_change < 0
    d = prompt_effect(c, c, k, direction="denoising", rng=0)
    assert d.effect == pytest.approx(1.0) and d.mean_change > 0 and d.pvalue < 0.001


def test_rejects_bad_input():
    with pytest.raises(InputError, match="same number"):
        prompt_effect([1, 2], [1, 2, 3], [0, 0], direction="noising")


def test_share_fieller_is_none_for_an_unresolved_gap_and_close_to_the_bootstrap_otherwise():
    g = np.random.default_rng(0)
    c, k = 3 + g.normal(0, 0.3, 24), g.normal(0, 0.3, 24)
    p = c - 0.7 * (c - k) + g.normal(0, 0.2, 24)
    r = prompt_effect(p, c, k, direction="noising", rng=0)
    share, lo, hi = r.share_fieller("noising")
    assert r.gap_resolved and lo < share < hi and share == pytest.approx(r.share("noising")[0])
    assert abs(lo - r.share("noising")[1]) < 0.05 and abs(hi - r.share("noising")[2]) < 0.05
    assert r.min_attainable_pvalue == pytest.approx(2 / 10000) and "symmetric" in r.null
    c2, k2 = g.normal(0, 1, 24), g.normal(0, 1, 24)  # no gap to explain
    r2 = prompt_effect(c2 - 0.7 * (c2 - k2), c2, k2, direction="noising", rng=0)
    assert not r2.gap_resolved and r2.share_fieller("noising") == (None, None, None)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_signflip_enumeration_equals_scipy_exactly(alternative):
    """Up to 13 values every sign pattern is enumerated: the p-value is scipy's exact one, ties included."""
    from circuitry.stats.prompt_effects import signflip_pvalue

    gen = np.random.default_rng(3)
    for n in range(2, 14):
        for rounded in (False, True):
            d = gen.normal(0.3, 1, n)
            d = np.round(d, 1) if rounded else d  # ties between sign patterns
            ref = sst.permutation_test((d,), lambda x, axis=-1: x.mean(axis), permutation_type="samples",
                                       vectorized=True, n_resamples=9999, alternative=alternative).pvalue
            assert signflip_pvalue(d, alternative=alternative) == ref


def test_signflip_random_flips_match_scipy_in_distribution():
    """At 32 values (random flips) the p-values scatter around scipy's 200,000-flip p-value with the binomial
    Monte Carlo spread, for p from 0.004 to 0.75."""
    from circuitry.stats.prompt_effects import signflip_pvalue

    gen = np.random.default_rng(0)
    for shift in (0.05, 0.3, 0.5):
        d = gen.normal(shift, 1, 32)
        ref = sst.permutation_test((d,), lambda x, axis=-1: x.mean(axis), permutation_type="samples",
                                   vectorized=True, n_resamples=200_000, random_state=1).pvalue
        ps = np.array([signflip_pvalue(d, rng=r) for r in range(30)])
        sd = 2 * np.sqrt(ref / 2 * (1 - ref / 2) / 9999)  # twice a one-sided Monte Carlo proportion
        assert abs(ps.mean() - ref) < 4 * sd / np.sqrt(30) + 1e-4, (ps.mean(), ref)
        assert 0.5 * sd < ps.std() < 1.6 * sd, (ps.std(), sd)
    with pytest.raises(InputError, match="two or more"):
        signflip_pvalue([0.5])
