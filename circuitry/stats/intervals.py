"""Intervals and one-sided tests for a mean over prompts, with the method chosen by the number of prompts.

Which interval covers at small n depends on the data's skew (measured in ``docs/statistics.md``): with 16
exponential values a 95% BCa or percentile interval of the mean covers ~0.88-0.91, Student's t ~0.92,
the studentized ("bootstrap-t") interval ~0.95. circuitry therefore picks, for a mean:

* ``n < STUDENTIZED_FROM`` (8): Student's t (exact for normal data; no bootstrap can resolve fewer values);
* otherwise the studentized bootstrap (Efron & Tibshirani 1993, ch. 12.5; Hall 1988): resample prompts,
  studentize every resample by its own standard error, and read the interval off the quantiles of
  ``t* = (mean* - mean) / se*``. It is second-order accurate like BCa and covers better for skewed means
  at n = 16-64 (``tests/stats/test_intervals.py`` checks coverage in [0.92, 0.97] at n = 16 and 64).

Other statistics (a median, a callable) use BCa (Efron 1987) through :func:`scipy.stats.bootstrap`.

A decision "the mean exceeds ``threshold``" is the one-sided test :func:`mean_test`, consistent with the
one-sided ``confidence_level`` bound it reports: the bound clears the threshold exactly when the p-value is
at most ``1 - confidence_level`` (up to resampling ties).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import stats as sst

from circuitry.errors import bad_value
from circuitry.provenance import Frozen
from circuitry.stats._common import RngLike, check_choice, check_int, check_open_unit, finite_1d, resolve_rng

MeanMethod = Literal["auto", "t", "studentized"]
"""``"auto"``: Student's t below :data:`STUDENTIZED_FROM` prompts, the studentized bootstrap from there on.
``"t"``: Student's t. ``"studentized"``: the studentized (bootstrap-t) bootstrap."""

STUDENTIZED_FROM = 8
"""From this many prompts on, ``"auto"`` uses the studentized bootstrap; below it, Student's t."""

MIN_PROMPTS = 16
"""The smallest number of prompts at which circuitry's interval coverage is verified (within
[0.92, 0.97] for a nominal 0.95 on normal and exponential data). Claims decided from prompt-level tests
are "inconclusive" below it, and ``circuitry validate`` warns for the others."""

_CHUNK = 4_000_000  # resampled values held in memory at once


def choose_method(n: int) -> Literal["t", "studentized"]:
    """The interval method ``"auto"`` uses for a mean of ``n`` values (see the module docstring)."""
    return "t" if n < STUDENTIZED_FROM else "studentized"


def _t_star(values: np.ndarray, n_resamples: int, gen: np.random.Generator) -> np.ndarray:
    """Studentized bootstrap replicates ``(mean* - mean) / se*``; a resample of identical values (se* = 0)
    gives +-inf in the direction of its mean shift (0 when there is none)."""
    n = values.size
    mean = values.mean()
    out = np.empty(n_resamples)
    step = max(1, _CHUNK // n)
    for start in range(0, n_resamples, step):
        b = min(step, n_resamples - start)
        xs = values[gen.integers(0, n, (b, n))]
        m = xs.mean(1)
        se = xs.std(1, ddof=1) / np.sqrt(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, (m - mean) / se, np.sign(m - mean) * np.inf)
        out[start:start + b] = np.nan_to_num(t, nan=0.0, posinf=np.inf, neginf=-np.inf)
    return out


def mean_interval(values: Any, *, confidence_level: float = 0.95, method: MeanMethod = "auto",
                  n_resamples: int = 2000, rng: RngLike = None) -> tuple[float, float, float, str]:
    """Two-sided interval of the mean: ``(low, high, standard_error, method_used)``.

    ``standard_error`` is ``sd / sqrt(n)``. All values equal gives the zero-width interval ``[v, v]``.

    Examples
    --------
    >>> lo, hi, se, used = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], rng=0)
    >>> used, lo < 5.0 < hi
    ('studentized', True)
    """
    x = finite_1d("values", values, min_n=2)
    level = check_open_unit("confidence_level", confidence_level, "e.g. confidence_level=0.95")
    method = check_choice("method", method, ("auto", "t", "studentized"))
    n_resamples = check_int("n_resamples", n_resamples, 100)
    used = choose_method(x.size) if method == "auto" else method
    mean, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))
    if se == 0.0:
        return mean, mean, 0.0, used
    a = (1 - level) / 2
    if used == "t":
        q = float(sst.t.ppf(1 - a, x.size - 1))
        return mean - q * se, mean + q * se, se, used
    gen, _ = resolve_rng(rng)
    qlo, qhi = np.quantile(_t_star(x, n_resamples, gen), [a, 1 - a])
    return float(mean - qhi * se), float(mean - qlo * se), se, used


