"""The one place that decides whether a site's effect is real and large enough to matter.

A *site* is anything whose per-prompt effect on a metric circuitry measures: a head under activation
patching, a path under path patching (``analyze``), an edge under exact edge patching, EAP or EAP-IG
(``discover``). For every level the data have the same shape: per prompt ``i`` a change ``x_i`` (positive
when the site carries the clean-corrupted gap) and the gap ``g_i = M_clean,i - M_corrupted,i``. The
decision is the same everywhere, so the same edge on the same prompts at the same ``alpha`` gets the same
verdict from ``analyze`` and ``discover`` (``tests/stats/test_decide.py`` pins it):

* **effect size**: the share ``mean(x) / mean(g)`` with the interval that inverts the test below
  (:func:`circuitry.stats.skew_t.ratio_interval`): 0 is outside it exactly when the raw p <= 1 - level;
* **statistical significance**: Hall's skewness-corrected t-test of ``mean(x) = 0`` over prompts
  (:mod:`circuitry.stats.skew_t`; continuous, floor 0, nothing drawn at random, so the verdict depends
  only on the data and the question), corrected over the family of sites (Holm for heads, Benjamini-
  Hochberg for paths and edges, named in every result), significant when the adjusted p <= ``alpha``;
* **practical significance**: ``|share| >= min_share`` (default :data:`MIN_SHARE`, 5 % of the gap; a
  documented option of every command), a separate test: a share of -0.0002 is never a circuit member
  however small its p-value;
* **member** of the circuit: both.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np

from circuitry.display import Displayed, Table, interval, percent, ranked
from circuitry.errors import InputError, bad_value
from circuitry.provenance import Frozen
from circuitry.stats.multiple import Correction, adjust_pvalues
from circuitry.stats.skew_t import SKEW_T_NULL, SKEW_T_TEST, ratio_interval, skew_t_pvalue, skew_t_statistic

__all__ = ["MIN_SHARE", "Level", "SiteDecision", "SiteDecisions", "decide_sites", "DEFAULT_CORRECTION"]

MIN_SHARE = 0.05
"""Default practical-significance threshold: a site matters when it carries at least 5 % of the gap."""

Level = Literal["head", "path", "edge"]
"""``"head"``: activation patching of one head; ``"path"``: path patching sender -> receiver;
``"edge"``: one edge of the computational graph (exact patching, EAP, EAP-IG)."""

DEFAULT_CORRECTION: dict[str, Correction] = {"head": "holm", "path": "bh", "edge": "bh"}
"""Heads are few and each is a claim on its own (family-wise, Holm); paths and edges are many and read as
a set (false discovery rate, Benjamini-Hochberg)."""

Outcome = Literal["member", "significant but small", "large but not significant", "neither"]


class SiteDecision(Frozen):
    """One site's effect and verdict. ``share``: the share of the gap it carries (positive = it matters),
    ``ci_low``/``ci_high`` its interval (``None`` where unbounded), ``pvalue`` Hall's two-sided p of no
    mean change, ``pvalue_adjusted`` after the family's correction."""

    site: str
    share: float
    ci_low: float | None
    ci_high: float | None
    mean_change: float
    statistic: float
    pvalue: float
    pvalue_adjusted: float
    significant: bool
    matters: bool

    @property
    def member(self) -> bool:
        """Significant *and* large enough to matter."""
        return self.significant and self.matters

    @property
    def outcome(self) -> Outcome:
        if self.significant:
            return "member" if self.matters else "significant but small"
        return "large but not significant" if self.matters else "neither"


class SiteDecisions(Displayed, Frozen):
    """Every site of one family with the test, null, floor, correction and thresholds named."""

    level: Level
    test: str = SKEW_T_TEST
    null: str = SKEW_T_NULL
    statistic: str = "Hall's transformed t, referred to Student's t with n - 1 degrees of freedom"
    floor: float = 0.0
    correction: Correction
    alpha: float
    min_share: float
    confidence_level: float
    n_prompts: int
    sites: list[SiteDecision]

    def __len__(self) -> int:
        return len(self.sites)

    def members(self) -> list[SiteDecision]:
        """The sites that are both significant and large enough, largest share first."""
        return sorted((s for s in self.sites if s.member), key=lambda s: -abs(s.share))

    def describe(self) -> str:
        """One sentence naming the test, null, floor, correction and thresholds."""
        return (f"{self.test} over {self.n_prompts} prompts (null: {self.null}; floor {self.floor:g}); "
                f"{_CORR_NAME[self.correction]} over {len(self.sites)} {self.level}s at alpha {self.alpha:g}; "
                f"a site matters when |share| >= {self.min_share:g} of the gap")

    def _table(self) -> Table:
        """The sites with the largest |share| with their interval, raw and adjusted p-value and outcome."""
        rows = [(d.site, d.share, interval(d.ci_low, d.ci_high), d.pvalue, d.pvalue_adjusted, d.outcome)
                for d in ranked(self.sites, key=lambda d: d.share)]
        return Table(f"SiteDecisions: {len(self.sites)} {self.level}s; members: {len(self.members())}",
                     (self.level, "share", percent(self.confidence_level), "p", f"p_adj ({self.correction})",
                      "outcome"), rows, notes=[f"test: {self.describe()}"], noun=self.level)


