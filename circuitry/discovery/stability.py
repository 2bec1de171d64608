"""How much an edge ranking depends on the prompt sample: split-half replication.

Found circuits shift with the prompts they were found on. Comparing a bootstrap resample's ranking with
the full-sample ranking overstates agreement (a resample shares about 63 % of its distinct prompts with
the full sample, so the two rankings share much of their noise). Here the prompts are split at random
into two **disjoint halves** of ``n // 2`` prompts (with odd ``n`` one prompt sits out of each split), the
edges are ranked on each half, and the two rankings are compared; this is repeated over ``n_splits``
random splits (Kalousis et al. 2007 and Nogueira et al. 2018 compare selections on pairs of subsamples the
same way). Reported:

- the **Jaccard index** ``|A & B| / |A | B|`` of the two halves' top-``k`` edge sets, at each distinct ``k``
  of the faithfulness sizes (below 100 %), and **Spearman's correlation** of ``|score|`` between the two
  halves over all edges: means over splits, with the central ``confidence_level`` share of the split
  values as an interval only when there are at least :data:`MIN_INTERVAL_VALUES` splits (otherwise the
  values alone);
- each edge's **selection frequency**: the share of the ``2 n_splits`` half-sample rankings whose top
  ``k`` holds it (Meinshausen & Bühlmann 2010 use subsamples of ``n / 2`` the same way).

Two halves are two independent samples of ``n // 2`` prompts, so these numbers describe the stability
of a ranking made on **half** as many prompts as the full-sample ranking; a ranking on all ``n`` prompts
is more stable. For Spearman's correlation the Spearman-Brown formula ``2 r / (1 + r)`` (Spearman 1910,
Brown 1910) predicts the correlation between two independent samples of ``n`` prompts
(``spearman_brown``; a prediction under a classical additive-noise model, checked by simulation in
``tests/discovery/test_stability.py``); there is no such formula for the Jaccard index.

For exact patching, EAP and EAP-IG an edge's score is a mean over prompts, so a half-sample ranking
re-averages the per-prompt scores already measured (:func:`ranking_stability`); ACDC has no per-prompt
scores and is rerun on both halves of each split (:func:`rerun_stability`, two ACDC runs per split).
The splits come from the stream ``"stability/splits"`` of the run's seed
(:func:`circuitry.stats.procedure_seed`): the ``i``-th split is the same for every method
and whatever the number of splits.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from circuitry.discovery.faithfulness_tests import MIN_INTERVAL_VALUES, PERCENTS, procedure_rng, run_seed, unique_sizes
from circuitry.discovery.results import EdgeScores
from circuitry.display import Displayed, Table, fmt, interval, percent
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, NamedArray
from circuitry.stats import ConfidenceInterval

SPLITS_STREAM = "stability/splits"


# --------------------------------------------------------------------------------------- pure statistics
def half_splits(n: int, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_splits, 2, n // 2]`` prompt indices: each split's two disjoint halves (a random permutation of
    ``range(n)`` cut in two; with odd ``n`` its last prompt sits out)."""
    h = n // 2
    return np.stack([rng.permutation(n)[:2 * h].reshape(2, h) for _ in range(n_splits)])


def top_masks(scores: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """``[..., len(ks), E]`` masks of the ``k`` largest ``|score|`` of ``scores [..., E]`` (ties in edge order, NaN
    last: :func:`circuitry.discovery.results.ranking` along the last axis)."""
    order = np.argsort(-np.nan_to_num(np.abs(scores), nan=-1.0), axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[-1]), axis=-1)
    return rank[..., None, :] < np.asarray(ks)[:, None]


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Jaccard index of boolean sets along the last axis (1 when both are empty)."""
    union = (a | b).sum(-1)
    return np.where(union > 0, (a & b).sum(-1) / np.maximum(union, 1), 1.0)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's correlation of ``|a|`` and ``|b|`` along the last axis (average ranks for ties, as
    :func:`scipy.stats.spearmanr`; NaN scores rank last; NaN when one side is constant)."""
    from scipy.stats import rankdata

    ra, rb = (rankdata(np.nan_to_num(np.abs(x), nan=-1.0), axis=-1) for x in (a, b))
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(-1) / np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))


def spearman_brown(r: float) -> float:
    """``2 r / (1 + r)``: the correlation predicted for samples twice as large (Spearman 1910; Brown 1910)."""
    return float(2 * r / (1 + r)) if r > -1 else float("nan")


