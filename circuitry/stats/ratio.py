"""Shares of a gap: the ratio of two means over prompts, tested only when its denominator is resolved.

A share ``mean(a) / mean(b)`` (path patching: ``a_i = clean_i - patched_i``, ``b_i = clean_i -
corrupted_i``) is meaningless when ``mean(b)``, the clean-corrupted gap, cannot be told from 0: every
bootstrap resample then divides by noise and the interval, though finite, is arbitrary. circuitry
therefore

1. tests the gap first (:func:`circuitry.stats.gap.gap_summary`, a t-test) and answers "inconclusive"
   when it is unresolved;
2. gives Fieller's interval for the ratio (Fieller 1954): the set of ``theta`` for which
   ``mean(a) - theta mean(b) = 0`` is not rejected by a t-test of the per-prompt ``a_i - theta b_i``. It is
   a bounded interval only when the gap's own t-test rejects 0 at the same level; otherwise it is
   unbounded (reported as ``None`` ends);
3. decides "share >= m" by the one-sided test of ``s (a_i - m b_i) > 0`` (``s`` the sign of the gap),
   the linearized (Fieller-type) form of the same inequality, with :func:`circuitry.stats.mean_test`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as sst

from circuitry.errors import InputError
from circuitry.provenance import Frozen
from circuitry.stats._common import RngLike, check_open_unit, finite_1d, resolve_rng
from circuitry.stats.skew_t import SKEW_T_NULL, skew_t_pvalue
from circuitry.stats.gap import GapSummary, gap_summary
from circuitry.stats.intervals import MIN_PROMPTS, MeanTest, mean_test


class RatioInterval(Frozen):
    """Fieller's interval for ``mean(numerator) / mean(denominator)``.

    ``low``/``high`` are ``None`` when that end is unbounded (the denominator's interval contains 0);
    ``kind`` is ``"bounded"``, ``"unbounded"`` (the whole line, or the line minus an interval: reported as
    ``low = high = None``).
    """

    estimate: float | None
    low: float | None
    high: float | None
    kind: str
    confidence_level: float
    n: int
    test: str = "Fieller (1954) interval for a ratio of paired means (t quantile, n - 1 df)"


def fieller_interval(numerator: Any, denominator: Any, *, confidence_level: float = 0.95) -> RatioInterval:
    """Fieller's confidence interval for the ratio of the means of paired per-prompt values.

    Parameters
    ----------
    numerator, denominator : array_like, shape (n_prompts,)
        Paired values ``a_i`` and ``b_i``.
    confidence_level : float
        Two-sided level.

    Returns
    -------
    RatioInterval
        Bounded exactly when ``|mean(b)| / se(b) > t_{(1+level)/2, n-1}``, i.e. when the denominator's
        t interval excludes 0.

    References
    ----------
    Fieller, E. C. (1954). Some problems in interval estimation. JRSS B 16(2), 175-185.

    Examples
    --------
    >>> r = fieller_interval([0.5, 0.7, 0.6, 0.4, 0.65], [1.0, 1.1, 0.9, 1.05, 0.95])
    >>> r.kind, round(r.estimate, 3), r.low < r.estimate < r.high
    ('bounded', 0.57, True)
    >>> fieller_interval([0.1, -0.2, 0.3, 0.0], [0.5, -0.6, 0.4, -0.2]).kind
    'unbounded'
    """
    a = finite_1d("numerator", numerator, min_n=2)
    b = finite_1d("denominator", denominator, min_n=2)
    if a.shape != b.shape:
        raise InputError(f"numerator has {a.size} prompts but denominator has {b.size}; the ratio needs paired "
                         "values, one of each per prompt")
    level = check_open_unit("confidence_level", confidence_level, "e.g. confidence_level=0.95")
    n = a.size
    ma, mb = float(a.mean()), float(b.mean())
    cov = np.cov(np.vstack([a, b]), ddof=1) / n
    saa, sab, sbb = float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])
    t2 = float(sst.t.ppf((1 + level) / 2, n - 1)) ** 2
    est = ma / mb if mb != 0 else None
    # theta is inside when (ma - theta mb)^2 <= t2 (saa - 2 theta sab + theta^2 sbb)
    A = mb * mb - t2 * sbb
    B = ma * mb - t2 * sab
    C = ma * ma - t2 * saa
    disc = B * B - A * C
    if A > 0:  # the estimate itself always lies inside, so disc >= 0 up to rounding (e.g. an exact ratio)
        r = float(np.sqrt(max(disc, 0.0)))
        return RatioInterval(estimate=est, low=(B - r) / A, high=(B + r) / A, kind="bounded",
                             confidence_level=level, n=n)
    return RatioInterval(estimate=est, low=None, high=None, kind="unbounded", confidence_level=level, n=n)


class ShareTest(Frozen):
    """Result of :func:`share_test`: is the share ``(clean - patched) / (clean - corrupted)`` of the mean
    metric at least ``min_share``?

    ``pvalue`` is the intersection-union p-value of the three nulls that must all be rejected (Berger
    1982): the gap is 0 (``gap``), the share is at most ``min_share`` (``at_least``), the patched site
    has no effect (Hall's skewness-corrected t-test, ``effect_pvalue``, floor 0); ``min_attainable_pvalue`` is the largest of their floors.
    ``outcome``/``reason`` apply the rules of ``docs/statistics.md`` at ``alpha``.
    """

    share: float | None
    min_share: float
    alpha: float
    n: int
    gap: GapSummary
    interval: RatioInterval
    at_least: MeanTest | None
    below: MeanTest | None
    effect_pvalue: float
    effect_floor: float
    effect_null: str = SKEW_T_NULL
    pvalue: float
    min_attainable_pvalue: float
    outcome: str
    reason: str
    null: str
    seed: int | None
    test: str = ("share of a tested gap: t-test of the gap, Fieller interval of the share, one-sided studentized "
                 "bootstrap test of s(a_i - m b_i), Hall's skewness-corrected t-test of the site's effect; intersection-union p")


def share_test(patched: Any, clean: Any, corrupted: Any, *, min_share: float, alpha: float = 0.05,
               confidence_level: float = 0.95, n_resamples: int = 2000, rng: RngLike = None) -> ShareTest:
    """Test "the patched site carries at least ``min_share`` of the clean-corrupted gap" (noising).

    Parameters
    ----------
    patched, clean, corrupted : array_like, shape (n_prompts,)
        The metric per prompt with the site patched from the corrupted run, unpatched, and fully corrupted.
    min_share : float
        The claimed share, in (0, 1).
    alpha : float
        Significance level of the decision; every one-sided bound is at ``1 - alpha``.
    confidence_level : float
        Level of the reported two-sided Fieller interval.
    n_resamples : int
        Bootstrap resamples of the share test (floor ``1 / (n_resamples + 1)``); the effect test
        (:mod:`circuitry.stats.skew_t`) draws nothing.
    rng : None, int or numpy.random.Generator
        Randomness; the seed is recorded.

    Returns
    -------
    ShareTest
        ``outcome``: "supported" when the gap is resolved, the share test and the effect test reject at
        ``alpha`` and their floors are at most ``alpha``; "refuted" when the gap is resolved and the upper
        ``1 - alpha`` bound lies below ``min_share`` (the one-sided test of share >= m rejects); otherwise
        "inconclusive" with the reason (fewer than :data:`MIN_PROMPTS` prompts, an unresolved gap, a floor
        above ``alpha``, or bounds on both sides of ``min_share``).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> clean = 3 + g.normal(0, .3, 20); corrupted = g.normal(0, .3, 20); patched = clean - 0.8 * (clean - corrupted)
    >>> res = share_test(patched, clean, corrupted, min_share=0.5, alpha=0.01, rng=0)
    >>> res.outcome, round(res.share, 2), res.interval.kind
    ('supported', 0.8, 'bounded')
    """
    p = finite_1d("patched", patched, min_n=2)
    c = finite_1d("clean", clean, min_n=2)
    k = finite_1d("corrupted", corrupted, min_n=2)
    if not (p.size == c.size == k.size):
        raise InputError(f"patched, clean and corrupted have {p.size}, {c.size}, {k.size} prompts; they must be "
                         "paired, one value of each per prompt")
    m = check_open_unit("min_share", min_share, "e.g. min_share=0.5")
    alpha = check_open_unit("alpha", alpha, "e.g. alpha=0.01")
    gen, seed = resolve_rng(rng)
    n = p.size
    a, b = c - p, c - k
    gap = gap_summary(c, k, confidence_level=1 - alpha)
    interval = fieller_interval(a, b, confidence_level=confidence_level)
    eff_p = float(skew_t_pvalue(p - c))
    eff_floor = 0.0
    null = (f"share <= {m:g} of a nonzero gap (one-sided, studentized bootstrap of s(a_i - {m:g} b_i)), "
            "or a zero gap, or a site without effect")
    common = dict(min_share=m, alpha=alpha, n=n, gap=gap, interval=interval, effect_pvalue=eff_p,
                  effect_floor=eff_floor, null=null, seed=seed)
    if not gap.resolved:
        return ShareTest(share=None, at_least=None, below=None, pvalue=max(gap.pvalue, eff_p),
                         min_attainable_pvalue=eff_floor, outcome="inconclusive", **common,
                         reason=(f"the clean-corrupted gap is unresolved (mean {gap.mean:.3g}, {1 - alpha:.0%} CI "
                                 f"[{gap.ci_low:.3g}, {gap.ci_high:.3g}] contains 0, p = {gap.pvalue:.3g}): a share "
                                 "of it is not a number. Fix: a metric or task with a clear clean-corrupted gap"))
    s = 1.0 if gap.mean > 0 else -1.0
    d = s * (a - m * b)
    kw = dict(threshold=0.0, confidence_level=1 - alpha, n_resamples=n_resamples, rng=gen)
    at_least = mean_test(d, alternative="greater", **kw)
    below = mean_test(d, alternative="less", **kw)
    share = float(a.mean() / b.mean())
    pvalue = max(gap.pvalue, at_least.pvalue, eff_p)
    floor = max(gap.min_attainable_pvalue, at_least.min_attainable_pvalue, eff_floor)
    bounds = (f"one-sided {1 - alpha:.0%} test of share >= {m:g}: p = {at_least.pvalue:.3g} (floor "
              f"{at_least.min_attainable_pvalue:.3g}); of share < {m:g}: p = {below.pvalue:.3g}")
    if n < MIN_PROMPTS:
        outcome, reason = "inconclusive", (f"{n} prompts are fewer than {MIN_PROMPTS}, the smallest n at which "
                                           "circuitry's intervals are verified to cover. Fix: n_prompts >= 16")
    elif floor > alpha:
        outcome, reason = "inconclusive", (f"alpha={alpha:g} is below the smallest attainable p-value {floor:.3g} "
                                           "of these tests: no outcome could support the claim")
    elif pvalue <= alpha:
        outcome, reason = "supported", (f"gap resolved (p = {gap.pvalue:.3g}), {bounds}, site effect "
                                        f"p = {eff_p:.3g} (Hall's t): all <= alpha={alpha:g}")
    elif below.pvalue <= alpha:
        outcome, reason = "refuted", f"the share lies below min_share={m:g}: {bounds}"
    else:
        outcome, reason = "inconclusive", (f"undecided at alpha={alpha:g}: {bounds}; site effect p = {eff_p:.3g}. "
                                           "Fix: more prompts")
    return ShareTest(share=share, at_least=at_least, below=below, pvalue=pvalue, min_attainable_pvalue=floor,
                     outcome=outcome, reason=reason, **common)
