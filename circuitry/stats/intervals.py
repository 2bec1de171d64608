"""Intervals and one-sided tests for a mean over prompts, with the method chosen by the number of prompts.

Which interval covers at small n depends on the data's skew (measured in ``docs/statistics.md``, 10,000
experiments per cell): with 10 / 16 exponential values a 95% BCa interval of the mean covers 0.875 / 0.900,
Student's t 0.899 / 0.917, the studentized ("bootstrap-t") interval 0.939 / 0.947. circuitry therefore
picks, for a mean (``method="auto"``, the default here, of :func:`circuitry.stats.bootstrap_ci` and of
every caller):

* ``n < STUDENTIZED_FROM`` (8): Student's t (exact for normal data; no bootstrap can resolve fewer values);
* otherwise the studentized bootstrap (Efron & Tibshirani 1993, ch. 12.5; Hall 1988): resample prompts,
  studentize every resample by its own standard error, and read the interval off the quantiles of
  ``t* = (mean* - mean) / se*``. It is second-order accurate like BCa and covers better for skewed means:
  ``tests/stats/test_calibration.py`` checks coverage in [0.93, 0.97] at n = 10, 16 and 32 on normal and
  exponential data (symmetric bootstrap-t, Hall's 1992 skewness-corrected t and the bootstrap of Hall's
  statistic were tried and cover 0.925-0.935 at n = 10 on exponential data).

Other statistics (a median, a callable) use BCa (Efron 1987) through :func:`scipy.stats.bootstrap`.

A decision "the mean exceeds ``threshold``" is the one-sided test :func:`mean_test`, consistent with the
one-sided ``confidence_level`` bound it reports: the bound clears the threshold exactly when the p-value is
at most ``1 - confidence_level`` (up to resampling ties). Its size at 0.05 is 0.047-0.051 on normal data at
n = 10-32; on exponential data it is 0.028 ("greater") and 0.082 ("less") at n = 10, 0.035 / 0.065 at 16,
0.045 / 0.063 at 32: no one-sided method tried holds the "less" tail of right-skewed data at n = 10
(``docs/statistics.md``).

:func:`mean_intervals` and :func:`mean_tests` do the same for every column of an ``[n, ...]`` array at once
(``circuitry scores`` uses them for all heads; the calibration simulations for many experiments).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import stats as sst

from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen
from circuitry.stats._common import RngLike, check_choice, check_int, check_open_unit, finite_1d, resolve_rng

MeanMethod = Literal["auto", "t", "studentized"]
"""``"auto"``: Student's t below :data:`STUDENTIZED_FROM` prompts, the studentized bootstrap from there on.
``"t"``: Student's t. ``"studentized"``: the studentized (bootstrap-t) bootstrap."""

STUDENTIZED_FROM = 8
"""From this many prompts on, ``"auto"`` uses the studentized bootstrap; below it, Student's t."""

MIN_PROMPTS = 16
"""The smallest number of prompts at which circuitry's prompt-level decisions are trusted: the intervals
cover in [0.93, 0.97] from 10 prompts on (normal and exponential data), but the one-sided tests of a mean
are off by 2-3 points at 10 on skewed data (0.028 / 0.082 at a nominal 0.05). Claims decided from
prompt-level tests are "inconclusive" below it, and ``circuitry validate`` warns for the others."""

_CHUNK = 4_000_000  # resampled values held in memory at once


def choose_method(n: int) -> Literal["t", "studentized"]:
    """The interval method ``"auto"`` uses for a mean of ``n`` values (see the module docstring)."""
    return "t" if n < STUDENTIZED_FROM else "studentized"


