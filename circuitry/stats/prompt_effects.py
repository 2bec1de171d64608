"""Per-site effects over prompts: a CI of the normalized effect and a p-value against "no effect".

For one patched site (a head, or a path) circuitry has, per prompt ``i``, the metric of the patched
run ``p_i``, of the clean run ``c_i`` and of the corrupted run ``k_i``.

* **Effect size**: the normalized effect ``(mean(p) - mean(k)) / (mean(c) - mean(k))`` (Zhang & Nanda
  2024), with a paired bootstrap CI over prompts (``scipy.stats.bootstrap``, ``paired=True``: the
  same prompts are resampled in all three arrays; BCa by default, percentile when BCa is undefined).
* **p-value**: the per-prompt change ``d_i = p_i - b_i`` against the unpatched run of the same
  direction (``b = c`` when noising, ``b = k`` when denoising) is tested for a zero mean with a
  sign-flip permutation test (:func:`~circuitry.stats._common.signflip_pvalue`: the p-value of
  ``scipy.stats.permutation_test``, one sample, ``permutation_type="samples"``, vectorized). Its null is **symmetry**: each ``d_i`` is symmetric about 0 (then every
  sign pattern is equally likely and the p-value is exact). It is only approximately a test of a zero
  *mean*: with skewed, mean-zero changes it rejects 8.5 % (exponential) and 14.2 % (lognormal) at 5 % for
  16 prompts (measured, see ``docs/statistics.md``). Studentizing does not change this: under sign flips ``sum(d_i^2)`` is fixed,
  so the t statistic is an increasing function of the mean and orders the sign patterns identically
  (``tests/stats/test_intervals.py`` checks the p-values agree). Two-sided by default; the floor
  (smallest attainable p) is ``min_attainable_pvalue``. Many sites tested at once are corrected with
  :func:`circuitry.stats.adjust_pvalues`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import stats as sst

from circuitry.errors import InputError
from circuitry.provenance import Frozen
from circuitry.stats._common import SIGNFLIP_NULL, RngLike, resolve_rng, signflip_floor, signflip_pvalue
from circuitry.stats.ratio import fieller_interval

__all__ = ["PromptEffect", "prompt_effect", "signflip_pvalue", "SIGNFLIP_NULL"]


class PromptEffect(Frozen):
    """Normalized effect of one site with its bootstrap CI and sign-flip p-value."""

    effect: float
    ci_low: float
    ci_high: float
    mean_change: float
    pvalue: float
    n: int
    confidence_level: float
    method: str
    n_resamples: int
    n_permutations: int
    alternative: str
    seed: int | None
    min_attainable_pvalue: float = 0.0
    null: str = SIGNFLIP_NULL
    gap_resolved: bool | None = None
    fieller_low: float | None = None
    fieller_high: float | None = None
    test: str = "paired bootstrap CI of the normalized effect; sign-flip permutation test of the per-prompt change"


    def share(self, direction: str) -> tuple[float, float, float]:
        """``(share, ci_low, ci_high)``: the share of the clean-corrupted gap the site carries, positive
        when it matters: ``1 - effect`` when noising (interval flipped), ``effect`` when denoising."""
        if direction == "noising":
            return 1 - self.effect, 1 - self.ci_high, 1 - self.ci_low
        return self.effect, self.ci_low, self.ci_high

    def share_fieller(self, direction: str) -> tuple[float | None, float | None, float | None]:
        """``(share, low, high)`` from Fieller's interval of the normalized effect (Fieller 1954): all
        ``None`` when the clean-corrupted gap is unresolved at ``confidence_level`` (a share of it is not a
        number), ends ``None`` when unbounded. Prefer it to :meth:`share` for reports."""
        if not self.gap_resolved:
            return None, None, None
        lo, hi = self.fieller_low, self.fieller_high
        if direction == "noising":
            return 1 - self.effect, None if hi is None else 1 - hi, None if lo is None else 1 - lo
        return self.effect, lo, hi


def _ratio(p, c, k, axis=-1):
    return (p.mean(axis) - k.mean(axis)) / (c.mean(axis) - k.mean(axis))


def prompt_effect(patched: Any, clean: Any, corrupted: Any, *, direction: Literal["noising", "denoising"],
                  confidence_level: float = 0.95, method: Literal["BCa", "percentile"] = "BCa",
                  n_resamples: int = 2000, n_permutations: int = 9999,
                  alternative: Literal["two-sided", "greater", "less"] = "two-sided",
                  rng: RngLike = None) -> PromptEffect:
    """Effect size, CI and p-value of one patched site from per-prompt metrics (see module docstring).

    ``n_resamples`` bootstrap resamples give the CI; ``n_permutations`` random sign flips give the
    p-value, whose floor ``min_attainable_pvalue`` is ``1 / 2**n`` (exact enumeration when ``2**n <=
    n_permutations``) or ``1 / (n_permutations + 1)``, doubled when two-sided: keep it well below
    ``alpha / m`` when ``m`` sites are corrected together. With 2, 3 or 5 prompts the two-sided floor is 1/2,
    1/4 or 1/16: no such site can be significant at 0.05."""
    p, c, k = (np.asarray(x, dtype=float).ravel() for x in (patched, clean, corrupted))
    if not (len(p) == len(c) == len(k)) or len(p) < 2:
        raise InputError(f"patched, clean and corrupted need the same number (>= 2) of prompts; got "
                         f"{len(p)}, {len(c)}, {len(k)}")
    if direction not in ("noising", "denoising"):
        raise InputError(f"direction={direction!r}; expected 'noising' or 'denoising'")
    gen, seed = resolve_rng(rng)
    eff = float(_ratio(p, c, k))
    lo = hi = eff
    used = method
    if np.ptp(p) > 0 or np.ptp(c) > 0 or np.ptp(k) > 0:
        with np.errstate(all="ignore"):
            res = sst.bootstrap((p, c, k), _ratio, paired=True, vectorized=True, n_resamples=n_resamples,
                                confidence_level=confidence_level, method=method, random_state=gen)
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
            if not (np.isfinite(lo) and np.isfinite(hi)) and method == "BCa":
                res = sst.bootstrap((p, c, k), _ratio, paired=True, vectorized=True, n_resamples=n_resamples,
                                    confidence_level=confidence_level, method="percentile", random_state=gen)
                lo, hi, used = float(res.confidence_interval.low), float(res.confidence_interval.high), "percentile"
    d = p - (c if direction == "noising" else k)
    pval = signflip_pvalue(d, alternative=alternative, n_permutations=n_permutations, rng=gen)
    fl = fieller_interval(p - k, c - k, confidence_level=confidence_level) if np.ptp(c - k) > 0 else None
    return PromptEffect(effect=eff, ci_low=lo, ci_high=hi, mean_change=float(d.mean()), pvalue=pval, n=len(p),
                        confidence_level=confidence_level, method=used, n_resamples=n_resamples,
                        n_permutations=n_permutations, alternative=alternative, seed=seed,
                        min_attainable_pvalue=signflip_floor(len(p), n_permutations, alternative),
                        gap_resolved=None if fl is None else fl.kind == "bounded",
                        fieller_low=None if fl is None else fl.low, fieller_high=None if fl is None else fl.high)

