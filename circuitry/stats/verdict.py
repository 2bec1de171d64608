"""Turning a test result and a claimed significance level into supported / refuted / inconclusive."""

from __future__ import annotations

from typing import Any, Literal

from circuitry.errors import bad_value
from circuitry.provenance import Frozen
from circuitry.stats._common import check_open_unit

Outcome = Literal["supported", "refuted", "inconclusive"]
"""``"supported"``: ``pvalue <= alpha`` with a test able to reach ``alpha``. ``"refuted"``: the test could
reach ``alpha`` and did not (the claimed significance does not hold on this evidence; it is not proof
that the effect is zero). ``"inconclusive"``: ``alpha`` lies below the smallest p-value the test can
attain, or the p-value is undefined, so no outcome of this test could support the claim."""


class Verdict(Frozen):
    """The answer to a claim ``p < alpha`` with its reason."""

    outcome: Outcome
    reason: str
    alpha: float
    pvalue: float | None
    min_attainable_pvalue: float | None
    null: str | None = None

    def __str__(self) -> str:
        return self.outcome


def verdict(result: Any, alpha: float) -> Verdict:
    """Judge a claim "significant at ``alpha``" on a test result.

    Parameters
    ----------
    result : object with ``pvalue`` and ``min_attainable_pvalue``
        Any circuitry test result (:class:`RandomHeadTest`, :class:`CircuitTest`, ...). Every p-value
        must come with its floor (0 for continuous tests); the null is read from ``null_hypothesis`` or
        ``null`` when present and named in the reason.
    alpha : float
        The claimed significance level, in (0, 1).

    Returns
    -------
    Verdict
        ``outcome`` is "inconclusive" (never "supported") when ``alpha < min_attainable_pvalue``: with
        120 distinct random head sets the smallest p-value is 1/120, so a claim at 0.001 cannot be
        established by that test whatever the model does.

    Examples
    --------
    >>> class R: pvalue = 1 / 120; min_attainable_pvalue = 1 / 120; null = "a random pair"
    >>> verdict(R(), 0.001).outcome, verdict(R(), 0.01).outcome
    ('inconclusive', 'supported')
    """
    alpha = check_open_unit("alpha", alpha, "e.g. alpha=0.01")
    if not hasattr(result, "pvalue"):
        raise bad_value("result", type(result).__name__, "a test result with a `pvalue` attribute")
    p = result.pvalue
    floor = getattr(result, "min_attainable_pvalue", None)
    if floor is None:
        raise bad_value("result", type(result).__name__, "a test result that reports its floor "
                        "`min_attainable_pvalue` (0 for a continuous test)")
    floor = float(floor)
    null = _null_of(result)
    under = f" under the null: {null}" if null else ""
    if p is None or p != p:
        return Verdict(outcome="inconclusive", reason="the test's p-value is undefined", alpha=alpha,
                       pvalue=None, min_attainable_pvalue=floor, null=null)
    p = float(p)
    if getattr(result, "calibrated", True) is False:
        return Verdict(outcome="inconclusive", alpha=alpha, pvalue=p, min_attainable_pvalue=floor, null=null,
                       reason="the other-heads rank is descriptive, not a calibrated test; use null='pool', 'layer' "
                              "or 'conditional'")
    if alpha < floor:
        extra = ""
        if hasattr(result, "n_draws"):
            if getattr(result, "exact", False):
                extra = f" (exact null over {getattr(result, 'n_distinct_sets', result.n_draws + 1)} distinct sets)"
            else:
                extra = f" with {result.n_draws} random draws"
        return Verdict(
            outcome="inconclusive", alpha=alpha, pvalue=p, min_attainable_pvalue=floor, null=null,
            reason=(f"alpha={alpha:g} is below the smallest attainable p-value {floor:.3g} of this test{extra}: "
                    "no outcome could support the claim. Fix: more draws or random circuits, a larger "
                    "head pool, or a claim at a larger alpha"))
    if p <= alpha:
        return Verdict(outcome="supported", alpha=alpha, pvalue=p, min_attainable_pvalue=floor, null=null,
                       reason=f"p={p:.3g} <= alpha={alpha:g} (floor {floor:.3g}){under}")
    return Verdict(outcome="refuted", alpha=alpha, pvalue=p, min_attainable_pvalue=floor, null=null,
                   reason=f"p={p:.3g} > alpha={alpha:g} (floor {floor:.3g}): the claimed significance is not "
                          f"reached (the test could have reached it){under}")


def _null_of(result: Any) -> str | None:
    """The null a result names: ``"name: statement"`` for a random-head test, else its ``null`` text."""
    name, text = getattr(result, "null", None), getattr(result, "null_hypothesis", None)
    if text:
        return f"{name}: {text}" if name else str(text)
    return str(name) if isinstance(name, str) and name else None
