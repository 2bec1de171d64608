"""Is there a clean-corrupted gap to explain? The test every share of the gap depends on.

A share ``(M_clean - M_patched) / (M_clean - M_corrupted)`` divides by the gap between the clean and the
corrupted runs. When that gap is indistinguishable from 0 the model does not tell the two prompt sets apart
on this metric, and every share is a ratio over noise: circuitry then says so instead of reporting shares.

The test: per prompt ``d_i = M_clean,i - M_corrupted,i``; Student's one-sample t-test of ``mean(d) = 0``
(two-sided) and its t confidence interval (``scipy.stats.ttest_1samp``). The gap is *resolved* when the
interval excludes 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as sst

from circuitry.errors import InputError
from circuitry.provenance import Frozen


class GapSummary(Frozen):
    """The clean-minus-corrupted gap of a metric over prompts, with its t interval and p-value."""

    mean: float
    ci_low: float
    ci_high: float
    pvalue: float
    n: int
    confidence_level: float
    resolved: bool
    min_attainable_pvalue: float = 0.0
    null: str = "mean(M_clean - M_corrupted) = 0"
    test: str = "one-sample Student t-test of mean(M_clean - M_corrupted) = 0, two-sided"


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
        res = sst.ttest_1samp(d, 0.0)
        ci = res.confidence_interval(confidence_level)
        lo, hi, p = float(ci.low), float(ci.high), float(res.pvalue)
    return GapSummary(mean=mean, ci_low=lo, ci_high=hi, pvalue=p, n=len(d), confidence_level=confidence_level,
                      resolved=bool(lo > 0 or hi < 0))
