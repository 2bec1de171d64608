"""Faithfulness curves as the MIB circuit-localization benchmark computes them (Mueller et al. 2025),
with what the benchmark leaves out: a bootstrap band over prompts and tests against random edge rankings.

For each size (a percentage of all edges), the circuit ``C`` is the top edges by ``|score|`` (``top_k="signed"``:
by :attr:`EdgeScores.importance`; ``evaluator="mib"``: MIB's sizes and pruning, :mod:`circuitry.discovery.mib`);
every other edge is fed from the corrupted run, or its ablation (:mod:`circuitry.discovery.ablations`;
:func:`circuitry.discovery.runs.evaluate_circuits`), and

``f(C) = (m(C) - m(empty)) / (m(model) - m(empty))``

with ``m`` the mean metric over prompts, ``m(model)`` the unpatched (clean) run and ``m(empty)`` the
run with every edge patched (which is the corrupted run). ``f = 1``: the circuit alone recovers the
model's behaviour; ``f = 0``: no better than nothing. CPR is the area under ``f`` over the fraction of
edges kept (trapezoid rule over the requested percentages, higher is better), CMD the area under
``|1 - f|`` (lower is better). Percentages that round to the same number of edges are one circuit:
it is evaluated and tested once (:func:`unique_sizes`).

**Band.** The prompts are resampled with replacement (:func:`scipy.stats.bootstrap`, percentile
intervals) and ``f``, CPR and CMD recomputed on each resample: the band covers *this ranking's* ``f``
over prompt samples; the ranking itself is not redone (:func:`replicated_faithfulness` does that).

**Tests.** ``n_random`` uniformly random edge rankings (random permutations of the edges); a random
ranking's circuit of ``k`` edges is its first ``k`` edges, so at each size the random circuits are
uniform ``k``-subsets and each random ranking also has a whole curve.

- *Whole curve*: the method's CPR against the random rankings' CPRs, Monte Carlo p-value
  ``(1 + #{random CPR >= CPR}) / (1 + n_random)`` (:func:`circuitry.stats.monte_carlo_pvalue`; floor
  ``1 / (1 + n_random)``). One test per method.
- *Per size*: ``f`` against the random circuits' ``f`` at that size, the same Monte Carlo p-value and
  floor (a random ``f`` within ``F_TOLERANCE`` = 1e-4 below the method's counts as a tie: rounding is not
  ranked), Holm-corrected over the sizes tested (:func:`circuitry.stats.correct_pvalues`; family-wise error
  rate; adjusted floor ``m / (1 + n_random)`` for ``m`` sizes). A size is *not tested* (p-value ``None``
  with a reason) when it is all the edges (every ranking gives ``f = 1``), when the clean-corrupted gap is
  unresolved (``f`` divides by noise), or when neither the method's ``f`` nor any random circuit's ``f``
  can be told from 0 (:func:`resolved_from_zero`: the comparison would rank rounding noise). The last
  rule looks at the method's and the random circuits' values alike, so under the null (the method's
  ranking is one more random ranking) the selection cannot favour small p-values.
- Where a floor after correction exceeds ``alpha`` the verdict is "inconclusive by construction".

Randomness: each procedure draws from its own stream, :func:`circuitry.stats.procedure_seed` keyed by the
procedure's name (``"faithfulness/random-rankings"``, ``"faithfulness/bootstrap"``, ``"faithfulness/replication"``)
from the run's seed, so changing ``n_random`` never changes a band and changing ``n_resamples`` never
changes a p-value.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import numpy as np

from circuitry.discovery.faithfulness_tests import (CURVE_NULL, DEFAULT_N_RANDOM, F_TOLERANCE,  # noqa: F401
                                                    MIN_INTERVAL_VALUES, PERCENTS, SIZE_NULL, CurveTest,
                                                    RankingTests, SizeTest, circuit_sizes, curve_area, decide,
                                                    faithfulness_of, holm_over_sizes, procedure_rng,
                                                    random_ranking_tests, resolved_from_zero, run_seed,
                                                    size_pvalues, testable_sizes, unique_sizes)
from circuitry.discovery.results import EdgeScores
from circuitry.display import Displayed, Table, fmt, interval, spread
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, NamedArray, Provenance, make_provenance
from circuitry.stats import ConfidenceInterval, GapSummary, Verdict, gap_summary
from circuitry.stats._common import check_open_unit

class FaithfulnessCurve(Displayed, Frozen):
    """One method's faithfulness curve with bootstrap bands and its tests against random rankings.

    ``faithfulness[i]``, ``ci_low[i]``, ``ci_high[i]``: ``f`` at ``percents[i]`` and its bootstrap band
    over prompts (percentages with the same number of edges repeat one value); ``tests``: one
    :class:`SizeTest` per distinct size; ``curve_test``: the whole-curve test; ``cpr`` and ``cmd`` with
    intervals; ``per_prompt``: each distinct circuit's metric per prompt (``[size, prompt]``)."""

    method: str
    faithfulness: list[float]
    ci_low: list[float]
    ci_high: list[float]
    tests: list[SizeTest]
    curve_test: CurveTest
    cpr: float
    cpr_ci: ConfidenceInterval
    cmd: float
    cmd_ci: ConfidenceInterval
    per_prompt: NamedArray
    #: edges in each distinct circuit after MIB's pruning (``evaluator="mib"``; ``None``: not pruned)
    n_kept: list[int] | None = None

    def test_at(self, percent: float) -> SizeTest:
        """The :class:`SizeTest` of the circuit at ``percent`` % of the edges."""
        for t in self.tests:
            if float(percent) in t.percents:
                return t
        raise bad_value("percent", percent, f"one of {[p for t in self.tests for p in t.percents]}")

    @property
    def pvalue(self) -> list[float | None]:
        """Raw per-size p-value at each percentage (``None`` where not tested); see ``tests`` for the floors,
        Holm's adjusted values and the verdicts."""
        return [t.pvalue for t in self.tests for _ in t.percents]

    def _table(self) -> Table:
        """Each distinct circuit size: ``f`` with its band, the random circuits' mean ``f``, the raw and Holm-adjusted
        p-value and the verdict; CPR, CMD and the whole-curve test in the notes."""
        ct = self.curve_test
        rows = [(t.n_edges, ", ".join(f"{p:g}" for p in t.percents), t.faithfulness, interval(t.ci.low, t.ci.high),
                 t.random_mean, t.pvalue, t.pvalue_adjusted, t.reason if t.verdict is None else t.verdict.outcome)
                for t in self.tests]
        whole = ("no whole-curve test" + (f" ({ct.reason})" if ct.reason else "") if ct.pvalue is None else
                 f"CPR against random rankings' {spread(ct.null_mean, ct.null_sd)}: p {fmt(ct.pvalue)} (floor "
                 f"{fmt(ct.min_attainable_pvalue)})")
        return Table(f"FaithfulnessCurve: {self.method}",
                     ("edges", "% of edges", "f", "CI", "random f", "p", "p_adj (holm)", "verdict"), rows,
                     notes=[f"CPR {fmt(self.cpr)} {interval(self.cpr_ci.low, self.cpr_ci.high)}, CMD {fmt(self.cmd)} "
                            f"{interval(self.cmd_ci.low, self.cmd_ci.high)}; {whole}"], noun="size")


