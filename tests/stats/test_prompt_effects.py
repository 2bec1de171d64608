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
