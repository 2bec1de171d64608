"""Greedy circuit search: prune (or grow) the circuit one edge at a time by the edge whose *joint* effect
with the others keeps the circuit's faithfulness closest to the model's, trying only EAP-IG's candidates.

Why. Every scoring method of :mod:`circuitry.discovery.search` measures (or approximates) one edge at a
time in the otherwise clean model, then keeps the top edges. Edges interact: with a redundant or backup
path (an OR; self-repair, McGrath et al. 2023) removing one edge from the model costs nothing, so a
per-edge noising score ranks both low; with a conjunction (an AND: a path of several edges) no edge
alone restores anything in the otherwise corrupted model. The faithfulness curve (Mueller et al. 2025,
MIB) judges a *set*: the top ``k`` edges kept, every other edge fed from the corrupted run. This search
optimizes that set directly, one edge at a time, as sequential backward elimination and forward selection
do for features (Marill & Green 1963; Whitney 1971; Kittler 1978; Pudil et al. 1994), and as ACDC
(Conmy et al. 2023) does backwards from the full model with a threshold. Learned edge masks (Bhaskar et
al. 2024, edge pruning) optimize the same set by gradient descent on relaxed masks; they need a
differentiable patched forward, which :mod:`circuitry.discovery.runs` is not (boolean masks), and were not
built here.

Two directions (:data:`Direction`); the objective of both is MIB's CMD integrand ``d(C) = |1 - f(C)|``
(lower is better), ``f = (m(C) - m(empty)) / (m(model) - m(empty))`` with means over prompts, every
candidate circuit of a step evaluated in one batched patched run
(:func:`circuitry.discovery.runs.evaluate_circuits`); ties (within :data:`TIE`) go to the warm start's
order, so where nothing measurable changes the search follows EAP-IG (Hanna et al. 2024).

**"prune"** (default, :func:`prune_order`): backward elimination, as ACDC (Conmy et al. 2023) but by the
best removal rather than a threshold in a fixed visit order. ``C`` starts as the warm start's top
``max_size`` edges (default: every edge, the full model). At each step the ``candidates`` (``M``, default
:data:`DEFAULT_CANDIDATES` = 16) edges of ``C`` that EAP-IG ranks *lowest* are each tried removed, and
the removal leaving the lowest ``d`` is made, down to one edge. An edge of an incomplete path (an AND
whose partner is gone) costs nothing to remove and goes early; of two redundant edges (an OR) the first
removal costs nothing, then the other becomes necessary and stays. The order is the reverse of the
removals.

**"forward"** (:func:`greedy_order`): forward selection from the empty circuit: the ``M`` edges EAP-IG
ranks *highest* outside ``C`` are each tried added (*singles*), and with ``pairs = P`` > 0 (default
:data:`DEFAULT_PAIRS` = 4) every pair of the top ``P`` (Kittler 1978's generalized forward selection);
the pair is taken when it lowers ``d`` by more than twice the best single (gain per edge). On a path of
several edges no single edge changes anything, so forward selection follows EAP-IG there; on the zoo
induction task it did worse than pruning (docs/per-edge-scores.md). Default ``max_size``: the largest MIB
size below 100 %; the remaining edges follow in the warm start's order.

**Scores.** The result is an *order*; :func:`greedy_scores` maps it to scores that rank the edges in that
order: the ``r``-th edge (from 0) gets ``|score| = (E - r) / E`` in the sign that makes its graph
``effect`` (share of the gap) positive. These are ranks, not metric units: the measured values are
``GreedyPath.faithfulness`` (``f`` of the first ``k + 1`` edges, per prompt in ``GreedyPath.per_prompt``).
The faithfulness curve (:func:`~circuitry.discovery.faithfulness.faithfulness_curves`) then evaluates the
greedy circuits at MIB's sizes, comparable with the per-edge methods' at equal size. The kept circuit
(``in_circuit``) is the smallest greedy circuit with ``|1 - f| <= threshold``, else the one with the
smallest ``|1 - f|``.

**Assumptions.** (a) Greedy steps reach a good circuit: the circuit of each size is the previous one minus
(or plus) one edge (nested circuits), not the best set of that size. (b) The edge to remove (add) is among
the warm start's ``M`` lowest- (highest-) ranked remaining edges. (c) ``f`` is measured on the prompts the
search runs on, so the greedy circuits are fitted to them: compare methods on held-out prompts
(:func:`circuitry.discovery.compare.compare_faithfulness` on other prompts,
:func:`~circuitry.discovery.faithfulness.replicated_faithfulness`, ``discover --replicate``).

**Cost** in patched circuits (each a patched forward of the prompts with up to receivers-per-layer x layers
recomputations, :mod:`circuitry.discovery.runs`, batched ``max_rows // n`` circuits per pass), after one
EAP-IG run (``steps`` forward and backward passes): prune ``1 + sum over sizes k = 2 .. max_size of
min(M, k)``, about ``M x max_size`` (3,992 on attn-only-2l's 257 edges with ``M = 16``); forward
``max_size x (M + P (P - 1) / 2)`` (:func:`search_circuits`). On GPT-2 small (32,491 edges) a full prune
is about 520,000 circuits, so above :data:`ALL_EDGES_UP_TO` edges the default ``max_size`` is the largest
search of at most :data:`LARGE_MODEL_CIRCUITS` circuits (prune: EAP-IG's top 15 edges, about 18 EAP-IG
runs' time there). Measured times: docs/per-edge-scores.md, docs/performance.md (P7).
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


def check_max_size(max_size, n_edges: int) -> int:
    """``max_size`` if it is an integer in ``[1, n_edges]``, else an :class:`~circuitry.errors.InputError`."""
    if isinstance(max_size, bool) or not isinstance(max_size, int) or not 1 <= max_size <= n_edges:
        raise bad_value("max_size", max_size, f"an integer in [1, {n_edges}] (the model's edges)",
                        "leave it unset for the default search (default_search_size)")
    return max_size


def _checked(warm, m_model, m_empty, candidates, max_size) -> tuple[np.ndarray, int, int, float, float]:
    """The options both directions share, checked: ``(warm, E, max_size, mean m_model, mean m_empty)``."""
    warm = np.asarray(warm, dtype=float)
    E = warm.size
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise bad_value("candidates", candidates, "an integer >= 1", f"use candidates={DEFAULT_CANDIDATES}")
    max_size = E if max_size is None else check_max_size(max_size, E)
    full, empty = float(np.mean(m_model)), float(np.mean(m_empty))
    if not math.isfinite(full - empty) or full == empty:
        raise bad_value("m_model", f"mean {full:g} vs empty {empty:g}", "a model that differs from the empty circuit",
                        "check the clean-corrupted gap first (gap_summary)")
    return warm, E, max_size, full, empty


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

    if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 0:
        raise bad_value("pairs", pairs, "an integer >= 0", f"use pairs={DEFAULT_PAIRS}")
    warm, E, max_size, full, empty = _checked(warm, m_model, m_empty, candidates, max_size)
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


ALL_EDGES_UP_TO = 4096
"""Models with at most this many edges (every zoo and tracr model) get the full search by default: pruning
from every edge, forward selection up to :func:`default_max_size`."""
LARGE_MODEL_CIRCUITS = 120
"""On a larger model the default search is the largest that evaluates at most this many patched circuits:
about 20 times one EAP-IG run on GPT-2 small (one circuit costs 0.144 of EAP-IG's time there,
docs/performance.md, P7); pruning from EAP-IG's top 15 edges with 16 candidates."""