def compare_halves(halves: np.ndarray, ks: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From each split's two half-sample score vectors ``halves [split, 2, E]``: the Jaccard index of their
    top-``k`` sets ``[split, k]``, Spearman's correlation ``[split]`` and each edge's selection frequency over
    the ``2 * split`` rankings ``[k, E]``."""
    tops = top_masks(halves, ks)  # [split, 2, k, E]
    return jaccard(tops[:, 0], tops[:, 1]), spearman(halves[:, 0], halves[:, 1]), tops.mean((0, 1))


# --------------------------------------------------------------------------------------------- result
class RankingStability(Displayed, Frozen):
    """Split-half replication of an edge ranking (see the module docstring for exactly what is compared).

    Each of ``n_splits`` random splits divides the ``n_prompts`` prompts into two disjoint halves of
    ``half_size``; the method ranks the edges on each half and the two rankings are compared. The numbers
    describe a ranking made on ``half_size`` prompts, not on all of them.

    Attributes
    ----------
    k, percents
        The distinct top-``k`` sizes compared and the percentages of all edges that give each.
    jaccard, spearman
        Means over splits of the two halves' top-``k`` Jaccard index and of Spearman's correlation of
        ``|score|``.
    jaccard_interval, spearman_interval
        The central ``confidence_level`` share of the split values (the spread between random splits of
        these prompts; not a confidence interval of a population quantity); ``None`` with fewer than
        :data:`MIN_INTERVAL_VALUES` splits, when the values alone are the report.
    spearman_brown
        ``2 r / (1 + r)`` of the mean Spearman ``r``: predicted correlation of two independent samples of
        ``2 * half_size`` prompts.
    per_split_jaccard, per_split_spearman
        The values of every split (``[split][k]`` and ``[split]``).
    selection_frequency
        ``[k, edge]``: the share of the ``2 * n_splits`` half-sample rankings whose top ``k`` holds the edge
        (edges in the order of the scores' ``edges``).
    """

    method: str
    n_prompts: int
    half_size: int
    n_splits: int
    k: list[int]
    percents: list[list[float]]
    jaccard: list[float]
    jaccard_interval: list[ConfidenceInterval] | None
    spearman: float | None
    spearman_interval: ConfidenceInterval | None
    spearman_brown: float | None
    per_split_jaccard: list[list[float]]
    per_split_spearman: list[float | None]
    selection_frequency: NamedArray
    confidence_level: float
    seed: int
    compared: str = "two rankings on disjoint random halves of the prompts, per split"

    def summary(self) -> str:
        few = self.jaccard_interval is None
        if few:
            js = "; ".join(f"top {k}: " + ", ".join(f"{v:.2f}" for v in col)
                           for k, col in zip(self.k, zip(*self.per_split_jaccard)))
            rho = ", ".join("-" if v is None else f"{v:.2f}" for v in self.per_split_spearman)
            tail = f" (fewer than {MIN_INTERVAL_VALUES} splits: the values, no interval)"
        else:  # the median with the central 95 % of splits (a mean can lie outside that range)
            js = ", ".join(f"top {k}: {np.median(col):.2f} [{c.low:.2f}, {c.high:.2f}]"
                           for k, col, c in zip(self.k, zip(*self.per_split_jaccard), self.jaccard_interval))
            vals = [v for v in self.per_split_spearman if v is not None]
            rho = ("undefined (constant scores)" if self.spearman is None else
                   f"{np.median(vals):.2f} [{self.spearman_interval.low:.2f}, {self.spearman_interval.high:.2f}]")
            tail = " (median over splits [central 95 % of splits])"
        sb = "" if self.spearman_brown is None else f" (Spearman-Brown for {2 * self.half_size} prompts " \
                                                    f"{self.spearman_brown:.2f})"
        return (f"{self.method}: split-half stability over {self.n_splits} splits of {self.n_prompts} prompts "
                f"(rankings on {self.half_size} prompts each){tail}: Spearman {rho}{sb}; Jaccard {js}")

    def _table(self) -> Table:
        """Per top-``k`` size: the mean Jaccard index of the two halves' top ``k`` and the central share of the
        splits (``–`` with too few splits); Spearman's correlation in the notes."""
        spans = self.jaccard_interval or [None] * len(self.k)
        rows = [(k, ", ".join(f"{p:g}" for p in pc), j, "–" if c is None else interval(c.low, c.high))
                for k, pc, j, c in zip(self.k, self.percents, self.jaccard, spans)]
        rho = self.spearman_interval
        return Table(f"RankingStability: {self.method}, {self.n_splits} splits of {self.n_prompts} prompts",
                     ("top k", "% of edges", "Jaccard (mean)",
                      "central " + percent(self.confidence_level, "of splits")), rows,
                     notes=[f"compared: {self.compared} (rankings on {self.half_size} prompts each)",
                            f"Spearman of |score| {fmt(self.spearman)} "
                            f"{'' if rho is None else interval(rho.low, rho.high)}; Spearman-Brown for "
                            f"{2 * self.half_size} prompts {fmt(self.spearman_brown)}"], noun="size")


def stability_result(method: str, halves: np.ndarray, n_prompts: int, *, percents: Sequence[float],
                     confidence_level: float, seed: int) -> RankingStability:
    """:class:`RankingStability` from each split's half-sample scores ``halves [split, 2, E]``."""
    n_splits, _, E = halves.shape
    ks, groups, _ = unique_sizes(E, [p for p in percents if p < 100])
    jac, rho, freq = compare_halves(halves, ks)
    q = (1 - confidence_level) / 2
    wide = n_splits >= MIN_INTERVAL_VALUES

    def ci(v):
        v = v[np.isfinite(v)]
        return ConfidenceInterval(low=float(np.quantile(v, q)), high=float(np.quantile(v, 1 - q))) if v.size else None

    r = float(np.nanmean(rho)) if np.isfinite(rho).any() else None  # None: every split ranked a constant
    return RankingStability(
        method=method, n_prompts=n_prompts, half_size=n_prompts // 2, n_splits=n_splits, k=ks,
        percents=groups, jaccard=jac.mean(0).tolist(), jaccard_interval=[ci(jac[:, i]) for i in range(len(ks))]
        if wide else None, spearman=r, spearman_interval=ci(rho) if wide else None,
        spearman_brown=None if r is None else spearman_brown(r), per_split_jaccard=jac.tolist(),
        per_split_spearman=[float(x) if np.isfinite(x) else None for x in rho],
        selection_frequency=NamedArray.from_array(freq, ("k", "edge"), coords={"k": ks}),
        confidence_level=confidence_level, seed=seed)


def _check(n_splits: int, n: int, default: int) -> None:
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 1:
        raise bad_value("n_splits", n_splits, "an integer >= 1", f"use n_splits={default}")
    if n < 4:
        raise bad_value("scores", f"{n} prompts", "at least 4 prompts (two per half)", "score more prompts")


def ranking_stability(scores: EdgeScores, *, n_splits: int = 100, percents: Sequence[float] = PERCENTS,
                      confidence_level: float = 0.95, rng: int | np.random.Generator | None = 0) -> RankingStability:
    """Split-half stability of a per-prompt edge ranking (exact, EAP, EAP-IG).

    Parameters
    ----------
    scores
        Scores with per-prompt values (``scores.per_prompt``, ``[edge, prompt]``).
    n_splits
        Random splits into two halves; each gives one comparison and two half-sample rankings (the default
        100 gives 200 for the selection frequencies). Intervals need at least :data:`MIN_INTERVAL_VALUES`.
    percents
        The top-``k`` sizes compared, as in the faithfulness curves (100 % is skipped).
    confidence_level
        Share of the split values inside the intervals.
    rng
        Seed of the run; the splits come from its stream ``"stability/splits"``.

    Returns
    -------
    RankingStability

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> from circuitry.discovery import score_edges
    >>> m = load_model("zoo:attn-only-2l")
    >>> st = ranking_stability(score_edges(m, make_task("induction", m, n_prompts=8), method="eap",
    ...                                    progress=False), n_splits=20)
    >>> st.half_size, 0 < st.spearman <= 1, st.spearman_interval is not None
    (4, True, True)
    """
    if scores.per_prompt is None:
        raise bad_value("scores", scores.method, "scores with per-prompt values (exact, eap, eap-ig)",
                        "for ACDC use rerun_stability")
    pp = scores.per_prompt.numpy()
    _check(n_splits, pp.shape[1], 100)
    seed = run_seed(rng)
    splits = half_splits(pp.shape[1], n_splits, procedure_rng(seed, SPLITS_STREAM))
    halves = pp[:, splits].mean(-1).transpose(1, 2, 0)  # [edge, split, 2, h] -> [split, 2, edge]
    return stability_result(scores.method, halves, pp.shape[1], percents=percents,
                            confidence_level=confidence_level, seed=seed)


def rerun_stability(scores: EdgeScores, data, rescore: Callable, *, n_splits: int = 2,
                    percents: Sequence[float] = PERCENTS, confidence_level: float = 0.95,
                    rng: int | np.random.Generator | None = 0, progress: bool = True) -> RankingStability:
    """Split-half stability by rerunning a method on both halves of each split: ``rescore(half) ->
    EdgeScores`` (ACDC: ``lambda d: score_edges(model, d, method="acdc", ...)``). Costs two runs per split, each
    on half the prompts; with fewer than :data:`MIN_INTERVAL_VALUES` splits the values are reported without
    an interval. The splits are the first ``n_splits`` of :func:`ranking_stability`'s (same seed)."""
    n = len(data)
    _check(n_splits, n, 2)
    seed = run_seed(rng)
    splits = half_splits(n, n_splits, procedure_rng(seed, SPLITS_STREAM))
    todo = [half for split in splits for half in split]
    if progress:
        from tqdm.auto import tqdm

        todo = tqdm(todo, desc=f"{scores.method} stability: half-sample reruns", leave=False)
    runs = [np.asarray(rescore(data.subset(h.tolist())).score, dtype=float) for h in todo]
    halves = np.stack(runs).reshape(n_splits, 2, -1)
    return stability_result(scores.method, halves, n, percents=percents, confidence_level=confidence_level, seed=seed)