def _t_star(values: np.ndarray, n_resamples: int, gen: np.random.Generator) -> np.ndarray:
    """Studentized bootstrap replicates ``(mean* - mean) / se*``, shape ``(n_resamples,) + values.shape[1:]``.

    ``values`` is ``(n,)`` or ``(n, ...)``: the prompts (rows) are resampled together, so every column
    (e.g. every head) sees the same resampled prompts, and column ``j`` gets exactly the replicates a
    call on ``values[:, j]`` with the same generator state would (the indices are drawn identically). A
    resample of identical values (``se* = 0``) gives +-inf in the direction of its mean shift (0 when
    there is none)."""
    x = values.reshape(values.shape[0], -1)
    n, m = x.shape
    mean = x.mean(0)
    out = np.empty((n_resamples, m))
    step = max(1, _CHUNK // n)
    for start in range(0, n_resamples, step):
        b = min(step, n_resamples - start)
        idx = gen.integers(0, n, (b, n))
        sub = max(1, _CHUNK // (n * m))
        for s in range(0, b, sub):
            xs = x[idx[s:s + sub]]  # (rows, n, m)
            mb = xs.mean(1)
            se = xs.std(1, ddof=1) / np.sqrt(n)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(se > 0, (mb - mean) / se, np.sign(mb - mean) * np.inf)
            out[start + s:start + s + t.shape[0]] = np.nan_to_num(t, nan=0.0, posinf=np.inf, neginf=-np.inf)
    return out.reshape((n_resamples,) + values.shape[1:])


def _quantiles(t_star: np.ndarray, probs: list[float]) -> np.ndarray:
    """Linear-interpolation quantiles over axis 0; between two equal infinite replicates (where interpolation
    gives NaN) the infinite value itself."""
    with np.errstate(invalid="ignore"):
        q = np.quantile(t_star, probs, axis=0)
    bad = np.isnan(q)
    if bad.any():
        q = np.where(bad, np.quantile(t_star, probs, axis=0, method="nearest"), q)
    return q


def mean_interval(values: Any, *, confidence_level: float = 0.95, method: MeanMethod = "auto",
                  n_resamples: int = 2000, rng: RngLike = None) -> tuple[float, float, float, str]:
    """Two-sided interval of the mean: ``(low, high, standard_error, method_used)``.

    ``standard_error`` is ``sd / sqrt(n)``. All values equal gives the zero-width interval ``[v, v]``.
    Measured coverage of the nominal 95% interval (``method="auto"``) is in ``docs/statistics.md``:
    0.94-0.95 at n = 10, 16 and 32 on normal and exponential data.

    Examples
    --------
    >>> lo, hi, se, used = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], rng=0)
    >>> used, lo < 5.0 < hi
    ('studentized', True)
    """
    x = finite_1d("values", values, min_n=2)
    lo, hi, se, used = mean_intervals(x, confidence_level=confidence_level, method=method,
                                      n_resamples=n_resamples, rng=rng)
    return float(lo), float(hi), float(se), used


def mean_intervals(values: Any, *, confidence_level: float = 0.95, method: MeanMethod = "auto",
                   n_resamples: int = 2000,
                   rng: RngLike = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Literal["t", "studentized"]]:
    """:func:`mean_interval` of every column of ``values`` at once: ``(low, high, standard_error, method_used)``.

    Parameters
    ----------
    values : array_like, shape (n_prompts, ...)
        One row per prompt (or sequence); every other axis is a separate mean, e.g. ``[n, layer, head]``
        head scores.
    confidence_level, method, n_resamples, rng
        As in :func:`mean_interval`. The studentized bootstrap resamples the rows, so all columns see the
        same resampled prompts; column ``j``'s interval equals ``mean_interval(values[:, j])`` with the
        same ``rng`` (up to float summation order).

    Returns
    -------
    tuple
        ``low``, ``high``, ``standard_error`` with the shape ``values.shape[1:]``, and the method used.
        A column whose values are all equal gets ``[v, v]`` and standard error 0.

    Raises
    ------
    InputError
        Fewer than 2 rows, non-finite values, or an option out of range.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).exponential(1.0, (10, 2, 3))
    >>> lo, hi, se, used = mean_intervals(x, rng=0)
    >>> lo.shape, used, bool(np.all(lo < x.mean(0))) and bool(np.all(x.mean(0) < hi))
    ((2, 3), 'studentized', True)
    """
    x = _finite_rows("values", values)
    level = check_open_unit("confidence_level", confidence_level, "e.g. confidence_level=0.95")
    method = check_choice("method", method, ("auto", "t", "studentized"))
    n_resamples = check_int("n_resamples", n_resamples, 100)
    n = x.shape[0]
    used = choose_method(n) if method == "auto" else method
    mean, se = x.mean(0), x.std(0, ddof=1) / np.sqrt(n)
    a = (1 - level) / 2
    if used == "t":
        q = float(sst.t.ppf(1 - a, n - 1))
        qlo, qhi = np.full(mean.shape, -q), np.full(mean.shape, q)
    else:
        gen, _ = resolve_rng(rng)
        qlo, qhi = _quantiles(_t_star(x, n_resamples, gen), [a, 1 - a])
    flat = se == 0.0
    with np.errstate(invalid="ignore"):
        low = np.where(flat, mean, mean - qhi * se)
        high = np.where(flat, mean, mean - qlo * se)
    return low, high, se, used


def _finite_rows(name: str, values: Any) -> np.ndarray:
    """A finite float array with at least 2 rows (one per prompt); torch tensors are accepted."""
    if values is not None and hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an array of numbers, got {type(values).__name__}") from None
    if arr.ndim < 1 or arr.shape[0] < 2:
        raise InputError(f"{name} has shape {arr.shape}; at least 2 rows (one per prompt) are needed. "
                         "Fix: evaluate on more prompts")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} has {int(np.sum(~np.isfinite(arr)))} non-finite value(s). "
                         "Fix: drop or repair those prompts first")
    return arr


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
    p, bound = _one_sided(x[:, None], thr, sign, level, used, n_resamples, gen)
    return MeanTest(pvalue=float(p[0]), bound=float(bound[0]), **common)