CELLS = ("CPR", "CPR CI", "CMD", "CMD CI", "curve p", "floor")
"""Column names of :meth:`Faithfulness.cells`."""


class Faithfulness(Displayed, Frozen):
    """Faithfulness of several methods on one prompt set, sharing the sizes, the two reference runs and the
    random rankings (``random [size, draw]``: ``f`` of each random ranking's circuit at each distinct size;
    ``random_cpr``: each random ranking's CPR). ``random_low``/``random_high`` (the central
    ``confidence_level`` share of the random draws at each percentage, drawn in the figure) are ``None``
    with fewer than :data:`MIN_INTERVAL_VALUES` draws."""

    metric: str
    percents: list[float]
    n_edges: list[int]
    total_edges: int
    m_model: list[float]
    m_empty: list[float]
    gap: GapSummary
    curves: list[FaithfulnessCurve]
    random: NamedArray
    random_cpr: list[float]
    random_mean: list[float] | None
    random_low: list[float] | None
    random_high: list[float] | None
    n_random: int
    n_resamples: int
    confidence_level: float
    alpha: float
    correction: Literal["holm"] = "holm"
    seed: int
    #: what the edges outside a circuit are fed (:mod:`circuitry.discovery.ablations`)
    ablation: str = "counterfactual"
    #: ``"circuitry"`` or ``"mib"`` (sizes, pruning: :mod:`circuitry.discovery.mib`) and the top-k order
    evaluator: str = "circuitry"
    top_k: str = "absolute"
    provenance: Provenance

    def curve(self, method: str) -> FaithfulnessCurve:
        for c in self.curves:
            if c.method == method:
                return c
        raise bad_value("method", method, f"one of {[c.method for c in self.curves]}")

    def cells(self, method: str) -> tuple:
        """A method's CPR with its interval, CMD with its interval, and the whole-curve p-value with its floor:
        the cells of the display tables of this result and of the discovery report."""
        c = self.curve(method)
        ct = c.curve_test
        return (c.cpr, interval(c.cpr_ci.low, c.cpr_ci.high), c.cmd, interval(c.cmd_ci.low, c.cmd_ci.high), ct.pvalue,
                ct.min_attainable_pvalue)

    def _table(self) -> Table:
        lv = int(round(self.confidence_level * 100))
        return Table(f"Faithfulness: {self.metric}, {len(self.m_model)} prompts, {self.total_edges} edges",
                     ("method", *CELLS), [(c.method, *self.cells(c.method)) for c in self.curves],
                     notes=[f"{lv}% bootstrap intervals ({self.n_resamples} resamples); curve p: the method's CPR against "
                            f"{self.n_random} random edge rankings, alpha {self.alpha:g}; ablation "
                            f"{self.ablation}, evaluator {self.evaluator}"], noun="method")

    def summary(self) -> str:
        lv = int(round(self.confidence_level * 100))
        lines = []
        for c in self.curves:
            ct = c.curve_test
            whole = (f"no whole-curve test ({ct.reason})" if ct.pvalue is None else
                     f"CPR vs {self.n_random} random rankings: p {ct.pvalue:.3g} (floor {ct.min_attainable_pvalue:.3g}),"
                     f" {_said(ct.verdict)}")
            lines.append(f"{c.method}: CPR {c.cpr:.3f} ({lv}% CI [{c.cpr_ci.low:.3f}, {c.cpr_ci.high:.3f}]), "
                         f"CMD {c.cmd:.3f} ([{c.cmd_ci.low:.3f}, {c.cmd_ci.high:.3f}]); {whole}")
            for t in c.tests:
                where = f"{t.n_edges} edge{'s' * (t.n_edges > 1)} ({', '.join(f'{p:g}' for p in t.percents)}%)"
                f = f"f {t.faithfulness:.3f} [{t.ci.low:.3f}, {t.ci.high:.3f}]"
                if t.pvalue is None:
                    lines.append(f"  {where}: {f}; no p-value: {t.reason}")
                else:
                    lines.append(f"  {where}: {f}, random {t.random_mean:.3f}; p {t.pvalue:.3g} (floor "
                                 f"{t.min_attainable_pvalue:.3g}), Holm {t.pvalue_adjusted:.3g} (floor "
                                 f"{t.adjusted_floor:.3g}): {_said(t.verdict)}")
        return "\n".join(lines)


