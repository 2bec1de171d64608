"""Faithfulness curves as the MIB circuit-localization benchmark computes them (Mueller et al. 2025),
with what the benchmark leaves out: a bootstrap band over prompts and a random-edge baseline.

For each size (a percentage of all edges), the circuit ``C`` is the top edges by ``|score|``; every
other edge is fed from the corrupted run (:func:`circuitry.discovery.runs.evaluate_circuits`), and

``f(C) = (m(C) - m(empty)) / (m(model) - m(empty))``

with ``m`` the mean metric over prompts, ``m(model)`` the unpatched (clean) run and ``m(empty)`` the
run with every edge patched (which is the corrupted run). ``f = 1``: the circuit alone recovers the
model's behaviour; ``f = 0``: no better than nothing. CPR is the area under ``f`` over the fraction of
edges kept (trapezoid rule, higher is better), CMD the area under ``|1 - f|`` (lower is better).

Bands: the prompts are resampled with replacement (:func:`scipy.stats.bootstrap`, percentile
intervals) and ``f``, CPR and CMD recomputed on each resample. Baseline: at each size, ``n_random``
edge sets of the same size drawn uniformly; the p-value of a method at that size is
``(1 + #{random f >= method f}) / (1 + n_random)`` (:func:`circuitry.stats.monte_carlo_pvalue`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from circuitry.discovery.results import EdgeScores
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, NamedArray, Provenance, make_provenance
from circuitry.stats import ConfidenceInterval, monte_carlo_pvalue
from circuitry.stats._common import resolve_rng

PERCENTS: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
"""MIB's circuit sizes, in percent of all edges."""


class FaithfulnessCurve(Frozen):
    """One method's faithfulness curve with bootstrap bands and the random baseline's p-values.

    ``faithfulness[i]`` is ``f`` at ``percents[i]`` (``n_edges[i]`` edges), ``ci_low``/``ci_high`` its
    bootstrap interval over prompts, ``pvalue[i]`` the random-baseline p-value at that size; ``cpr`` and
    ``cmd`` are areas over the fraction of edges kept, with intervals ``cpr_ci``/``cmd_ci``;
    ``per_prompt`` the metric of each circuit per prompt (``[size, prompt]``)."""

    method: str
    faithfulness: list[float]
    ci_low: list[float]
    ci_high: list[float]
    pvalue: list[float]
    cpr: float
    cpr_ci: ConfidenceInterval
    cmd: float
    cmd_ci: ConfidenceInterval
    per_prompt: NamedArray


class Faithfulness(Frozen):
    """Faithfulness of several methods on one prompt set, sharing the sizes, the two reference runs
    and the random baseline (``random [size, draw]`` faithfulness of random edge sets)."""

    metric: str
    percents: list[float]
    n_edges: list[int]
    total_edges: int
    m_model: list[float]
    m_empty: list[float]
    curves: list[FaithfulnessCurve]
    random: NamedArray
    random_mean: list[float]
    random_low: list[float]
    random_high: list[float]
    n_random: int
    n_resamples: int
    confidence_level: float
    seed: int | None
    provenance: Provenance

    def curve(self, method: str) -> FaithfulnessCurve:
        for c in self.curves:
            if c.method == method:
                return c
        raise bad_value("method", method, f"one of {[c.method for c in self.curves]}")

    def summary(self) -> str:
        lv = int(round(self.confidence_level * 100))
        return "\n".join(
            f"{c.method}: CPR {c.cpr:.3f} ({lv}% CI [{c.cpr_ci.low:.3f}, {c.cpr_ci.high:.3f}]), CMD {c.cmd:.3f} "
            f"([{c.cmd_ci.low:.3f}, {c.cmd_ci.high:.3f}]); f at " + ", ".join(
                f"{p:g}%: {f:.2f}" for p, f in zip(self.percents, c.faithfulness)) for c in self.curves)


def circuit_sizes(total: int, percents: Sequence[float]) -> list[int]:
    """Edges kept at each percentage: ``round(p / 100 * total)``, at least 1 (all at 100 %)."""
    return [total if p >= 100 else max(1, int(round(p / 100 * total))) for p in percents]