_CORR_NAME = {"holm": "Holm", "bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni"}


def decide_sites(changes: Any, gap: Any, *, labels: Sequence[str], level: Level, alpha: float,
                 min_share: float = MIN_SHARE, correction: Correction | None = None,
                 confidence_level: float = 0.95) -> SiteDecisions:
    """Decide every site of a family (see the module docstring).

    Parameters
    ----------
    changes : array ``[site, prompt]``
        Per-prompt change of the metric each site causes, signed so that positive carries the gap: noising
        ``M_clean - M_patched``, denoising ``M_patched - M_corrupted``; for an edge score ``s`` measured as
        ``M_patched - M_clean``, ``-s``.
    gap : array ``[prompt]``
        ``M_clean - M_corrupted`` per prompt.
    labels
        One name per site.
    level
        :data:`Level`; sets the default correction (:data:`DEFAULT_CORRECTION`).
    alpha
        Significance level of the adjusted p-values, in (0, 1).
    min_share
        Practical significance: ``|share| >= min_share``.
    correction
        ``"holm"``, ``"bh"`` or ``"bonferroni"``; default by level.
    confidence_level
        Level of each share's interval.

    Returns
    -------
    SiteDecisions

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> gap = 1 + 0.1 * rng.standard_normal(20)
    >>> changes = np.stack([0.6 * gap + 0.05 * rng.standard_normal(20), 0.001 * rng.standard_normal(20)])
    >>> d = decide_sites(changes, gap, labels=["a", "b"], level="edge", alpha=0.01)
    >>> [(s.site, s.outcome) for s in d.sites]
    [('a', 'member'), ('b', 'neither')]
    """
    x = np.atleast_2d(np.asarray(changes, dtype=float))
    g = np.asarray(gap, dtype=float).ravel()
    labels = list(labels)
    if x.shape[0] != len(labels):
        raise bad_value("labels", f"{len(labels)} labels", f"one label per site ({x.shape[0]} sites)")
    if x.shape[1] != g.size:
        raise InputError(f"changes has {x.shape[1]} prompts per site but gap has {g.size}; give one gap value "
                         "per prompt")
    if g.size < 2:
        raise bad_value("changes", f"{g.size} prompts", "at least 2 prompts per site (10 or more for the "
                        "calibration docs/statistics.md reports)", "give more prompt pairs")
    if not (np.isfinite(x).all() and np.isfinite(g).all()):
        raise InputError("a per-prompt change or gap is not finite (NaN or inf): check the model and the metric")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise bad_value("alpha", alpha, "a number in (0, 1)", "use alpha=0.01")
    if not (isinstance(min_share, (int, float)) and min_share >= 0):
        raise bad_value("min_share", min_share, "a number >= 0", f"use min_share={MIN_SHARE}")
    if level not in DEFAULT_CORRECTION:
        raise bad_value("level", level, "'head', 'path' or 'edge'")
    correction = correction or DEFAULT_CORRECTION[level]
    T_p, T = skew_t_pvalue(x), skew_t_statistic(x)
    adj = adjust_pvalues(T_p, method=correction) if len(labels) else np.zeros(0)
    share, lo, hi = ratio_interval(x, g, confidence_level=confidence_level)
    sites = []
    for i, lab in enumerate(labels):
        sh = float(share[i]) if np.isfinite(share[i]) else 0.0
        sites.append(SiteDecision(
            site=lab, share=sh, ci_low=float(lo[i]) if np.isfinite(lo[i]) else None,
            ci_high=float(hi[i]) if np.isfinite(hi[i]) else None, mean_change=float(x[i].mean()),
            statistic=float(T[i]), pvalue=float(T_p[i]), pvalue_adjusted=float(adj[i]),
            significant=bool(adj[i] <= alpha), matters=bool(abs(sh) >= min_share)))
    return SiteDecisions(level=level, correction=correction, alpha=float(alpha), min_share=float(min_share),
                         confidence_level=float(confidence_level), n_prompts=int(g.size), sites=sites)
