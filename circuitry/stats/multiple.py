"""Corrections for testing many heads or edges at once.

``"holm"`` (Holm 1979) and ``"bonferroni"`` control the family-wise error rate (the chance of any false
claim); ``"bh"`` (Benjamini & Hochberg 1995, via :func:`scipy.stats.false_discovery_control`) controls
the false discovery rate (the expected share of false claims among the claims made) under independence
or positive dependence. Holm is uniformly more powerful than Bonferroni with the same guarantee.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
from scipy import stats

from circuitry.display import Displayed, Table
from circuitry.errors import InputError
from circuitry.provenance import Frozen
from circuitry.stats._common import check_choice, check_open_unit, finite_1d

Correction = Literal["holm", "bh", "bonferroni"]
"""``"holm"``: Holm step-down, controls the family-wise error rate. ``"bh"``: Benjamini-Hochberg step-up,
controls the false discovery rate. ``"bonferroni"``: ``min(1, m p)``, family-wise, more conservative."""

_ERROR_RATE = {"holm": "family-wise error rate", "bonferroni": "family-wise error rate",
               "bh": "false discovery rate"}


class CorrectedPValues(Displayed, Frozen):
    """Raw and adjusted p-values of a family of tests, with the correction named."""

    method: Correction
    controls: str
    alpha: float
    labels: list[str]
    pvalues: list[float]
    adjusted_pvalues: list[float]
    rejected: list[bool]
    n_tests: int
    #: the smallest adjusted p-value each test could reach given its raw floor (``floors=``): Holm and
    #: Bonferroni ``min(1, m * floor)``, BH ``floor``; ``None`` when no floors were given
    adjusted_floors: list[float] | None = None
    #: tests that could not be rejected at ``alpha`` whatever the data (adjusted floor > alpha)
    inconclusive: list[bool] | None = None

    def _table(self) -> Table:
        """The tests with the smallest adjusted p-values, raw and adjusted, with the adjusted floor if known."""
        floors = self.adjusted_floors or [None] * self.n_tests
        rows = sorted(zip(self.labels, self.pvalues, self.adjusted_pvalues, floors,
                          ("yes" if r else "" for r in self.rejected)), key=lambda r: (r[2], r[1]))
        return Table(f"CorrectedPValues: {self.method} over {self.n_tests} tests, {sum(self.rejected)} rejected at "
                     f"alpha {self.alpha:g}", ("test", "p", "p_adj", "floor (adjusted)", "rejected"), rows,
                     notes=[f"controls {self.controls}"], noun="test")


def adjust_pvalues(pvalues: Any, *, method: Correction) -> np.ndarray:
    """Adjusted p-values for a family of tests, in the input order.

    Parameters
    ----------
    pvalues : array_like, shape (m,)
        Raw p-values in [0, 1].
    method : {"holm", "bh", "bonferroni"}
        See :data:`Correction`.

    Returns
    -------
    numpy.ndarray, shape (m,)
        Adjusted p-values, capped at 1. Reject hypothesis ``i`` at level ``alpha`` when
        ``adjusted[i] <= alpha``.

    Notes
    -----
    Holm: sort ``p_(1) <= ... <= p_(m)``; ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``; the running
    maximum makes the adjusted values monotone in the raw ones.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat. 6, 65-70.
    Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57, 289-300.

    Examples
    --------
    >>> adjust_pvalues([0.01, 0.04, 0.03, 0.005], method="holm").tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    method = check_choice("method", method, ("holm", "bh", "bonferroni"))
    p = finite_1d("pvalues", pvalues, min_n=1)
    bad = np.flatnonzero((p < 0) | (p > 1))
    if bad.size:
        raise InputError(f"pvalues[{bad[0]}]={p[bad[0]]!r} is not a probability; p-values must lie in [0, 1]")
    m = p.size
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    if method == "bh":
        return np.minimum(1.0, stats.false_discovery_control(p, method="bh"))
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def correct_pvalues(pvalues: Any, *, method: Correction, alpha: float = 0.05,
                    labels: Sequence[str] | None = None, floors: Any = None) -> CorrectedPValues:
    """:func:`adjust_pvalues` packaged as a result that names the correction and the decisions.

    Parameters
    ----------
    pvalues : array_like, shape (m,)
        Raw p-values.
    method : {"holm", "bh", "bonferroni"}
        The correction.
    alpha : float
        Level at which ``rejected`` is decided (``adjusted <= alpha``).
    labels : sequence of str, optional
        Names of the hypotheses (heads, edges); default ``"0", "1", ...``.
    floors : array_like, shape (m,), optional
        Each raw test's smallest attainable p-value (e.g. ``1 / (n_permutations + 1)``); gives
        ``adjusted_floors`` and ``inconclusive`` (a test whose adjusted floor exceeds ``alpha`` cannot be
        rejected, so "not rejected" says nothing about it).

    Examples
    --------
    >>> r = correct_pvalues([0.01, 0.2], method="bh", labels=["L0H1", "L1H3"])
    >>> r.controls, r.rejected
    ('false discovery rate', [True, False])
    """
    alpha = check_open_unit("alpha", alpha, "e.g. alpha=0.05")
    adjusted = adjust_pvalues(pvalues, method=method)
    raw = finite_1d("pvalues", pvalues)
    names = [str(i) for i in range(raw.size)] if labels is None else [str(x) for x in labels]
    if len(names) != raw.size:
        raise InputError(f"labels has {len(names)} names for {raw.size} p-values; give one label per p-value")
    adj_floors = inconclusive = None
    if floors is not None:
        f = finite_1d("floors", floors)
        if f.size != raw.size or ((f < 0) | (f > 1)).any():
            raise InputError(f"floors has {f.size} values for {raw.size} p-values, or values outside [0, 1]; give "
                             "one floor in [0, 1] per p-value")
        m = raw.size
        af = f if method == "bh" else np.minimum(1.0, m * f)
        adj_floors, inconclusive = [float(x) for x in af], [bool(x > alpha) for x in af]
    return CorrectedPValues(method=method, controls=_ERROR_RATE[method], alpha=alpha, labels=names,
                            pvalues=[float(x) for x in raw], adjusted_pvalues=[float(x) for x in adjusted],
                            rejected=[bool(x <= alpha) for x in adjusted], n_tests=int(raw.size),
                            adjusted_floors=adj_floors, inconclusive=inconclusive)
