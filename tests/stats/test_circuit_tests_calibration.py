"""Shi et al.'s circuit tests and the scores' head significance hold their level under their nulls
(simulation; the binomial tests are exact, so their rate is the attainable size, not alpha itself)."""

import numpy as np
import pytest
from scipy import stats as sst

from circuitry.stats import sufficiency_test


@pytest.mark.slow
def test_sufficiency_rejects_at_its_exact_size_when_the_candidate_beats_exactly_q():
    # random circuits' losses are U(0, 1); the candidate's loss 0.1 beats a random circuit with probability
    # exactly q = 0.9, the boundary of H0: the rejection rate is the binomial test's attained size
    universe = [f"e{i}" for i in range(40)]
    circuit = universe[:3]
    hits, runs = 0, 600
    for r in range(runs):
        g = np.random.default_rng(10_000 + r)

        def loss(sets):
            return [0.1 if list(s) == circuit else float(g.random()) for s in sets]

        hits += sufficiency_test(loss, circuit, universe, n_random=100, q=0.9, rng=r).pvalue <= 0.05
    k = next(k for k in range(101) if sst.binom.sf(k - 1, 100, 0.9) <= 0.05)  # smallest rejecting count
    size = sst.binom.sf(k - 1, 100, 0.9)  # P(X >= k) at the boundary: 0.024
    assert size <= 0.05
    assert sst.binomtest(int(hits), runs, size).pvalue > 0.001, (hits / runs, size)


@pytest.mark.slow
@pytest.mark.parametrize("n", [10, 16, 32])
@pytest.mark.parametrize("shape", ["normal", "right-skewed", "left-skewed"])
def test_head_significance_holds_its_level_at_the_boundary(shape, n):
    # every head's mean excess is exactly min_effect = 0.1, the boundary of H0; one-sided Hall test per head.
    # Measured (40,000 draws): normal 0.050; exponential-shaped excess 0.030 / 0.037 / 0.043 (right skew) and
    # 0.078 / 0.068 / 0.060 (left skew) at n = 10 / 16 / 32 -- one-sided tests of skewed means at 10 samples
    # cannot be held to [0.03, 0.07] by any method tried (docs/statistics.md); from 16 they are
    from circuitry.scores.significance import head_significance

    g = np.random.default_rng(n)
    runs, H = 500, 8
    e = g.exponential(size=(runs, n, 1, H)) - 1
    noise = {"normal": g.standard_normal((runs, n, 1, H)), "right-skewed": e, "left-skewed": -e}[shape]
    scores = 0.1 + 0.05 * noise
    p = np.stack([head_significance(s, 0.0, min_effect=0.1, alpha=0.05).pvalue.numpy().ravel() for s in scores])
    rate = float((p <= 0.05).mean())
    lo, hi = (0.02, 0.09) if n == 10 else (0.03, 0.075)
    assert lo <= rate <= hi, rate


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["normal", "exponential"])
@pytest.mark.parametrize("n", [16, 32])
def test_path_share_claim_holds_its_level_when_the_share_is_exactly_min_share(shape, n):
    # the path_share claim (share_test): the true share is exactly min_share = 0.5 of a clearly resolved gap,
    # the boundary of its null; the intersection-union p is then decided by the one-sided share test
    from circuitry.stats import share_test

    g = np.random.default_rng(n + len(shape))
    runs, hits = 300, 0
    for r in range(runs):
        clean = 3 + 0.3 * g.standard_normal(n)
        corrupted = 0.3 * g.standard_normal(n)
        noise = g.standard_normal(n) if shape == "normal" else g.exponential(size=n) - 1
        patched = clean - 0.5 * (clean - corrupted) + 0.4 * noise
        hits += share_test(patched, clean, corrupted, min_share=0.5, alpha=0.05, n_resamples=999,
                           rng=r).outcome == "supported"
    assert 0.02 <= hits / runs <= 0.08, hits / runs  # 300 runs: binomial sd 0.013 around 0.05
