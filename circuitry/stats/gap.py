"""Is there a clean-corrupted gap to explain? The test every share of the gap depends on.

A share ``(M_clean - M_patched) / (M_clean - M_corrupted)`` divides by the gap between the clean and the
corrupted runs. When that gap is indistinguishable from 0 the model does not tell the two prompt sets apart
on this metric, and every share is a ratio over noise: circuitry then says so instead of reporting shares.

The test: per prompt ``d_i = M_clean,i - M_corrupted,i``; Hall's skewness-corrected one-sample t-test of
``mean(d) = 0`` (two-sided, :mod:`circuitry.stats.skew_t`, the test every per-site effect uses) and the
interval that inverts it. The gap is *resolved* when the interval excludes 0, i.e. when the test rejects at
``1 - confidence_level``; exactly then every share's interval (:func:`circuitry.stats.skew_t.ratio_interval`)
is bounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitry.errors import InputError
from circuitry.provenance import Frozen
from circuitry.stats.skew_t import SKEW_T_TEST, ratio_interval, skew_t_pvalue


class GapSummary(Frozen):
    """The clean-minus-corrupted gap of a metric over prompts, with its interval and p-value."""

    mean: float
    ci_low: float
    ci_high: float
    pvalue: float
    n: int
    confidence_level: float
    resolved: bool
    min_attainable_pvalue: float = 0.0
    null: str = "mean(M_clean - M_corrupted) = 0"
    test: str = SKEW_T_TEST


def gap_summary(clean: Any, corrupted: Any, *, confidence_level: float = 0.95) -> GapSummary:
    """Summarize the clean-corrupted gap (see the module docstring)."""
    c, k = (np.asarray(x, dtype=float).ravel() for x in (clean, corrupted))
    if len(c) != len(k) or len(c) < 2:
        raise InputError(f"clean and corrupted need the same number (>= 2) of prompts; got {len(c)} and {len(k)}")
    d = c - k
    if not np.isfinite(d).all():
        raise InputError("the clean or corrupted metric is not finite on some prompt (NaN or inf): check the model's "
                         "weights and the task's answers")
    mean = float(d.mean())
    if np.ptp(d) == 0:
        lo = hi = mean
        p = 0.0 if mean != 0 else 1.0
    else:
        _, lo_, hi_ = ratio_interval(d[None], np.ones_like(d), confidence_level=confidence_level)
        lo, hi, p = float(lo_[0]), float(hi_[0]), float(skew_t_pvalue(d))
    return GapSummary(mean=mean, ci_low=lo, ci_high=hi, pvalue=p, n=len(d), confidence_level=confidence_level,
                      resolved=bool(lo > 0 or hi < 0))