def _said(v: Verdict | None) -> str:
    if v is None:
        return "not tested"
    if v.outcome == "inconclusive":
        return f"inconclusive by construction at alpha {v.alpha:g}"
    return f"{'supported' if v.outcome == 'supported' else 'not supported'} at alpha {v.alpha:g}"


# ------------------------------------------------------------------------------------------ evaluation
def faithfulness_curves(model, data, scores: Sequence[EdgeScores], *, percents: Sequence[float] = PERCENTS,
                        n_random: int = DEFAULT_N_RANDOM, n_resamples: int = 1000, confidence_level: float = 0.95,
                        alpha: float = 0.05, rng: int | np.random.Generator | None = 0, metric=None,
                        max_rows: int | None = None, progress: bool = True, prepared=None,
                        evaluator: str = "circuitry", top_k: str | None = None,
                        ablation: str | None = None) -> Faithfulness:
    """Faithfulness curves of one or more methods' edge scores, with bands and tests against random rankings.

    Parameters
    ----------
    model, data
        The model and the prompt pairs the curves are measured on (may differ from those the scores
        were computed on, e.g. held-out prompts: see :func:`replicated_faithfulness`).
    scores
        :class:`EdgeScores` of one or more methods, all for this model; only their rankings are used.
    percents
        Circuit sizes in percent of all edges, increasing, in ``(0, 100]`` (default MIB's).
    n_random
        Random edge rankings for the tests (0: no tests). The default (:data:`DEFAULT_N_RANDOM`) makes the
        per-size floor after Holm reachable at ``alpha = 0.05``; a smaller one is reported as
        "inconclusive by construction" where its floor exceeds ``alpha``.
    n_resamples, confidence_level
        Bootstrap over prompts for the bands and the intervals of CPR and CMD; ``confidence_level`` is also
        the level of :func:`resolved_from_zero`.
    alpha
        Level of the verdicts (whole curve, and per size after Holm).
    rng
        Seed of the run; each procedure draws from its own stream (:func:`procedure_rng`).
    metric
        The metric ``m`` of the curves (default: the first scores' metric).
    evaluator : {"circuitry", "mib"}
        ``"mib"``: MIB's sizes ``int(p E)``, and every circuit, the method's and the random rankings', pruned
        to the edges on an input-to-logits path (:mod:`circuitry.discovery.mib`). ``"circuitry"``: sizes
        ``round(p E)`` (at least 1), no pruning.
    top_k : {"signed", "absolute"}
        The order the top-k circuits are taken in: by :attr:`EdgeScores.importance` (MIB's default) or by
        ``|score|``; default ``"signed"`` with ``evaluator="mib"``, ``"absolute"`` otherwise.
    ablation
        What the edges outside the circuit are fed (:mod:`circuitry.discovery.ablations`; default
        ``prepared``'s, else ``"counterfactual"``); ``m(empty)`` is then the run with every edge ablated.

    Returns
    -------
    Faithfulness

    References
    ----------
    Mueller et al. (2025), MIB; Holm (1979); Davison & Hinkley (1997) sec. 4.2 and Phipson & Smyth (2010)
    for the Monte Carlo p-value; Fieller (1954).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> from circuitry.discovery import score_edges
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=8)
    >>> fa = faithfulness_curves(m, d, [score_edges(m, d, method="eap", progress=False)], n_random=2,
    ...                          n_resamples=100, progress=False)
    >>> fa.curves[0].faithfulness[-1], fa.curves[0].test_at(100).reason.startswith("the circuit is the whole model")
    (1.0, True)
    """
    from circuitry.discovery.runs import evaluate_circuits
    from circuitry.discovery.search import prepare

    scores = list(scores)
    if not scores or not all(isinstance(s, EdgeScores) for s in scores):
        raise bad_value("scores", type(scores).__name__, "a non-empty list of EdgeScores", "pass [score_edges(...)]")
    pct = [float(p) for p in percents]
    if not pct or any(not 0 < p <= 100 for p in pct) or sorted(set(pct)) != pct:
        raise bad_value("percents", percents, "increasing percentages in (0, 100]", "use the default (MIB's)")
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise bad_value("n_random", n_random, "an integer >= 0", f"use n_random={DEFAULT_N_RANDOM}")
    alpha = check_open_unit("alpha", alpha, "e.g. alpha=0.05")
    from circuitry.discovery.ablations import check_ablation
    from circuitry.discovery.mib import check_evaluator, prune_to_paths

    evaluator, top_k = check_evaluator(evaluator, top_k)
    if ablation is not None:
        check_ablation(ablation)
        if prepared is not None and prepared.ablation != ablation:
            raise bad_value("ablation", ablation, f"the ablation of `prepared` ({prepared.ablation!r})",
                            "prepare the runs with prepare(..., ablation=...) or drop one of the two")
    seed = run_seed(rng)
    pr = prepared or prepare(model, data, metric=metric or next((s.metric for s in scores if s.metric), None),
                             ablation=ablation or "counterfactual", seed=seed)
    E = len(pr.edges)
    for s in scores:
        if len(s.edges) != E:
            raise bad_value("scores", f"{s.method} with {len(s.edges)} edges", f"scores of this model ({E} edges)")
    mib = evaluator == "mib"
    ks, groups, index = unique_sizes(E, pct, mib=mib)
    part = [k for k in ks if k < E]  # the full size needs no run: every ranking gives the model
    gen = procedure_rng(seed, "faithfulness/random-rankings")
    perms = [gen.permutation(E) for _ in range(n_random)]
    masks = [np.zeros(E, bool), np.ones(E, bool)] + [s.top(k, absolute=top_k == "absolute") for s in scores
                                                     for k in part]
    for p in perms:
        for k in part:
            m = np.zeros(E, bool)
            m[p[:k]] = True
            masks.append(m)
    masks = np.stack(masks)
    if mib:  # MIB evaluates each top-k circuit after pruning what is off every input-to-logits path
        masks[2:] = prune_to_paths(pr.edges, masks[2:])
    M, P = len(scores), len(part)
    n_kept = masks[2:2 + M * P].sum(1).reshape(M, P) if mib else None
    vals = evaluate_circuits(model, pr.edges, pr.ids, pr.clean, pr.corr, masks, pr.metric, pr.targets,
                             max_rows=max_rows, progress="faithfulness: circuits" if progress else False)
    vals = vals.double().numpy()
    empty, full, n = vals[0], vals[1], vals.shape[1]

    def with_full(v: np.ndarray) -> np.ndarray:  # [..., part, n] -> [..., ks, n]
        return np.concatenate([v, np.broadcast_to(full, (*v.shape[:-2], len(ks) - len(part), n))], axis=-2)

    method_vals = with_full(vals[2:2 + M * P].reshape(M, P, n))
    rand_vals = with_full(vals[2 + M * P:].reshape(n_random, P, n))  # [draw, size, n]
    fa = _assemble(scores, method_vals, rand_vals, empty, full, ks=ks, groups=groups, index=index, percents=pct,
                   total=E, n_resamples=n_resamples, confidence_level=confidence_level, alpha=alpha, seed=seed,
                   metric=pr.metric_name, provenance=make_provenance(model, dataset=data, seed=seed, task=data.task,
                                                                     ablation=pr.ablation, evaluator=evaluator,
                                                                     top_k=top_k))
    curves = fa.curves
    if mib:
        full_k = [E] * (len(ks) - len(part))
        curves = [c.model_copy(update={"n_kept": [int(x) for x in n_kept[j]] + full_k}) for j, c in enumerate(curves)]
    return fa.model_copy(update={"curves": curves, "ablation": pr.ablation, "evaluator": evaluator, "top_k": top_k})


