"""Bootstrap confidence intervals over prompts for any per-prompt effect.

The resampling unit is the prompt: an effect (patching, ablation, path patching, ICL score) is measured
once per prompt and the prompts are resampled with replacement. The default ``method="auto"`` picks the
interval by n (:mod:`circuitry.stats.intervals`): for a mean, Student's t below 8 prompts and the
studentized bootstrap (bootstrap-t; Hall 1988, Efron & Tibshirani 1993 ch. 12.5) from 8 on, which covers
0.939-0.951 at n = 10-32 on normal and exponential data where BCa covers 0.875-0.941 (measured,
``docs/statistics.md``); BCa (Efron 1987, "Better bootstrap confidence intervals", JASA 82) through
:func:`scipy.stats.bootstrap` for other statistics.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Literal

import numpy as np
from scipy import stats

from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen
from circuitry.stats._common import (ConfidenceInterval, RngLike, check_choice, check_int,
                                     check_open_unit, finite_1d, resolve_rng)
from circuitry.stats.intervals import choose_method, mean_interval

BootstrapMethod = Literal["auto", "BCa", "percentile", "basic", "studentized", "t"]
"""``"auto"``: picked by n (:mod:`circuitry.stats.intervals`): for a mean, Student's t below 8 prompts and
the studentized bootstrap from 8 on; BCa for other statistics. ``"BCa"``: bias-corrected and accelerated
(Efron 1987). ``"percentile"``: the quantiles of the bootstrap distribution. ``"basic"``: the
reverse-percentile interval. ``"studentized"``: bootstrap-t (means only). ``"t"``: Student's t (means only).
``"auto"`` is the default (claims, ``circuitry scores`` and every other caller use it); ask for ``"BCa"``
explicitly to get the former default, which under-covers means at small n (0.875-0.922 at n = 10-16: see
``docs/statistics.md``)."""

StatisticName = Literal["mean", "median"]
"""The named statistics; any callable ``f(values, axis=-1) -> float`` also works."""

_STATISTICS: dict[str, Callable[..., Any]] = {"mean": np.mean, "median": np.median}
_TESTS = {"t": "Student's t interval of the mean over prompts (scipy.stats.t)",
          "studentized": "studentized bootstrap (bootstrap-t) interval of the mean over prompts (Hall 1988)"}


class EffectEstimate(Frozen):
    """An effect with its bootstrap confidence interval.

    Attributes
    ----------
    statistic : float
        The statistic on the observed prompts (e.g. the mean effect).
    confidence_interval : ConfidenceInterval
        ``low`` and ``high`` at ``confidence_level``. Zero width when every prompt has the same value.
    standard_error : float
        Standard deviation of the bootstrap distribution (``sd / sqrt(n)`` for ``"t"`` and
        ``"studentized"``).
    n : int
        Number of prompts (the resampling unit).
    statistic_name : str
        ``"mean"``, ``"median"`` or the callable's name.
    paired : bool
        True when the values are per-prompt differences (see :func:`paired_bootstrap_ci`).
    method, n_resamples, confidence_level, seed
        How the interval was computed; ``seed`` is None only when a Generator was passed.
    test : str
        The procedure, for reports.
    note : str
        Set when a degenerate case was handled (e.g. all values equal).
    """

    statistic: float
    confidence_interval: ConfidenceInterval
    standard_error: float
    n: int
    statistic_name: str
    paired: bool = False
    method: BootstrapMethod
    n_resamples: int
    confidence_level: float
    seed: int | None
    test: str = "nonparametric bootstrap over prompts (scipy.stats.bootstrap)"
    note: str = ""


def bootstrap_ci(
    per_prompt_values: Any,
    *,
    statistic: StatisticName | Callable[..., Any] = "mean",
    confidence_level: float = 0.95,
    method: BootstrapMethod = "auto",
    n_resamples: int = 2000,
    rng: RngLike = None,
) -> EffectEstimate:
    """Bootstrap confidence interval of a per-prompt effect.

    Parameters
    ----------
    per_prompt_values : array_like, shape (n_prompts,)
        One effect per prompt (e.g. the change in logit difference when a head is ablated).
    statistic : {"mean", "median"} or callable
        What to estimate. A callable must accept ``(values, axis=-1)`` like numpy reductions.
    confidence_level : float
        Coverage of the interval, in (0, 1).
    method : {"auto", "BCa", "percentile", "basic", "studentized", "t"}
        Interval construction (:data:`BootstrapMethod`). ``"auto"`` (default) picks by n: Student's t
        below 8 prompts, the studentized bootstrap from 8 for a mean (coverage measured at n = 10, 16, 32
        on normal and exponential data, ``tests/stats/test_calibration.py``); BCa for other statistics.
        ``method`` in the result records the method used.
    n_resamples : int
        Bootstrap resamples (>= 100).
    rng : None, int or numpy.random.Generator
        Randomness; the seed used is recorded in the result.

    Returns
    -------
    EffectEstimate

    Raises
    ------
    InputError
        Fewer than 2 prompts, non-finite values, or an option out of range.

    Notes
    -----
    When all values are equal the bootstrap distribution is a point mass; scipy's BCa returns NaN
    there, circuitry returns the zero-width interval ``[v, v]`` with standard error 0 and says so in
    ``note``. If BCa is still undefined (e.g. a median whose resamples barely vary), the percentile
    interval is used and ``method``/``note`` record the switch.

    References
    ----------
    Efron, B. (1987). Better bootstrap confidence intervals. JASA 82(397), 171-185.
    Hall, P. (1988). Theoretical comparison of bootstrap confidence intervals. Ann. Stat. 16, 927-953.

    Examples
    --------
    >>> est = bootstrap_ci([0.9, 1.1, 1.0, 1.3, 0.8, 1.2], n_resamples=500, rng=0)
    >>> est.method   # 6 prompts: Student's t
    't'
    >>> round(est.statistic, 2), est.confidence_interval.low < 1.05 < est.confidence_interval.high
    (1.05, True)
    """
    values = finite_1d("per_prompt_values", per_prompt_values, min_n=2)
    return _bootstrap(values, statistic=statistic, confidence_level=confidence_level, method=method,
                      n_resamples=n_resamples, rng=rng, paired=False)


def paired_bootstrap_ci(
    values: Any,
    baseline: Any,
    *,
    statistic: StatisticName | Callable[..., Any] = "mean",
    confidence_level: float = 0.95,
    method: BootstrapMethod = "auto",
    n_resamples: int = 2000,
    rng: RngLike = None,
) -> EffectEstimate:
    """Bootstrap interval of the per-prompt difference ``values - baseline`` (e.g. patched minus clean).

    The prompts are resampled as pairs, which keeps the correlation between the two runs on the same
    prompt: much tighter than comparing two independent intervals. Parameters as in
    :func:`bootstrap_ci`; ``values`` and ``baseline`` must have one entry per prompt, in the same order.

    Examples
    --------
    >>> est = paired_bootstrap_ci([2.0, 2.5, 3.1, 2.2], [1.0, 1.4, 2.0, 1.1], n_resamples=200, rng=0)
    >>> round(est.statistic, 3), est.paired
    (1.075, True)
    """
    a = finite_1d("values", values, min_n=2)
    b = finite_1d("baseline", baseline, min_n=2)
    if a.shape != b.shape:
        raise InputError(f"values has {a.size} prompts but baseline has {b.size}; a paired interval needs "
                         "one baseline per prompt, in the same order")
    return _bootstrap(a - b, statistic=statistic, confidence_level=confidence_level, method=method,
                      n_resamples=n_resamples, rng=rng, paired=True)


def _bootstrap(values: np.ndarray, *, statistic: Any, confidence_level: float, method: str,
               n_resamples: int, rng: RngLike, paired: bool) -> EffectEstimate:
    level = check_open_unit("confidence_level", confidence_level, "e.g. confidence_level=0.95")
    method = check_choice("method", method, ("auto", "BCa", "percentile", "basic", "studentized", "t"))
    n_resamples = check_int("n_resamples", n_resamples, 100)
    if callable(statistic):
        fn, name = statistic, getattr(statistic, "__name__", "custom")
    elif statistic in _STATISTICS:
        fn, name = _STATISTICS[statistic], str(statistic)
    else:
        raise bad_value("statistic", statistic, "'mean', 'median' or a callable f(values, axis=-1)")
    is_mean = fn is np.mean
    if method == "auto":
        method = choose_method(values.size) if is_mean else "BCa"
    if method in ("studentized", "t") and not is_mean:
        raise bad_value("method", method, "'BCa', 'percentile' or 'basic' for a statistic other than the mean",
                        "use method='auto'")
    gen, seed = resolve_rng(rng)
    observed = float(fn(values, axis=-1))
    common = dict(statistic=observed, n=int(values.size), statistic_name=name, paired=paired,
                  n_resamples=n_resamples, confidence_level=level, seed=seed)
    if np.ptp(values) == 0:
        return EffectEstimate(confidence_interval=ConfidenceInterval(low=observed, high=observed),
                              standard_error=0.0, method=method,
                              note="all values are equal: zero-width interval, standard error 0", **common)
    if method in ("studentized", "t"):
        lo, hi, se, _ = mean_interval(values, confidence_level=level, method=method, n_resamples=n_resamples,
                                      rng=gen)
        return EffectEstimate(confidence_interval=ConfidenceInterval(low=lo, high=hi), standard_error=se,
                              method=method, test=_TESTS[method], **common)
    res = _scipy_bootstrap(values, fn, level, method, n_resamples, gen)
    note = ""
    if not (np.isfinite(res.confidence_interval.low) and np.isfinite(res.confidence_interval.high)):
        if float(res.standard_error) == 0.0:
            return EffectEstimate(confidence_interval=ConfidenceInterval(low=observed, high=observed),
                                  standard_error=0.0, method=method,
                                  note="every resample gave the same statistic: zero-width interval", **common)
        note = f"{method} interval undefined for these data (degenerate jackknife); percentile used instead"
        method = "percentile"
        res = _scipy_bootstrap(values, fn, level, method, n_resamples, gen)
    return EffectEstimate(
        confidence_interval=ConfidenceInterval(low=float(res.confidence_interval.low),
                                               high=float(res.confidence_interval.high)),
        standard_error=float(res.standard_error), method=method, note=note, **common)


def _scipy_bootstrap(values: np.ndarray, fn: Any, level: float, method: str, n_resamples: int,
                     gen: np.random.Generator) -> Any:
    with warnings.catch_warnings():
        # Degenerate data are handled by the caller; scipy's warning would only repeat it.
        warnings.simplefilter("ignore", category=stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return stats.bootstrap((values,), fn, confidence_level=level, method=method,
                               n_resamples=n_resamples, rng=gen)
