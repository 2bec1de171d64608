"""Greedy circuit search: grow the circuit by the edge whose *joint* effect with the edges already chosen
brings the circuit's faithfulness closest to the model's, trying only the top EAP-IG candidates.

Why. Every scoring method of :mod:`circuitry.discovery.search` measures (or approximates) one edge at a
time in the otherwise clean model, then keeps the top edges. Edges interact: with a redundant or backup
path (an OR; self-repair, McGrath et al. 2023) removing one edge from the model costs nothing, so a
per-edge noising score ranks both low; with a conjunction (an AND: a path of several edges) no edge
alone restores anything in the otherwise corrupted model. The faithfulness curve (Mueller et al. 2025,
MIB) judges a *set*: the top ``k`` edges kept, every other edge fed from the corrupted run. This search
optimizes that set directly, one edge at a time, as forward selection does for features (Whitney 1971;
Kittler 1978's generalized forward selection adds the best *pair* when pairs interact; Pudil et al.
1994), and as ACDC (Conmy et al. 2023) does backwards from the full model with a threshold.

Algorithm (``greedy_order``). ``C`` starts empty (the corrupted run). At each step:

1. *Candidates*: the ``candidates`` (``M``, default :data:`DEFAULT_CANDIDATES` = 16) edges not in ``C``
   ranked highest by the warm start (EAP-IG's ``|score|``, Hanna et al. 2024).
2. *Singles*: ``f(C + e)`` for each candidate, all in one batched patched evaluation
   (:func:`circuitry.discovery.runs.evaluate_circuits`), ``f = (m(C) - m(empty)) / (m(model) - m(empty))``
   with means over prompts, MIB's definition.
3. *Pairs* (``pairs = P`` > 0, default :data:`DEFAULT_PAIRS` = 4): ``f(C + e1 + e2)`` for every pair of
   the top ``P`` candidates (``P (P - 1) / 2`` more circuits).
4. The objective is MIB's CMD integrand, ``d(C) = |1 - f(C)|`` (lower is better). The step adds the
   single with the lowest ``d``, or the pair when it lowers ``d`` by more than twice the best single does
   (gain per edge added); ties (within :data:`TIE`) go to the warm start's order, so where nothing
   measurable changes (the first edges of a path) the search follows EAP-IG.

It stops after ``max_size`` edges (default: the largest MIB circuit size below 100 %, so every size the
curve tests is a greedy circuit); the remaining edges follow in the warm start's order.

**Scores.** The result is an *order*; :func:`greedy_scores` maps it to scores that rank the edges in that
order: the edge added ``r``-th (from 0) gets ``|score| = (E - r) / E`` in the sign that makes its graph
``effect`` (share of the gap) positive. These are ranks, not metric units: the measured values are
``GreedyPath.faithfulness`` (``f`` after each step, per prompt in ``GreedyPath.per_prompt``). The
faithfulness curve of :func:`~circuitry.discovery.faithfulness.faithfulness_curves` then evaluates the
greedy circuits at MIB's sizes, comparable with the per-edge methods' at equal size. The kept circuit
(``in_circuit``) is the shortest greedy prefix with ``|1 - f| <= threshold``, else the prefix with the
smallest ``|1 - f|``.

**Assumptions.** (a) The edges worth adding are among the warm start's top ``M`` remaining edges (an edge
EAP-IG ranks below them is never tried before ``max_size``). (b) Interactions of more than two edges
are reached one or two edges at a time (a three-edge conjunction whose parts change nothing is found only
through the warm start's tie order). (c) ``f`` is measured on the prompts the search runs on: the greedy
circuits are fitted to them, so compare methods on held-out prompts
(:func:`~circuitry.discovery.faithfulness.replicated_faithfulness`, ``discover --replicate``).

**Cost.** One EAP-IG run (``steps`` forward and backward passes), then per step ``M + P (P - 1) / 2``
patched circuits (20 by default): ``max_size x 22`` circuits at most, each circuit a patched forward of
the prompts (up to receivers-per-layer x layers recomputations, :mod:`circuitry.discovery.runs`), batched
``max_rows // n`` circuits per pass. On attn-only-2l (16 induction prompts, 257 edges, 128 steps):
2,816 circuits; docs/per-edge-scores.md gives the measured time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from circuitry.errors import bad_value

Direction = Literal["prune", "forward"]
"""``"prune"`` (default): backward elimination from the warm start's top ``max_size`` edges
(:func:`prune_order`); ``"forward"``: forward selection from the empty circuit (:func:`greedy_order`)."""
DEFAULT_CANDIDATES = 16
"""``M``: the warm start's top remaining edges tried at each step."""
MEMO_ENTRIES = 256
"""Receiver inputs remembered between evaluations (:func:`circuitry.discovery.runs.evaluate_circuits`'s
``memo``), cleared when exceeded."""
"""``M``: the warm start's top remaining edges tried at each step."""
DEFAULT_PAIRS = 4
"""``P``: pairs of the top ``P`` candidates tried at each step (0: singles only)."""
TIE = 1e-4
"""Objective differences at or below this (in units of ``f``) are ties; :data:`~circuitry.discovery.
faithfulness_tests.F_TOLERANCE`, the precision of the patched forward."""


