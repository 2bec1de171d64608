import numpy as np
import pytest
from scipy import stats as sst

from circuitry.errors import InputError
from circuitry.stats import prompt_effect


def test_null_pvalues_are_calibrated():
    r = np.random.default_rng(1)
    hits = 0
    for i in range(400):
        c, k = r.normal(3, 1, 24), r.normal(0, 1, 24)
        p = c + r.normal(0, 0.5, 24)  # noising that changes nothing on average
        hits += prompt_effect(p, c, k, direction="noising").pvalue < 0.05
    assert sst.binomtest(int(hits), 400, 0.05).pvalue > 0.001


def test_ci_covers_true_normalized_effect():
    r = np.random.default_rng(2)
    covered = 0
    for i in range(200):
        c, k = r.normal(4, 1, 40), r.normal(0, 1, 40)
        p = 0.25 * c + 0.75 * k + r.normal(0, 0.3, 40)  # true normalized effect 0.25
        e = prompt_effect(p, c, k, direction="noising", confidence_level=0.9)
        covered += e.ci_low <= 0.25 <= e.ci_high
    assert sst.binomtest(int(covered), 200, 0.9).pvalue > 0.001


def test_strong_effect_small_p_and_directions():
    r = np.random.default_rng(3)
    c, k = r.normal(4, 1, 32), r.normal(0, 1, 32)
    e = prompt_effect(k + 0.1, c, k, direction="noising")
    assert e.effect == pytest.approx(0.1 / (c.mean() - k.mean()), rel=1e-9)
    assert e.pvalue < 0.001 and e.mean_change < 0
    d = prompt_effect(c, c, k, direction="denoising")
    assert d.effect == pytest.approx(1.0) and d.mean_change > 0 and d.pvalue < 0.001


def test_rejects_bad_input():
    with pytest.raises(InputError, match="same number"):
        prompt_effect([1, 2], [1, 2, 3], [0, 0], direction="noising")


def test_interval_is_unbounded_for_an_unresolved_gap_and_inverts_the_test_otherwise():
    g = np.random.default_rng(0)
    c, k = 3 + g.normal(0, 0.3, 24), g.normal(0, 0.3, 24)
    p = c - 0.7 * (c - k) + g.normal(0, 0.2, 24)
    r = prompt_effect(p, c, k, direction="noising")
    share, lo, hi = r.share("noising")
    assert r.gap_resolved and lo < share < hi and share == pytest.approx(0.7, abs=0.05)
    assert r.min_attainable_pvalue == 0.0 and "Hall" in r.test
    # the interval is the set of shares the same test does not reject: at its ends the test's p is 0.05
    from circuitry.stats.skew_t import skew_t_pvalue
    for end in (lo, hi):
        x = (c - p) - end * (c - k)
        assert float(skew_t_pvalue(x)) == pytest.approx(0.05, abs=1e-6)
    c2, k2 = g.normal(0, 1, 24), g.normal(0, 1, 24)  # no gap to explain
    r2 = prompt_effect(c2 - 0.7 * (c2 - k2), c2, k2, direction="noising")
    assert not r2.gap_resolved and None in r2.share("noising")[1:]
    assert type(r2).model_validate_json(r2.model_dump_json()) == r2


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