def mean_tests(values: Any, *, threshold: float = 0.0, alternative: Literal["greater", "less"] = "greater",
               confidence_level: float = 0.95, method: MeanMethod = "auto", n_resamples: int = 2000,
               rng: RngLike = None) -> tuple[np.ndarray, np.ndarray, Literal["t", "studentized"]]:
    """:func:`mean_test` of every column of ``values`` at once: ``(pvalue, bound, method_used)``.

    ``values`` has one row per prompt; every other axis is a separate test (the same resampled prompts for
    all of them, as in :func:`mean_intervals`). Column ``j`` gets ``mean_test(values[:, j])``'s p-value and
    bound with the same ``rng`` (up to float summation order); columns with no spread are not special-cased
    (use :func:`mean_test` for those). Used by the calibration simulations.

    Examples
    --------
    >>> import numpy as np
    >>> p, bound, used = mean_tests(np.random.default_rng(0).normal(1.0, 1.0, (20, 3)), rng=0)
    >>> p.shape, used, bool(np.all((p <= 0.05) == (bound > 0)))
    ((3,), 'studentized', True)
    """
    x = _finite_rows("values", values)
    thr = float(threshold)
    alternative = check_choice("alternative", alternative, ("greater", "less"))
    level = check_open_unit("confidence_level", confidence_level, "e.g. confidence_level=0.95")
    method = check_choice("method", method, ("auto", "t", "studentized"))
    n_resamples = check_int("n_resamples", n_resamples, 100)
    used = choose_method(x.shape[0]) if method == "auto" else method
    gen, _ = resolve_rng(rng)
    flat = x.reshape(x.shape[0], -1)
    p, bound = _one_sided(flat, thr, 1.0 if alternative == "greater" else -1.0, level, used, n_resamples, gen)
    return p.reshape(x.shape[1:]), bound.reshape(x.shape[1:]), used


def _one_sided(x: np.ndarray, thr: float, sign: float, level: float, used: str, n_resamples: int,
               gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """p-values and one-sided bounds of the columns of ``x`` ``(n, m)`` (columns with spread)."""
    n = x.shape[0]
    mean, se = x.mean(0), x.std(0, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_obs = (mean - thr) / se
    if used == "t":
        df = n - 1
        p = sst.t.sf(t_obs, df) if sign > 0 else sst.t.cdf(t_obs, df)
        return p, mean - sign * float(sst.t.ppf(level, df)) * se
    t_star = _t_star(x, n_resamples, gen)
    count = np.sum(t_star >= t_obs, 0) if sign > 0 else np.sum(t_star <= t_obs, 0)
    q = _quantiles(t_star, [level if sign > 0 else 1 - level])[0]
    return (1 + count) / (1 + n_resamples), mean - q * se