class MeanTest(Frozen):
    """A one-sided test of a mean over prompts against ``threshold``, with its one-sided bound.

    ``alternative="greater"``: H0 ``mean <= threshold``; ``bound`` is the lower ``confidence_level``
    bound. ``"less"``: H0 ``mean >= threshold``; ``bound`` is the upper bound. ``min_attainable_pvalue``:
    ``1 / (n_resamples + 1)`` for the studentized bootstrap, 0 for Student's t.
    """

    statistic: float
    standard_error: float
    threshold: float
    alternative: Literal["greater", "less"]
    pvalue: float
    min_attainable_pvalue: float
    bound: float
    confidence_level: float
    method: Literal["t", "studentized"]
    n: int
    n_resamples: int
    seed: int | None
    null: str
    test: str
    note: str = ""


def mean_test(values: Any, *, threshold: float = 0.0, alternative: Literal["greater", "less"] = "greater",
              confidence_level: float = 0.95, method: MeanMethod = "auto", n_resamples: int = 2000,
              rng: RngLike = None) -> MeanTest:
    """One-sided test that the mean of ``values`` is above (below) ``threshold``.

    Parameters
    ----------
    values : array_like, shape (n_prompts,)
        One value per prompt.
    threshold : float
        The value the mean is compared with.
    alternative : {"greater", "less"}
        The claim: the mean is greater (less) than ``threshold``.
    confidence_level : float
        Level of the reported one-sided bound (use ``1 - alpha`` to decide at ``alpha``).
    method : {"auto", "t", "studentized"}
        See :data:`MeanMethod`.
    n_resamples : int
        Bootstrap resamples (studentized method); the p-value's floor is ``1 / (n_resamples + 1)``.
    rng : None, int or numpy.random.Generator
        Randomness of the resampling; the seed is recorded.

    Returns
    -------
    MeanTest
        Studentized: ``p = (1 + #{t* >= t_obs}) / (1 + n_resamples)`` with ``t_obs = (mean - threshold) / se``
        (``<=`` for "less"), the bootstrap-t test (Hall 1992, sec. 3.12). Student's t: ``scipy.stats.ttest_1samp``.

    Raises
    ------
    InputError
        Fewer than 2 values, non-finite values, or an option out of range.

    References
    ----------
    Hall, P. (1988). Theoretical comparison of bootstrap confidence intervals. Ann. Stat. 16, 927-953.
    Efron, B. & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 12.5 and 16.

    Examples
    --------
    >>> res = mean_test([4.1, 5.0, 4.8, 5.3, 4.4, 4.9, 5.1, 4.6, 5.2, 4.7], threshold=3.0, rng=0)
    >>> res.method, res.pvalue == res.min_attainable_pvalue, res.bound > 3.0
    ('studentized', True, True)
    """
    x = finite_1d("values", values, min_n=2)
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        raise bad_value("threshold", threshold, "a finite number") from None
    if not np.isfinite(thr):
        raise bad_value("threshold", threshold, "a finite number")
    alternative = check_choice("alternative", alternative, ("greater", "less"))
    level = check_open_unit("confidence_level", confidence_level, "e.g. confidence_level=0.99 for alpha 0.01")
    method = check_choice("method", method, ("auto", "t", "studentized"))
    n_resamples = check_int("n_resamples", n_resamples, 100)
    used = choose_method(x.size) if method == "auto" else method
    gen, seed = resolve_rng(rng)
    mean, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))
    sign = 1.0 if alternative == "greater" else -1.0
    floor = 0.0 if used == "t" else 1.0 / (n_resamples + 1)
    null = f"mean {'<=' if sign > 0 else '>='} {thr:g}"
    names = {"t": "one-sided Student t-test of the mean (scipy.stats.ttest_1samp)",
             "studentized": "one-sided studentized bootstrap (bootstrap-t) test of the mean over prompts"}
    common = dict(statistic=mean, standard_error=se, threshold=thr, alternative=alternative,
                  confidence_level=level, method=used, n=int(x.size), n_resamples=n_resamples, seed=seed,
                  null=null, test=names[used], min_attainable_pvalue=floor)
    if se == 0.0:
        holds = sign * (mean - thr) > 0
        return MeanTest(pvalue=max(floor, 0.0) if holds else 1.0, bound=mean,
                        note="all values are equal: no spread, the test is decided by the common value", **common)
    t_obs = (mean - thr) / se
    if used == "t":
        res = sst.ttest_1samp(x, thr, alternative=alternative)
        q = float(sst.t.ppf(level, x.size - 1))
        return MeanTest(pvalue=float(res.pvalue), bound=mean - sign * q * se, **common)
    t_star = _t_star(x, n_resamples, gen)
    count = np.sum(t_star >= t_obs) if sign > 0 else np.sum(t_star <= t_obs)
    q = float(np.quantile(t_star, level if sign > 0 else 1 - level))
    return MeanTest(pvalue=float((1 + count) / (1 + n_resamples)), bound=mean - q * se, **common)