def bootstrap_bands(method_vals: np.ndarray, empty: np.ndarray, full: np.ndarray, index: Sequence[int],
                    percents: Sequence[float], *, n_resamples: int, confidence_level: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap over prompts (:func:`scipy.stats.bootstrap`) of ``f`` at each distinct size, CPR
    and CMD of each method (``method_vals [method, size, n]``): ``low, high [method, size + 2]``. The
    resamples depend only on ``n``, ``n_resamples`` and ``rng``."""
    from scipy import stats

    M, S, n = method_vals.shape
    flat = method_vals.reshape(M * S, n)

    def stat(idx, axis=-1):
        idx = np.atleast_2d(np.asarray(idx, dtype=int))
        W = np.zeros((idx.shape[0], n))
        np.add.at(W, (np.arange(idx.shape[0])[:, None], idx), 1.0)
        W /= n
        e, c = empty @ W.T, full @ W.T  # [B]
        fb = ((flat @ W.T - e) / (c - e)).reshape(M, S, -1)
        fp = fb[:, index].transpose(0, 2, 1)  # [M, B, percent]
        out = np.concatenate([fb, curve_area(fp, percents)[:, None], curve_area(np.abs(1 - fp), percents)[:, None]], 1)
        return out.reshape(M * (S + 2), -1)

    bs = stats.bootstrap((np.arange(n),), stat, vectorized=True, n_resamples=n_resamples,
                         confidence_level=confidence_level, method="percentile", rng=rng)
    lo, hi = (np.asarray(x).reshape(M, S + 2) for x in (bs.confidence_interval.low, bs.confidence_interval.high))
    return lo, hi


def _assemble(scores, method_vals, rand_vals, empty, full, *, ks, groups, index, percents, total, n_resamples,
              confidence_level, alpha, seed, metric, provenance) -> Faithfulness:
    """Every number of :class:`Faithfulness` from the per-prompt metrics of the circuits (no model needed)."""
    R = rand_vals.shape[0]
    gap = gap_summary(full, empty, confidence_level=confidence_level)
    f_m, f_r = faithfulness_of(method_vals, empty, full), faithfulness_of(rand_vals, empty, full).T  # [M, S], [S, R]
    res_m = resolved_from_zero(method_vals, empty, full, level=confidence_level)
    res_r = resolved_from_zero(rand_vals, empty, full, level=confidence_level).T
    lo, hi = bootstrap_bands(method_vals, empty, full, index, percents, n_resamples=n_resamples,
                             confidence_level=confidence_level, rng=procedure_rng(seed, "faithfulness/bootstrap"))
    S, lv = len(ks), int(round(confidence_level * 100))
    curves = []
    for j, s in enumerate(scores):
        t = random_ranking_tests(f_m[j], res_m[j], f_r, res_r, sizes=ks, total=total, index=index, percents=percents,
                                 alpha=alpha, gap_resolved=gap.resolved)
        tests = []
        for i, k in enumerate(ks):
            common = dict(n_edges=k, percents=groups[i], faithfulness=float(f_m[j, i]), resolved=bool(res_m[j, i]),
                          ci=ConfidenceInterval(low=float(lo[j, i]), high=float(hi[j, i])),
                          random_mean=float(f_r[i].mean()) if R else None)
            if t.pvalue[i] is None:
                tests.append(SizeTest(**common, reason=_why_untested(k, total, R, gap, float(f_m[j, i]), lv)))
            else:
                a, fl = t.pvalue_adjusted[i], t.adjusted_floor[i]
                tests.append(SizeTest(**common, pvalue=t.pvalue[i], min_attainable_pvalue=1 / (1 + R),
                                      pvalue_adjusted=a, adjusted_floor=fl,
                                      verdict=decide(a, fl, alpha, f"{SIZE_NULL}; Holm over {t.n_tested} sizes", R)))
        fp, cpr, p, rand_cpr = f_m[j, index], t.cpr, t.curve_pvalue, t.random_cpr
        if p is not None:
            ct = CurveTest(statistic=cpr, null_mean=float(rand_cpr.mean()), null_sd=float(rand_cpr.std(ddof=1)) if R > 1
                           else None, pvalue=p, min_attainable_pvalue=1 / (1 + R),
                           verdict=decide(p, 1 / (1 + R), alpha, CURVE_NULL, R))
        else:
            ct = CurveTest(statistic=cpr, reason="no random rankings (n_random=0)" if not R else _gap_reason(gap))
        curves.append(FaithfulnessCurve(
            method=s.method, faithfulness=fp.tolist(), ci_low=lo[j, index].tolist(), ci_high=hi[j, index].tolist(),
            tests=tests, curve_test=ct, cpr=cpr, cpr_ci=ConfidenceInterval(low=float(lo[j, S]), high=float(hi[j, S])),
            cmd=float(curve_area(np.abs(1 - fp), percents)),
            cmd_ci=ConfidenceInterval(low=float(lo[j, S + 1]), high=float(hi[j, S + 1])),
            per_prompt=NamedArray.from_array(method_vals[j], ("size", "prompt"), coords={"size": list(ks)})))
    q = (1 - confidence_level) / 2
    fr = f_r[index]  # [percent, draw]
    band = R >= MIN_INTERVAL_VALUES
    return Faithfulness(
        metric=metric, percents=list(percents), n_edges=[ks[i] for i in index], total_edges=total,
        m_model=full.tolist(), m_empty=empty.tolist(), gap=gap, curves=curves,
        random=NamedArray.from_array(f_r, ("size", "draw"), coords={"size": list(ks)}),
        random_cpr=curve_area(f_r.T[:, index], percents).tolist() if R else [],
        random_mean=fr.mean(1).tolist() if R else None,
        random_low=np.quantile(fr, q, axis=1).tolist() if band else None,
        random_high=np.quantile(fr, 1 - q, axis=1).tolist() if band else None,
        n_random=R, n_resamples=n_resamples, confidence_level=confidence_level, alpha=alpha, seed=seed,
        provenance=provenance)


def _gap_reason(gap: GapSummary) -> str:
    return (f"the clean-corrupted gap is unresolved (mean {gap.mean:.3g}, {int(round(gap.confidence_level * 100))}% "
            f"t-interval [{gap.ci_low:.3g}, {gap.ci_high:.3g}]): f divides by noise")


def _why_untested(k: int, total: int, R: int, gap: GapSummary, f: float, lv: int) -> str:
    if k >= total:
        return "the circuit is the whole model at this size: every ranking gives f = 1"
    if not R:
        return "no random rankings (n_random=0)"
    if not gap.resolved:
        return _gap_reason(gap)
    return (f"this f ({f:.2g}) and all {R} random circuits' f are indistinguishable from 0 (t-test of m(C) - m(empty) "
            f"at {100 - lv}%, or |f| <= {F_TOLERANCE:g}): nothing to compare")


# ------------------------------------------------------------------------------------------ replication
class ReplicatedFaithfulness(Displayed, Frozen):
    """Faithfulness with re-ranking: the edges ranked on one random half of the prompts (``ranked_on``),
    the curves and tests measured on the other half (``evaluated_on``), indices into the dataset."""

    ranked_on: list[int]
    evaluated_on: list[int]
    faithfulness: Faithfulness

    def summary(self) -> str:
        return (f"replication (ranked on {len(self.ranked_on)} prompts, evaluated on the other "
                f"{len(self.evaluated_on)}):\n" + self.faithfulness.summary())

    def _table(self) -> Table:
        """The held-out :class:`Faithfulness` table under a title naming the two halves."""
        from dataclasses import replace

        t = self.faithfulness._shown_table()
        return replace(t, title=f"ReplicatedFaithfulness: ranked on {len(self.ranked_on)} prompts, evaluated on the "
                                f"other {len(self.evaluated_on)}", notes=(t.title, *t.notes))


def replicated_faithfulness(model, data, rescore: Callable, *, percents: Sequence[float] = PERCENTS,
                            n_random: int = DEFAULT_N_RANDOM, n_resamples: int = 1000,
                            confidence_level: float = 0.95, alpha: float = 0.05,
                            rng: int | np.random.Generator | None = 0, metric=None, max_rows: int | None = None,
                            progress: bool = True, evaluator: str = "circuitry", top_k: str | None = None,
                            ablation: str | None = None) -> ReplicatedFaithfulness:
    """Rank on one random half of the prompts, measure faithfulness on the other half.

    The band of :func:`faithfulness_curves` covers one ranking's ``f`` over prompt samples; this is the
    replication: a fresh ranking on prompts the evaluation never sees (the split from the stream
    ``"faithfulness/replication"``; the curves' own streams as in :func:`faithfulness_curves`).

    Parameters
    ----------
    rescore
        ``rescore(half) -> list[EdgeScores]``: the methods run on the ranking half (e.g.
        ``lambda d: [score_edges(model, d, method="eap-ig")]``).
    Others
        As in :func:`faithfulness_curves`; ``data`` needs at least 4 prompt pairs.
    """
    n = len(data)
    if n < 4:
        raise bad_value("data", f"{n} prompt pairs", "at least 4 (two per half)", "use more prompts")
    seed = run_seed(rng)
    perm = procedure_rng(seed, "faithfulness/replication").permutation(n)
    a, b = sorted(perm[:n // 2].tolist()), sorted(perm[n // 2:].tolist())
    scores = rescore(data.subset(a))
    fa = faithfulness_curves(model, data.subset(b), scores, percents=percents, n_random=n_random,
                             n_resamples=n_resamples, confidence_level=confidence_level, alpha=alpha, rng=seed,
                             metric=metric, max_rows=max_rows, progress=progress, evaluator=evaluator, top_k=top_k,
                             ablation=ablation)
    return ReplicatedFaithfulness(ranked_on=a, evaluated_on=b, faithfulness=fa)
