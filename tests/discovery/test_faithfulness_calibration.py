"""Calibration of the faithfulness tests under the null, simulated without a model.

The method's ranking is pure noise (it ranks by per-prompt scores drawn independently of the edges), so it is
one more random ranking. Each simulated experiment draws a task (per-prompt contributions of a few strong
edges, optionally many weak ones, the rest exactly 0), ranks the edges, computes every ranking's circuits at
MIB's sizes through the same functions :func:`faithfulness_curves` uses (``faithfulness_of``,
``resolved_from_zero``, ``random_ranking_tests``) and records whether the whole-curve test and the Holm-corrected
per-size tests reject at alpha = 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.discovery.faithfulness import (DEFAULT_N_RANDOM, PERCENTS, faithfulness_of, random_ranking_tests,
                                              resolved_from_zero, unique_sizes)

E, N = 257, 16  # the zoo model's edges, prompts


def simulate_null(n_experiments: int, *, n_random: int = DEFAULT_N_RANDOM, paths: bool = False, seed: int = 0,
                  alpha: float = 0.05) -> tuple[float, float, np.ndarray]:
    """Rejection rates of the whole-curve test and of any size after Holm, and the tested-size counts.

    ``paths=False``: 17 strong and 60 weak edges add their per-prompt contributions. ``paths=True``: 6 paths
    of 3 edges, each contributing only when all its edges are in the circuit (as a previous-token head needs
    its induction head), no weak edges: small circuits are then exactly the empty one."""
    rng = np.random.default_rng(seed)
    ks, _, index = unique_sizes(E, PERCENTS)
    kk = np.array(ks)[:, None]
    curve = sizes = 0
    n_tested = np.zeros(n_experiments, int)
    for x in range(n_experiments):
        empty = rng.normal(0, 1, N)
        if paths:
            members = rng.choice(E, (6, 3), replace=False)
            c = rng.uniform(0.2, 0.4, (6, 1)) * (1 + 0.3 * rng.normal(size=(6, N)))  # per path and prompt
        else:  # per-edge, per-prompt contributions
            c = np.zeros((E, N))
            strong = rng.choice(E, 17, replace=False)
            c[strong] = rng.uniform(0.05, 0.15, (17, 1)) * (1 + 0.3 * rng.normal(size=(17, N)))
            w = rng.choice(np.setdiff1d(np.arange(E), strong), 60, replace=False)
            c[w] = rng.normal(0, 0.01, (60, 1)) + 0.01 * rng.normal(size=(60, N))
        full = empty + c.sum(0)
        noise_scores = rng.normal(size=(E, N)).mean(1)  # the "method": ranks by noise
        order = np.vstack([np.argsort(-np.abs(noise_scores), kind="stable"),
                           np.argsort(rng.random((n_random, E)), axis=1)])  # + the random rankings
        inside = np.argsort(order, axis=1)[:, None, :] < kk  # [ranking, size, edge]: edge in the circuit
        if paths:
            inside = inside[..., members].all(-1)  # [ranking, size, path]: path complete
        vals = inside.astype(float) @ c + empty  # [ranking, size, prompt]
        f, res = faithfulness_of(vals, empty, full), resolved_from_zero(vals, empty, full)
        t = random_ranking_tests(f[0], res[0], f[1:].T, res[1:].T, sizes=ks, total=E, index=index,
                                 percents=PERCENTS, alpha=alpha)
        curve += t.curve_pvalue <= alpha
        sizes += any(a is not None and a <= alpha for a in t.pvalue_adjusted)
        n_tested[x] = t.n_tested
    return curve / n_experiments, sizes / n_experiments, n_tested


@pytest.mark.slow
def test_tests_hold_their_level_under_the_null():
    # 1,200 experiments: binomial SE of a 5% rate 0.0063
    curve, sizes, n_tested = simulate_null(1200, seed=0)
    assert (n_tested == 7).all()  # weak edges everywhere: every size below 100 % is tested
    assert 0.03 <= curve <= 0.07
    # Holm over 7 nested sizes is conservative: the sizes' p-values are positively dependent and with 199
    # draws a size is rejected only at its floor 1/200 (alpha/7 = 0.0071), so at most 7/200 = 0.035 even for
    # independent sizes; measured 0.025 (3,000 experiments) and 0.035 with 999 draws
    assert 0.015 <= sizes <= 0.05


@pytest.mark.slow
def test_skipping_noise_sizes_keeps_the_level():
    # paths: small random circuits are exactly the empty one, so the smallest sizes are skipped; the rule looks
    # at the method's and the random circuits' f alike, so the level holds
    curve, sizes, n_tested = simulate_null(1200, paths=True, seed=1)
    assert n_tested.min() < 7 and n_tested.mean() < 7
    assert 0.03 <= curve <= 0.07 and 0.015 <= sizes <= 0.05


def test_a_real_ranking_is_detected():
    # the power check that makes the null tests falsifiable: ranking by the true contributions rejects
    rng = np.random.default_rng(3)
    ks, _, index = unique_sizes(E, PERCENTS)
    c = np.zeros((E, N))
    c[:17] = rng.uniform(0.05, 0.15, (17, 1)) * (1 + 0.3 * rng.normal(size=(17, N)))
    empty = rng.normal(0, 1, N)
    full = empty + c.sum(0)
    order = np.vstack([np.arange(E), np.argsort(rng.random((DEFAULT_N_RANDOM, E)), axis=1)])
    vals = (np.argsort(order, axis=1)[:, None, :] < np.array(ks)[:, None]).astype(float) @ c + empty
    f, res = faithfulness_of(vals, empty, full), resolved_from_zero(vals, empty, full)
    t = random_ranking_tests(f[0], res[0], f[1:].T, res[1:].T, sizes=ks, total=E, index=index, percents=PERCENTS,
                             alpha=0.05)
    assert t.curve_pvalue == pytest.approx(1 / 200)
    assert t.pvalue_adjusted[ks.index(13)] == pytest.approx(t.n_tested / 200) and t.n_tested / 200 <= 0.05


def _fake_run(gap: float, n_random: int, seed: int = 0):
    """Faithfulness of one ranking from simulated per-prompt metrics (no model): the additive task above with
    the clean-corrupted gap scaled to ``gap``."""
    from types import SimpleNamespace

    from circuitry.discovery.faithfulness import _assemble

    rng = np.random.default_rng(seed)
    ks, groups, index = unique_sizes(E, PERCENTS)
    c = np.zeros((E, N))
    c[:17] = gap / 17 + 0.5 * rng.normal(size=(17, N))  # per-prompt gap: mean `gap`, sd 2
    empty = rng.normal(0, 1, N)
    order = np.vstack([np.arange(E), np.argsort(rng.random((n_random, E)), axis=1)])
    vals = (np.argsort(order, axis=1)[:, None, :] < np.array(ks)[:, None]).astype(float) @ c + empty
    return _assemble([SimpleNamespace(method="m")], vals[:1], vals[1:], empty, empty + c.sum(0), ks=ks, groups=groups,
                     index=index, percents=list(PERCENTS), total=E, n_resamples=200, confidence_level=0.95, alpha=0.05,
                     seed=seed, metric="logit_diff", provenance={})


def test_unresolved_gap_and_no_random_rankings_give_no_pvalues():
    fa = _fake_run(gap=0.001, n_random=19)  # a gap far below its noise
    assert not fa.gap.resolved
    c = fa.curves[0]
    assert c.curve_test.pvalue is None and "gap is unresolved" in c.curve_test.reason
    assert all(t.pvalue is None for t in c.tests) and "gap is unresolved" in c.tests[3].reason
    none = _fake_run(gap=5.0, n_random=0)
    assert none.gap.resolved and none.random_mean is None and none.random_low is None and none.random_cpr == []
    assert none.curves[0].curve_test.reason == "no random rankings (n_random=0)"
    assert "n_random=0" in none.curves[0].tests[3].reason
    ok = _fake_run(gap=5.0, n_random=19)
    assert ok.curves[0].curve_test.pvalue == pytest.approx(1 / 20) and ok.curves[0].test_at(5).pvalue == 1 / 20