def faithfulness_curves(model, data, scores: Sequence[EdgeScores], *, percents: Sequence[float] = PERCENTS,
                        n_random: int = 20, n_resamples: int = 1000, confidence_level: float = 0.95,
                        rng: int | None = 0, metric=None, max_rows: int | None = None, progress: bool = True,
                        prepared=None) -> Faithfulness:
    """Faithfulness curves of one or more methods' edge scores, with bands and a random baseline.

    Parameters
    ----------
    model, data
        The model and the prompt pairs the curves are measured on (may differ from those the scores
        were computed on, e.g. held-out prompts).
    scores
        :class:`EdgeScores` of one or more methods, all for this model; only their rankings are used.
    percents
        Circuit sizes in percent of all edges, increasing, in ``(0, 100]`` (default MIB's).
    n_random
        Random edge sets per size for the baseline (0: no baseline).
    n_resamples, confidence_level
        Bootstrap over prompts for the bands and the intervals of CPR and CMD.
    rng
        Seed of the random edge sets and of the bootstrap.
    metric
        The metric ``m`` of the curves (default: the first scores' metric).

    Returns
    -------
    Faithfulness

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> from circuitry.discovery import score_edges
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=8)
    >>> fa = faithfulness_curves(m, d, [score_edges(m, d, method="eap", progress=False)], n_random=2,
    ...                          n_resamples=100, progress=False)
    >>> fa.curves[0].faithfulness[-1]
    1.0
    """
    from scipy import stats

    from circuitry.discovery.runs import evaluate_circuits
    from circuitry.discovery.search import prepare

    scores = list(scores)
    if not scores or not all(isinstance(s, EdgeScores) for s in scores):
        raise bad_value("scores", type(scores).__name__, "a non-empty list of EdgeScores", "pass [score_edges(...)]")
    pct = [float(p) for p in percents]
    if not pct or any(not 0 < p <= 100 for p in pct) or sorted(set(pct)) != pct:
        raise bad_value("percents", percents, "increasing percentages in (0, 100]", "use the default (MIB's)")
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise bad_value("n_random", n_random, "an integer >= 0", "use n_random=20")
    pr = prepared or prepare(model, data, metric=metric or scores[0].metric)
    E = len(pr.edges)
    for s in scores:
        if len(s.edges) != E:
            raise bad_value("scores", f"{s.method} with {len(s.edges)} edges", f"scores of this model ({E} edges)")
    sizes = circuit_sizes(E, pct)
    gen, seed = resolve_rng(rng)
    masks = [np.zeros(E, bool), np.ones(E, bool)]
    for s in scores:
        masks += [s.top(k) for k in sizes]
    draws = []
    for k in sizes[:-1] if sizes[-1] == E else sizes:  # every set of all edges is the full model
        for _ in range(n_random):
            m = np.zeros(E, bool)
            m[gen.choice(E, size=k, replace=False)] = True
            draws.append(m)
    vals = evaluate_circuits(model, pr.edges, pr.ids, pr.clean, pr.corr, np.stack(masks + draws), pr.metric,
                             pr.targets, max_rows=max_rows,
                             progress="faithfulness: circuits" if progress else False).double().numpy()
    empty, full = vals[0], vals[1]
    method_vals = vals[2:2 + len(scores) * len(sizes)].reshape(len(scores), len(sizes), -1)
    rand_vals = vals[2 + len(scores) * len(sizes):].reshape(-1, n_random, len(empty)) if n_random else None
    if n_random and sizes[-1] == E:
        rand_vals = np.concatenate([rand_vals, np.broadcast_to(full, (1, n_random, len(empty)))])

    def f_of(v: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Faithfulness of per-prompt values ``v [..., n]`` on the prompts ``idx [B, n]``: ``[..., B]``."""
        e, c = empty[idx].mean(-1), full[idx].mean(-1)
        return (v[..., idx].mean(-1) - e) / (c - e)

    x = np.array(pct) / 100
    every = np.arange(len(empty))[None]
    rand_f = f_of(rand_vals, every)[..., 0] if n_random else np.full((len(sizes), 0), np.nan)
    curves = []
    for j, s in enumerate(scores):
        f = f_of(method_vals[j], every)[:, 0]

        def stat(idx, axis=-1, mv=method_vals[j]):
            idx = np.asarray(idx, dtype=int)
            fb = f_of(mv, idx.reshape(-1, idx.shape[-1]))  # [size, B]
            out = np.concatenate([fb, np.trapezoid(fb, x, axis=0)[None], np.trapezoid(np.abs(1 - fb), x, axis=0)[None]])
            return out[:, 0] if idx.ndim == 1 else out

        bs = stats.bootstrap((np.arange(len(empty)),), stat, vectorized=True, n_resamples=n_resamples,
                             confidence_level=confidence_level, method="percentile", rng=gen)
        lo, hi = np.asarray(bs.confidence_interval.low), np.asarray(bs.confidence_interval.high)
        k = len(sizes)
        pv = [monte_carlo_pvalue(float(f[i]), rand_f[i]) if n_random else float("nan") for i in range(k)]
        curves.append(FaithfulnessCurve(
            method=s.method, faithfulness=f.tolist(), ci_low=lo[:k].tolist(), ci_high=hi[:k].tolist(), pvalue=pv,
            cpr=float(np.trapezoid(f, x)), cpr_ci=ConfidenceInterval(low=float(lo[k]), high=float(hi[k])),
            cmd=float(np.trapezoid(np.abs(1 - f), x)),
            cmd_ci=ConfidenceInterval(low=float(lo[k + 1]), high=float(hi[k + 1])),
            per_prompt=NamedArray.from_array(method_vals[j], ("size", "prompt"))))
    q = (1 - confidence_level) / 2
    has = n_random > 0
    return Faithfulness(
        metric=pr.metric_name, percents=pct, n_edges=sizes, total_edges=E, m_model=full.tolist(),
        m_empty=empty.tolist(), curves=curves, random=NamedArray.from_array(rand_f, ("size", "draw")),
        random_mean=(rand_f.mean(1) if has else np.full(len(sizes), np.nan)).tolist(),
        random_low=(np.quantile(rand_f, q, axis=1) if has else np.full(len(sizes), np.nan)).tolist(),
        random_high=(np.quantile(rand_f, 1 - q, axis=1) if has else np.full(len(sizes), np.nan)).tolist(),
        n_random=n_random, n_resamples=n_resamples, confidence_level=confidence_level, seed=seed,
        provenance=make_provenance(model, dataset=data, seed=seed, task=data.task))