@dataclass
class GreedyPath:
    """What the search did: ``order`` all edges (the ``n_greedy`` chosen ones first, in the order they
    were added, then the rest in the warm start's order); ``faithfulness[k]`` the mean-over-prompts ``f``
    of the first ``k + 1`` edges, ``per_prompt [k, n]`` their metric per prompt (for ``k < n_greedy``);
    ``pair_steps`` the steps that added a pair; ``circuits`` how many circuits were evaluated."""

    order: list[int]
    n_greedy: int
    faithfulness: list[float]
    per_prompt: np.ndarray
    pair_steps: list[int] = field(default_factory=list)
    circuits: int = 0
    seconds: float = 0.0


def greedy_order(evaluate: Callable[[np.ndarray], np.ndarray], warm: np.ndarray, m_model: np.ndarray,
                 m_empty: np.ndarray, *, candidates: int = DEFAULT_CANDIDATES, pairs: int = DEFAULT_PAIRS,
                 max_size: int | None = None, progress: bool | str = False) -> GreedyPath:
    """Forward selection of edges by their joint faithfulness (the algorithm of the module docstring).

    Parameters
    ----------
    evaluate
        ``evaluate(keep [C, E] bool) -> [C, n]``: the metric per prompt of each circuit with every other
        edge fed from the corrupted run (:func:`circuitry.discovery.runs.evaluate_circuits` bound to a
        model and its runs, or any function of edge sets, e.g. a synthetic one in a test).
    warm
        ``[E]`` warm-start scores; candidates are the largest ``|warm|`` not yet chosen (ties: edge order).
    m_model, m_empty
        ``[n]`` metric of the full model and of the empty circuit (the corrupted run).
    candidates, pairs, max_size
        ``M``, ``P`` and the number of greedy steps' edges (default: all edges).
    progress
        A tqdm bar (its text if a string).

    Returns
    -------
    GreedyPath
    """
    from circuitry.discovery.results import ranking

    warm = np.asarray(warm, dtype=float)
    E = warm.size
    for name, v, lo in (("candidates", candidates, 1), ("pairs", pairs, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise bad_value(name, v, f"an integer >= {lo}", f"use {name}={DEFAULT_CANDIDATES if lo else DEFAULT_PAIRS}")
    max_size = E if max_size is None else max_size
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= E:
        raise bad_value("max_size", max_size, f"an integer in [1, {E}]", "leave it unset for every size")
    full, empty = float(np.mean(m_model)), float(np.mean(m_empty))
    if not math.isfinite(full - empty) or full == empty:
        raise bad_value("m_model", f"mean {full:g} vs empty {empty:g}", "a model that differs from the empty circuit",
                        "check the clean-corrupted gap first (gap_summary)")
    warm_rank = ranking(warm)
    pos = np.empty(E, dtype=int)
    pos[warm_rank] = np.arange(E)
    chosen: list[int] = []
    keep = np.zeros(E, dtype=bool)
    fs, per, pair_steps = [], [], []
    circuits, t0 = 0, time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_size, desc=progress if isinstance(progress, str) else "greedy search", unit="edge",
                   leave=False)
    d_now = 1.0
    while len(chosen) < max_size:
        cand = [int(e) for e in warm_rank if not keep[e]][:candidates]
        singles = [(e,) for e in cand]
        room = max_size - len(chosen)
        duos = [(a, b) for i, a in enumerate(cand[:pairs]) for b in cand[i + 1:pairs]] if room >= 2 else []
        sets = singles + duos
        masks = np.repeat(keep[None], len(sets), axis=0)
        for row, s in enumerate(sets):
            masks[row, list(s)] = True
        vals = np.asarray(evaluate(masks), dtype=float)
        circuits += len(sets)
        d = np.abs(1 - (vals.mean(1) - empty) / (full - empty))
        # best single: lowest d, ties within TIE to the warm start's order (cand is in that order)
        i1 = int(np.flatnonzero(d[:len(singles)] <= d[:len(singles)].min() + TIE)[0])
        pick, row = singles[i1], i1
        if duos:
            i2 = len(singles) + int(np.argmin(d[len(singles):]))
            if d_now - d[i2] > 2 * max(d_now - d[i1], 0.0) + TIE:
                pick, row = tuple(sorted(sets[i2], key=lambda e: pos[e])), i2
                pair_steps.append(len(chosen))
        for e in pick:
            chosen.append(e)
            keep[e] = True
            if len(pick) == 2 and e == pick[0]:  # the pair's first edge alone: its single value, measured above
                j = singles.index((e,))
                fs.append(float((vals[j].mean() - empty) / (full - empty)))
                per.append(vals[j])
            else:
                fs.append(float((vals[row].mean() - empty) / (full - empty)))
                per.append(vals[row])
        d_now = float(d[row])
        if bar is not None:
            bar.update(len(pick))
    if bar is not None:
        bar.close()
    rest = [int(e) for e in warm_rank if not keep[e]]
    return GreedyPath(order=chosen + rest, n_greedy=len(chosen), faithfulness=fs, per_prompt=np.stack(per),
                      pair_steps=pair_steps, circuits=circuits, seconds=time.perf_counter() - t0)


def default_max_size(n_edges: int) -> int:
    """The largest MIB circuit size below 100 % (``round(0.5 E)`` for MIB's percentages), at least 1."""
    from circuitry.discovery.faithfulness_tests import PERCENTS, unique_sizes

    ks = [k for k in unique_sizes(n_edges, PERCENTS)[0] if k < n_edges]
    return max(ks) if ks else 1


def greedy_scores(model, data, *, prepared=None, metric=None, candidates: int = DEFAULT_CANDIDATES,
                  pairs: int = DEFAULT_PAIRS, max_size: int | None = None, steps: int = 5, threshold: float = 0.05,
                  direction: Direction = "prune", warm=None, max_rows: int | None = None, progress: bool = True, seed: int | None = None):
    """Greedy circuit search (module docstring) as :class:`~circuitry.discovery.results.EdgeScores`
    (``method="greedy"``): scores that rank the edges in the order they were added, ``order`` that order,
    ``in_circuit`` the shortest greedy prefix with ``|1 - f| <= threshold``.

    Parameters
    ----------
    model, data
        As in :func:`~circuitry.discovery.search.score_edges`.
    prepared
        :func:`~circuitry.discovery.search.prepare`'s runs, shared with other methods.
    candidates, pairs, max_size
        ``M``, ``P`` and the greedy edges (default :func:`default_max_size`).
    steps
        EAP-IG interpolation steps of the warm start.
    threshold
        The kept circuit's tolerance on ``|1 - f|``.
    warm
        Warm-start :class:`EdgeScores` (default: EAP-IG with ``steps`` on the same prompts).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> from circuitry.prompts import make_task
    >>> m = load_model("zoo:attn-only-2l"); d = make_task("induction", m, n_prompts=8)
    >>> res = greedy_scores(m, d, max_size=3, progress=False)
    >>> res.method, len(res.order), res.params["greedy_edges"]
    ('greedy', 257, 3)
    """
    from circuitry.discovery.results import EdgeScores
    from circuitry.discovery.runs import evaluate_circuits
    from circuitry.discovery.search import prepare, score_edges
    from circuitry.provenance import make_provenance

    if not isinstance(threshold, (int, float)) or not 0 <= threshold:
        raise bad_value("threshold", threshold, "a number >= 0", "use threshold=0.05")
    pr = prepared or prepare(model, data, metric=metric)
    es = pr.edges
    t0 = time.perf_counter()
    if warm is None:
        warm = score_edges(model, data, method="eap-ig", steps=steps, prepared=pr, progress=progress, seed=seed)
    t_warm = time.perf_counter() - t0
    m_clean, m_corr = pr.metric_of(pr.clean).numpy(), pr.metric_of(pr.corr).numpy()
    memo: dict = {}

    def evaluate(masks: np.ndarray) -> np.ndarray:
        if len(memo) > MEMO_ENTRIES:  # bounded memory; entries are recomputed when needed
            memo.clear()
        return evaluate_circuits(model, es, pr.ids, pr.clean, pr.corr, masks, pr.metric, pr.targets,
                                 max_rows=max_rows, memo=memo).double().numpy()

    size = default_max_size(len(es)) if max_size is None else max_size
    if direction == "prune":
        path = prune_order(evaluate, np.asarray(warm.score), m_clean, m_corr, candidates=candidates, max_size=size,
                           progress="greedy pruning" if progress else False)
    elif direction == "forward":
        path = greedy_order(evaluate, np.asarray(warm.score), m_clean, m_corr, candidates=candidates, pairs=pairs,
                            max_size=size, progress="greedy search" if progress else False)
    else:
        raise bad_value("direction", direction, "'prune' or 'forward'", "use direction='prune'")
    E = len(es)
    gap = float(m_clean.mean() - m_corr.mean())
    sign = -1.0 if gap >= 0 else 1.0  # effect = -score / gap > 0
    score = np.empty(E)
    score[np.array(path.order)] = sign * (E - np.arange(E)) / E
    d = np.abs(1 - np.array(path.faithfulness))
    ok = np.flatnonzero(d <= threshold)
    k = int(ok[0]) + 1 if ok.size else int(np.argmin(d)) + 1
    keep = np.zeros(E, dtype=bool)
    keep[path.order[:k]] = True
    info = model.info
    params = {"direction": direction, "warm_start": warm.method, "candidates": candidates,
              "pairs": pairs if direction == "forward" else 0, "greedy_edges": path.n_greedy,
              "pair_steps": len(path.pair_steps), "circuits_evaluated": path.circuits,
              "seconds_search": round(path.seconds, 2), "seconds_warm_start": round(t_warm, 2),
              "threshold": float(threshold), "kept_f": float(path.faithfulness[k - 1]),
              "objective": "|1 - f(C)|, f = (m(C) - m(empty)) / (m(model) - m(empty)), means over prompts",
              "score": "rank score: |score| = (E - r) / E for the r-th edge added (from 0); not metric units"}
    if warm.method == "eap-ig":
        params["steps"] = warm.params.get("steps", steps)
    return EdgeScores(
        method="greedy", metric=pr.metric_name, edges=list(es.names), mib_edges=list(es.mib_names),
        score=[float(x) for x in score], per_prompt=None, in_circuit=[bool(x) for x in keep],
        decision=f"shortest greedy prefix with |1 - f| <= {threshold:g} ({k} edges, f {path.faithfulness[k - 1]:.3f})",
        clean=m_clean.tolist(), corrupted=m_corr.tolist(), order=[es.names[e] for e in path.order], params=params,
        shape={"n_layers": info.n_layers, "n_heads": info.n_heads, "n_kv_heads": info.n_kv_heads,
               "has_mlp": int(info.has_mlp), "parallel_residual": int(info.parallel_residual),
               "d_model": info.d_model},
        provenance=make_provenance(model, dataset=data, seed=seed if seed is not None else data.seed,
                                   task=data.task, method="greedy"),
    )


def prune_order(evaluate: Callable[[np.ndarray], np.ndarray], warm: np.ndarray, m_model: np.ndarray,
                m_empty: np.ndarray, *, candidates: int = DEFAULT_CANDIDATES, max_size: int | None = None,
                progress: bool | str = False) -> GreedyPath:
    """Backward elimination (the ``"prune"`` direction): start from the warm start's top ``max_size`` edges and
    remove, one at a time, the edge whose removal leaves ``|1 - f|`` lowest, trying the ``candidates``
    remaining edges the warm start ranks *lowest* (ties: the lowest-ranked goes first), down to one edge.

    The order lists the edges from the last one left to the first one removed, then the edges outside the
    start set in the warm start's order; ``faithfulness[k]`` is ``f`` of the first ``k + 1`` of them (the set
    left after the removals; the start set's own ``f`` at ``k + 1 = max_size``). Cost: ``max_size - 1``
    steps of at most ``candidates`` circuits, plus the start set. Arguments as in :func:`greedy_order`.
    """
    from circuitry.discovery.results import ranking

    warm = np.asarray(warm, dtype=float)
    E = warm.size
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise bad_value("candidates", candidates, "an integer >= 1", f"use candidates={DEFAULT_CANDIDATES}")
    max_size = E if max_size is None else max_size
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= E:
        raise bad_value("max_size", max_size, f"an integer in [1, {E}]", "leave it unset for every size")
    full, empty = float(np.mean(m_model)), float(np.mean(m_empty))
    if not math.isfinite(full - empty) or full == empty:
        raise bad_value("m_model", f"mean {full:g} vs empty {empty:g}", "a model that differs from the empty circuit",
                        "check the clean-corrupted gap first (gap_summary)")
    warm_rank = ranking(warm)
    keep = np.zeros(E, dtype=bool)
    keep[warm_rank[:max_size]] = True
    t0 = time.perf_counter()
    start = np.asarray(evaluate(keep[None]), dtype=float)[0]
    removed, fs, per = [], [float((start.mean() - empty) / (full - empty))], [start]
    circuits = 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_size - 1, desc=progress if isinstance(progress, str) else "greedy pruning",
                   unit="edge", leave=False)
    while keep.sum() > 1:
        cand = [int(e) for e in warm_rank[::-1] if keep[e]][:candidates]  # lowest-ranked first
        masks = np.repeat(keep[None], len(cand), axis=0)
        masks[np.arange(len(cand)), cand] = False
        vals = np.asarray(evaluate(masks), dtype=float)
        circuits += len(cand)
        d = np.abs(1 - (vals.mean(1) - empty) / (full - empty))
        i = int(np.flatnonzero(d <= d.min() + TIE)[0])
        keep[cand[i]] = False
        removed.append(cand[i])
        fs.append(float((vals[i].mean() - empty) / (full - empty)))
        per.append(vals[i])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    last = int(np.flatnonzero(keep)[0])
    order = [last] + removed[::-1]
    rest = [int(e) for e in warm_rank[max_size:]]
    return GreedyPath(order=order + rest, n_greedy=max_size, faithfulness=fs[::-1], per_prompt=np.stack(per[::-1]),
                      circuits=circuits, seconds=time.perf_counter() - t0)
