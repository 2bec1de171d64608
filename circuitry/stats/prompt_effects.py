"""Per-site effects over prompts: the normalized effect, its interval and a p-value against "no effect".

For one patched site (a head, or a path) circuitry has, per prompt ``i``, the metric of the patched
run ``p_i``, of the clean run ``c_i`` and of the corrupted run ``k_i``.

* **Effect size**: the normalized effect ``(mean(p) - mean(k)) / (mean(c) - mean(k))`` (Zhang & Nanda
  2024), with the interval that inverts the test below (:func:`circuitry.stats.skew_t.ratio_interval`:
  Fieller's construction with Hall's statistic), so the interval excludes the unpatched value exactly
  when the p-value is at most ``1 - confidence_level``. Nothing is drawn at random.
* **p-value**: the per-prompt change ``d_i = p_i - b_i`` against the unpatched run of the same direction
  (``b = c`` when noising, ``b = k`` when denoising) is tested for a zero mean with Hall's skewness-corrected
  t-test (:mod:`circuitry.stats.skew_t`: calibrated for normal and skewed changes from 10 prompts, floor 0).

A family of sites is decided together by :func:`circuitry.stats.decide.decide_sites` (correction, practical
significance); this function is the single-site view of the same numbers.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from circuitry.errors import InputError
from circuitry.provenance import Frozen
from circuitry.stats._common import SIGNFLIP_NULL, signflip_pvalue
from circuitry.stats.skew_t import SKEW_T_NULL, SKEW_T_TEST, ratio_interval, skew_t_pvalue

__all__ = ["PromptEffect", "prompt_effect", "signflip_pvalue", "SIGNFLIP_NULL"]


class PromptEffect(Frozen):
    """Normalized effect of one site with its test-inverting interval and Hall's p-value.

    ``ci_low``/``ci_high`` are ``None`` on a side where the interval is unbounded (the clean-corrupted gap
    is not resolved: ``gap_resolved`` is False)."""

    effect: float
    ci_low: float | None
    ci_high: float | None
    mean_change: float
    pvalue: float
    n: int
    confidence_level: float
    alternative: str
    gap_resolved: bool
    min_attainable_pvalue: float = 0.0
    null: str = SKEW_T_NULL
    method: str = "inversion of Hall's test (Fieller's construction)"
    test: str = SKEW_T_TEST

    def share(self, direction: str) -> tuple[float, float | None, float | None]:
        """``(share, ci_low, ci_high)``: the share of the clean-corrupted gap the site carries, positive
        when it matters: ``1 - effect`` when noising (interval flipped), ``effect`` when denoising; ends
        ``None`` where unbounded."""
        if direction == "noising":
            return (1 - self.effect, None if self.ci_high is None else 1 - self.ci_high,
                    None if self.ci_low is None else 1 - self.ci_low)
        return self.effect, self.ci_low, self.ci_high


def prompt_effect(patched: Any, clean: Any, corrupted: Any, *, direction: Literal["noising", "denoising"],
                  confidence_level: float = 0.95,
                  alternative: Literal["two-sided", "greater", "less"] = "two-sided") -> PromptEffect:
    """Effect size, interval and p-value of one patched site from per-prompt metrics (module docstring).

    Examples
    --------
    >>> c = np.array([3.1, 2.9, 3.4, 3.0, 2.7, 3.3, 3.2, 2.8, 3.0, 3.1])
    >>> k = np.zeros(10)
    >>> e = prompt_effect(c - 1.0 + 0.1 * np.sin(np.arange(10)), c, k, direction="noising")
    >>> round(e.share("noising")[0], 3), e.pvalue < 1e-6
    (0.321, True)
    """
    p, c, k = (np.asarray(x, dtype=float).ravel() for x in (patched, clean, corrupted))
    if not (len(p) == len(c) == len(k)) or len(p) < 2:
        raise InputError(f"patched, clean and corrupted need the same number (>= 2) of prompts; got "
                         f"{len(p)}, {len(c)}, {len(k)}")
    if direction not in ("noising", "denoising"):
        raise InputError(f"direction={direction!r}; expected 'noising' or 'denoising'")
    est, lo, hi = (float(v[0]) for v in ratio_interval(p - k, c - k, confidence_level=confidence_level))
    d = p - (c if direction == "noising" else k)
    pval = float(skew_t_pvalue(d, alternative=alternative))
    resolved = bool(skew_t_pvalue(c - k) <= 1 - confidence_level)
    fin = lambda v: v if np.isfinite(v) else None  # noqa: E731
    return PromptEffect(effect=est if np.isfinite(est) else 0.0, ci_low=fin(lo), ci_high=fin(hi),
                        mean_change=float(d.mean()), pvalue=pval, n=len(p), confidence_level=confidence_level,
                        alternative=alternative, gap_resolved=resolved)
