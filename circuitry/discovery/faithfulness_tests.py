"""The statistics of faithfulness curves, on arrays: sizes, ``f``, areas, the tests against random edge
rankings (whole curve and per size, Holm over sizes, floors, "inconclusive by construction").

Pure functions of numbers, so simulations can call exactly what ``circuitry discover`` runs
(``tests/discovery/test_faithfulness.py``); :mod:`circuitry.discovery.faithfulness` evaluates the circuits
on a model and assembles the results. Definitions in that module's docstring.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple, Sequence

import numpy as np

from circuitry.errors import bad_value
from circuitry.provenance import Frozen
from circuitry.stats import ConfidenceInterval, Verdict, correct_pvalues, monte_carlo_pvalue, procedure_seed
from circuitry.stats import verdict as judge

PERCENTS: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
"""MIB's circuit sizes, in percent of all edges."""

MIN_INTERVAL_VALUES = 20
"""The fewest values an interval is computed from (split-half stability values, random draws shaded in
the figure). The 2.5 % and 97.5 % quantiles of fewer values are little more than their minimum and maximum,
so below it the values themselves are reported and no interval."""

DEFAULT_N_RANDOM = 199
"""Random rankings of the faithfulness tests: the per-size floor after Holm over at most 9 tested sizes
(MIB's percentages without 100 %) is ``9 / 200 = 0.045``, reachable at ``alpha = 0.05``; the whole-curve
floor is ``1 / 200 = 0.005``, reachable at 0.01."""

F_TOLERANCE = 1e-4
"""``|f|`` at or below this is rounding noise: the patched forward reproduces the corrupted run only to
about 1e-4 of the metric (``tests/discovery/test_faithfulness.py``)."""

CURVE_NULL = "the method's edge ranking is no better than a uniformly random ranking of the edges (CPR)"
SIZE_NULL = "the method's top-k edges are no better than k edges drawn uniformly at random (f at this size)"


def procedure_rng(seed: int, procedure: str) -> np.random.Generator:
    """The generator of one named procedure of a run: seeded by :func:`circuitry.stats.procedure_seed`
    (``SeedSequence(seed, spawn_key=(crc32(procedure),))``), so changing how much one procedure draws never
    changes another's numbers."""
    return np.random.default_rng(procedure_seed(seed, procedure))


def run_seed(rng: int | np.random.Generator | None) -> int:
    """The seed of a run's streams: an ``int`` as is, ``None`` a fresh 63-bit seed, a generator one drawn
    from it (recorded, so the run can be repeated)."""
    if rng is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63 - 1))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return int(rng)
    raise bad_value("rng", rng, "None, a non-negative int seed or a numpy.random.Generator", "pass rng=0")


def circuit_sizes(total: int, percents: Sequence[float], *, mib: bool = False) -> list[int]:
    """Edges kept at each percentage: ``round(p / 100 * total)``, at least 1 (all at 100 %); with ``mib``
    MIB's ``int(p / 100 * total)`` (rounded down, possibly 0: :func:`circuitry.discovery.mib.mib_sizes`)."""
    if mib:
        from circuitry.discovery.mib import mib_sizes

        return mib_sizes(total, percents)
    return [total if p >= 100 else max(1, int(round(p / 100 * total))) for p in percents]


def unique_sizes(total: int, percents: Sequence[float], *,
                 mib: bool = False) -> tuple[list[int], list[list[float]], list[int]]:
    """The distinct circuit sizes, the percentages that map to each, and each percentage's size index
    (``mib``: MIB's sizes, :func:`circuit_sizes`).

    >>> unique_sizes(257, [0.1, 0.2, 0.5, 1.0, 100.0])
    ([1, 3, 257], [[0.1, 0.2, 0.5], [1.0], [100.0]], [0, 0, 0, 1, 2])
    """
    sizes = circuit_sizes(total, percents, mib=mib)
    ks = sorted(set(sizes))
    return ks, [[float(p) for p, s in zip(percents, sizes) if s == k] for k in ks], [ks.index(s) for s in sizes]


# --------------------------------------------------------------------------------------- pure statistics
def faithfulness_of(values: np.ndarray, empty: np.ndarray, full: np.ndarray) -> np.ndarray:
    """``f`` of per-prompt circuit metrics ``values [..., n]``: ``(mean - mean(empty)) / (mean(full) - mean(empty))``."""
    e = empty.mean()
    return (np.asarray(values).mean(-1) - e) / (full.mean() - e)


def curve_area(f: np.ndarray, percents: Sequence[float]) -> np.ndarray:
    """Trapezoid area of ``f [..., percent]`` over the fraction of edges kept (CPR; CMD with ``|1 - f|``)."""
    return np.trapezoid(f, np.asarray(percents, dtype=float) / 100, axis=-1)


def resolved_from_zero(values: np.ndarray, empty: np.ndarray, full: np.ndarray, *, level: float = 0.95,
                       tolerance: float = F_TOLERANCE) -> np.ndarray:
    """Whether ``f`` of each circuit ``values [..., n]`` can be told from 0: the two-sided one-sample t-test of
    the per-prompt ``m_i(C) - m_i(empty)`` rejects 0 at ``1 - level`` and ``|f| > tolerance``.

    With a resolved gap, the t-test rejecting is the same event as Fieller's ``level`` interval of ``f``
    excluding 0 (Fieller 1954). It is deterministic: deciding which sizes to test draws nothing."""
    from scipy.stats import ttest_1samp

    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.nan_to_num(ttest_1samp(values - empty, 0.0, axis=-1).pvalue, nan=1.0)
    return (p < 1 - level) & (np.abs(faithfulness_of(values, empty, full)) > tolerance)


