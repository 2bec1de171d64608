"""Monte Carlo p-values against a reference set of random draws: the fixed-draw p-value and its
sequential version that stops drawing early (Besag & Clifford 1991), shared by the random-head tests
(:mod:`circuitry.stats.random_heads`) and the random-circuit baselines of discovery.

``p = (1 + #{null at least as extreme as observed}) / (1 + n)`` (Davison & Hinkley 1997, sec. 4.2;
Phipson & Smyth 2010, "Permutation p-values should never be zero").
"""

from __future__ import annotations

import math

import numpy as np

from circuitry.errors import bad_value
from circuitry.stats._common import SetFn, evaluate_sets, tie_tolerance


def monte_carlo_pvalue(observed: float, null: np.ndarray, *, alternative: str = "greater",
                       atol: float = 0.0) -> float:
    """``(1 + #{null at least as extreme as observed}) / (1 + len(null))``.

    ``"greater"`` counts ``null >= observed``, ``"less"`` counts ``null <= observed``, ``"two-sided"``
    counts ``|null - c| >= |observed - c|`` with ``c`` the mean of ``observed`` and ``null`` together.
    Ties (within :func:`tie_tolerance`, or ``atol`` when larger: the values' own resolution) count as extreme.

    >>> monte_carlo_pvalue(3.0, np.array([1.0, 2.0, 3.0, 4.0]))
    0.6
    """
    null = np.asarray(null, dtype=float)
    if alternative in ("greater", "less"):
        count = np.sum(at_least_as_extreme(observed, null, alternative, atol=atol))
    elif alternative == "two-sided":
        centre = (observed + null.sum()) / (1 + null.size)
        d_obs = abs(observed - centre)
        count = np.sum(np.abs(null - centre) >= d_obs - max(tie_tolerance(d_obs), atol))
    else:
        raise bad_value("alternative", alternative, "'greater', 'less' or 'two-sided'")
    return float((1 + int(count)) / (1 + null.size))


def at_least_as_extreme(observed: float, null: np.ndarray, alternative: str, *, atol: float = 0.0) -> np.ndarray:
    """Which one-sided null values count against the candidate: ``null >= observed`` (``"greater"``) or
    ``null <= observed`` (``"less"``), ties within :func:`tie_tolerance` (or ``atol`` when larger) included."""
    tol = max(tie_tolerance(observed), atol)
    if alternative == "greater":
        return null >= observed - tol
    return null <= observed + tol


FIRST_CALL = 100  # sets in the first call of a sequential null


def sequential_null(fn: SetFn, sets: list, observed: float, alternative: str, h: int, run: dict) -> tuple[np.ndarray, bool]:
    """Evaluate ``sets`` in order until the ``h``-th at least as extreme as ``observed`` (Besag & Clifford
    1991); the values up to it, and whether drawing stopped before the end."""
    vals = np.empty(0)
    size = min(len(sets), FIRST_CALL)
    while vals.size < len(sets):
        vals = np.concatenate([vals, evaluate_sets(fn, sets[vals.size:vals.size + size], **run)])
        hits = np.flatnonzero(at_least_as_extreme(observed, vals, alternative))
        if hits.size >= h:
            return vals[:hits[h - 1] + 1], bool(hits[h - 1] + 1 < len(sets))
        rate = max(hits.size, 1) / vals.size  # none yet: counted as one, so the next call is large
        size = max(FIRST_CALL, math.ceil(1.5 * (h - hits.size) / rate))
    return vals, False