def search_circuits(direction: Direction, size: int, candidates: int, pairs: int) -> int:
    """Patched circuits a search of ``size`` evaluates (the module docstring's cost), without the warm start."""
    if direction == "prune":
        return 1 + sum(min(candidates, k) for k in range(2, size + 1))
    return size * (candidates + pairs * (pairs - 1) // 2)


def default_search_size(direction: Direction, n_edges: int, candidates: int = DEFAULT_CANDIDATES,
                        pairs: int = DEFAULT_PAIRS) -> int:
    """``max_size`` when none is given: the full search up to :data:`ALL_EDGES_UP_TO` edges (every edge for
    ``"prune"``, :func:`default_max_size` for ``"forward"``); above, the largest size whose search evaluates
    at most :data:`LARGE_MODEL_CIRCUITS` circuits (pruning from every one of GPT-2 small's 32,491 edges would
    be 520,000)."""
    if n_edges <= ALL_EDGES_UP_TO:
        return n_edges if direction == "prune" else default_max_size(n_edges)
    size = 1
    while size < n_edges and search_circuits(direction, size + 1, candidates, pairs) <= LARGE_MODEL_CIRCUITS:
        size += 1
    return size


def greedy_scores(model, data, *, prepared=None, metric=None, candidates: int = DEFAULT_CANDIDATES,
                  pairs: int = DEFAULT_PAIRS, max_size: int | None = None, steps: int = 5, threshold: float = 0.05,
                  direction: Direction = "prune", warm=None, max_rows: int | None = None, progress: bool = True,
                  seed: int | None = None):
    """Greedy circuit search (module docstring) as :class:`~circuitry.discovery.results.EdgeScores`
    (``method="greedy"``): scores that rank the edges in the greedy order, ``order`` that order,
    ``in_circuit`` the smallest greedy circuit with ``|1 - f| <= threshold``; the warm start's ablation
    (``prepared``) is the search's too.

    Parameters
    ----------
    model, data
        As in :func:`~circuitry.discovery.search.score_edges`.
    prepared
        :func:`~circuitry.discovery.search.prepare`'s runs, shared with other methods.
    candidates, pairs, max_size
        ``M``, ``P`` (forward only) and the greedy circuits' largest size (default
        :func:`default_search_size`: every edge for ``"prune"`` and :func:`default_max_size` for
        ``"forward"`` up to :data:`ALL_EDGES_UP_TO` edges; above, the largest search of at most
        :data:`LARGE_MODEL_CIRCUITS` patched circuits).
    direction
        :data:`Direction`.
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
    if max_size is not None:  # checked before the warm start
        from circuitry.discovery.edges import edge_set

        check_max_size(max_size, len(prepared.edges if prepared is not None else edge_set(model)))
    pr = prepared or prepare(model, data, metric=metric)
    es = pr.edges
    t0 = time.perf_counter()
    if warm is None:
        warm = score_edges(model, data, method="eap-ig", steps=steps, prepared=pr, progress=progress, seed=seed)
    t_warm = time.perf_counter() - t0
    m_clean, m_corr = pr.metric_of(pr.clean).numpy(), pr.metric_of(pr.corr).numpy()
    def evaluate(masks: np.ndarray) -> np.ndarray:
        return evaluate_circuits(model, es, pr.ids, pr.clean, pr.corr, masks, pr.metric, pr.targets,
                                 max_rows=max_rows).double().numpy()

    if direction not in ("prune", "forward"):
        raise bad_value("direction", direction, "'prune' or 'forward'", "use direction='prune'")
    size = max_size if max_size is not None else default_search_size(direction, len(es), candidates, pairs)
    if direction == "prune":
        path = prune_order(evaluate, np.asarray(warm.score), m_clean, m_corr, candidates=candidates, max_size=size,
                           progress="greedy pruning" if progress else False)
    else:
        path = greedy_order(evaluate, np.asarray(warm.score), m_clean, m_corr, candidates=candidates, pairs=pairs,
                            max_size=size, progress="greedy search" if progress else False)
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
    ablation = getattr(pr, "ablation", "counterfactual")
    params = {"ablation": ablation, "direction": direction, "warm_start": warm.method, "candidates": candidates,
              "pairs": pairs if direction == "forward" else 0, "greedy_edges": path.n_greedy,
              "pair_steps": len(path.pair_steps), "circuits_evaluated": path.circuits,
              "seconds_search": round(path.seconds, 2), "seconds_warm_start": round(t_warm, 2),
              "threshold": float(threshold), "kept_f": float(path.faithfulness[k - 1]),
              "objective": "|1 - f(C)|, f = (m(C) - m(empty)) / (m(model) - m(empty)), means over prompts",
              "score": "rank score: |score| = (E - r) / E for the r-th edge added (from 0); not metric units"}
    if ablation == "resample":
        params["resample_seed"] = pr.seed
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
                                   task=data.task, method="greedy", ablation=ablation),
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

    warm, E, max_size, full, empty = _checked(warm, m_model, m_empty, candidates, max_size)
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