def size_pvalues(f_method: np.ndarray, f_random: np.ndarray, tested: np.ndarray) -> list[float | None]:
    """Monte Carlo p-value of ``f_method [size]`` against ``f_random [size, draw]`` where ``tested``. A random
    circuit whose ``f`` is within :data:`F_TOLERANCE` below the method's counts as at least as good (a tie at
    the patched forward's rounding), so a p-value never ranks rounding noise (conservative: it can only rise)."""
    return [monte_carlo_pvalue(float(f), r, atol=F_TOLERANCE) if t else None
            for f, r, t in zip(f_method, f_random, tested)]


def testable_sizes(method_resolved: np.ndarray, random_resolved: np.ndarray, sizes: Sequence[int], total: int,
                   gap_resolved: bool) -> np.ndarray:
    """Sizes with a p-value: fewer than all edges, a resolved gap, and the method's ``f`` or any random
    circuit's ``f`` resolved from 0 (``method_resolved [size]``, ``random_resolved [size, draw]``)."""
    any_random = random_resolved.any(-1) if random_resolved.size else np.zeros(len(sizes), bool)
    return (np.asarray(sizes) < total) & gap_resolved & (method_resolved | any_random) & (random_resolved.shape[-1] > 0)


def holm_over_sizes(pvalues: Sequence[float | None], n_random: int, alpha: float) -> tuple[list, list, int]:
    """Holm-adjusted p-values and adjusted floors of the tested sizes (``None`` elsewhere), and how many were
    tested. Each raw floor is ``1 / (1 + n_random)``."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    adj: list[float | None] = [None] * len(pvalues)
    floors: list[float | None] = [None] * len(pvalues)
    if idx:
        c = correct_pvalues([pvalues[i] for i in idx], method="holm", alpha=alpha,
                            floors=[1 / (1 + n_random)] * len(idx))
        for j, i in enumerate(idx):
            adj[i], floors[i] = c.adjusted_pvalues[j], c.adjusted_floors[j]
    return adj, floors, len(idx)


def decide(pvalue: float, floor: float, alpha: float, null: str, n_random: int) -> Verdict:
    """:func:`circuitry.stats.verdict`, saying "inconclusive by construction" when ``floor > alpha``."""
    v = judge(SimpleNamespace(pvalue=pvalue, min_attainable_pvalue=floor, null=null, n_draws=n_random), alpha)
    if v.outcome == "inconclusive":
        v = v.model_copy(update={"reason": "inconclusive by construction: " + v.reason})
    return v


class RankingTests(NamedTuple):
    """The decisions of one method against random rankings (see :func:`random_ranking_tests`)."""

    tested: np.ndarray
    pvalue: list
    pvalue_adjusted: list
    adjusted_floor: list
    n_tested: int
    cpr: float
    random_cpr: np.ndarray
    curve_pvalue: float | None


def random_ranking_tests(f_method: np.ndarray, resolved_method: np.ndarray, f_random: np.ndarray,
                         resolved_random: np.ndarray, *, sizes: Sequence[int], total: int, index: Sequence[int],
                         percents: Sequence[float], alpha: float, gap_resolved: bool = True) -> RankingTests:
    """Both tests of one method from ``f`` at each distinct size (``f_method [size]``, ``f_random [size, draw]``)
    and whether each can be told from 0 (:func:`resolved_from_zero`): which sizes are tested, their raw and
    Holm-adjusted p-values and adjusted floors, the CPRs and the whole-curve p-value (``None`` without random
    rankings or with an unresolved gap). Pure numpy, so it can be simulated without a model."""
    R = f_random.shape[-1]
    tested = testable_sizes(resolved_method, resolved_random, sizes, total, gap_resolved)
    raw = size_pvalues(f_method, f_random, tested)
    adj, floors, m = holm_over_sizes(raw, R, alpha)
    cpr = float(curve_area(np.asarray(f_method)[index], percents))
    rand_cpr = curve_area(f_random.T[:, index], percents) if R else np.zeros(0)
    curve_p = monte_carlo_pvalue(cpr, rand_cpr) if R and gap_resolved else None
    return RankingTests(tested, raw, adj, floors, m, cpr, rand_cpr, curve_p)


# --------------------------------------------------------------------------------------------- results
class SizeTest(Frozen):
    """One circuit size of one method: ``f``, its band, and the random-edge test.

    ``pvalue`` is the raw Monte Carlo p-value against the random circuits of this size,
    ``min_attainable_pvalue`` its floor ``1 / (1 + n_random)``; ``pvalue_adjusted`` and ``adjusted_floor``
    are Holm's over the sizes tested; ``verdict`` decides at the run's ``alpha`` from the adjusted values.
    ``resolved``: ``f`` can be told from 0 (:func:`resolved_from_zero`). Without a test, ``reason`` says why."""

    n_edges: int
    percents: list[float]
    faithfulness: float
    ci: ConfidenceInterval
    resolved: bool
    random_mean: float | None = None
    pvalue: float | None = None
    min_attainable_pvalue: float | None = None
    pvalue_adjusted: float | None = None
    adjusted_floor: float | None = None
    verdict: Verdict | None = None
    reason: str | None = None


class CurveTest(Frozen):
    """The whole-curve test of one method: its CPR against the CPRs of ``n_random`` random rankings."""

    statistic: float
    null_mean: float | None = None
    null_sd: float | None = None
    pvalue: float | None = None
    min_attainable_pvalue: float | None = None
    verdict: Verdict | None = None
    reason: str | None = None
    null: str = CURVE_NULL
