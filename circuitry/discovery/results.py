"""The result of a circuit search: one score per edge, the kept circuit, and its exports.

Sign convention (every method): ``score`` is, in metric units, ``m(clean run with the edge fed from
the corrupted run) - m(clean run)``: what exact patching measures and what EAP and EAP-IG approximate
to first order (ACDC: the change of its metric when the edge was removed from the circuit at the time
it was tested). Rankings use ``|score|`` (Mueller et al. 2025, MIB). In the graph, ``effect`` is the
share of the clean-corrupted gap (``-score / (m(clean) - m(corrupted))``; positive = the edge carries
the behaviour), the convention of every other circuitry graph; ``score`` is kept raw.
"""

from __future__ import annotations

import json
from typing import Literal, Optional

import networkx as nx
import numpy as np

from circuitry.discovery.edges import EdgeSet, _build
from circuitry.display import TOP_ROWS, Displayed, Table, interval
from circuitry.errors import bad_value
from circuitry.provenance import Frozen, NamedArray, Provenance

Method = Literal["exact", "eap", "eap-ig", "acdc", "greedy"]
"""``"exact"``: exact edge patching, one edge at a time. ``"eap"``: edge attribution patching (Syed
et al. 2023), a gradient approximation of it. ``"eap-ig"``: EAP with integrated gradients (Hanna et al.
2024). ``"acdc"``: automatic circuit discovery (Conmy et al. 2023), a greedy pruning sweep. ``"greedy"``:
forward selection by joint faithfulness from EAP-IG's top candidates (:mod:`circuitry.discovery.greedy`)."""
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


def ranking(scores: np.ndarray, *, absolute: bool = True) -> np.ndarray:
    """Positions by decreasing ``|score|`` (``absolute=False``: decreasing ``score``), ties in edge order,
    NaN last."""
    key = np.abs(scores) if absolute else np.asarray(scores, dtype=float)
    return np.argsort(-np.nan_to_num(key, nan=-np.inf), kind="stable")


def top_mask(scores: np.ndarray, k: int, *, absolute: bool = True) -> np.ndarray:
    """Boolean mask of the ``k`` largest ``|score|`` (``absolute=False``: the ``k`` largest ``score``)."""
    m = np.zeros(scores.size, dtype=bool)
    m[ranking(scores, absolute=absolute)[:k]] = True
    return m


class EdgeScores(Displayed, Frozen):
    """Edge scores of one method on one model and prompt set.

    Attributes
    ----------
    method, metric
        How the scores were made (see :data:`Method`; ``"external"``: read from another tool's graph,
        :func:`circuitry.discovery.mib.read_mib_json`) and the metric they are in.
    edges, mib_edges
        Edge names, circuitry's (``"L0H3->L1H5<k>"``) and EAP-IG/MIB's (``"a0.h3->a1.h5<k>"``).
    score
        Mean over prompts of each edge's score (see the module docstring for the sign).
    per_prompt
        ``[edge, prompt]`` scores (``None`` for ACDC, whose scores depend on the whole sweep).
    in_circuit
        The kept circuit: for ACDC its result; otherwise the members decided by
        :func:`circuitry.stats.decide.decide_sites`: a share ``|score / gap| >= threshold`` (practical
        significance) *and* a BH-adjusted p <= ``alpha`` (``pvalue``, ``pvalue_adjusted``) of Hall's
        skewness-corrected t-test over prompts, the same decision ``circuitry analyze`` makes for a path.
    ci_low, ci_high
        The interval of each edge's share that inverts the same test (``None`` where unbounded).
    decision
        The test, null, floor, correction, alpha and threshold of ``in_circuit``, in words.
    clean, corrupted
        Metric of the clean and corrupted runs per prompt.
    order
        ACDC: edge names in the order they were tested.
    params
        Method options (``ablation``, ``steps``, ``tau``, ``threshold``...).
    shape
        ``n_layers``, ``n_heads``, ``n_kv_heads``, ``has_mlp`` (0/1), ``parallel_residual`` (0/1).
    """

    method: Method | Literal["external"]
    metric: str
    edges: list[str]
    mib_edges: list[str]
    score: list[float]
    per_prompt: Optional[NamedArray] = None
    in_circuit: list[bool]
    #: per edge: Hall's two-sided skewness-corrected t-test over prompts of the edge's score against 0, and its
    #: BH-adjusted value (``None`` for ACDC, which keeps edges by its own sweep)
    pvalue: Optional[list[float]] = None
    pvalue_adjusted: Optional[list[float]] = None
    ci_low: Optional[list[Optional[float]]] = None
    ci_high: Optional[list[Optional[float]]] = None
    decision: str = ""
    clean: list[float]
    corrupted: list[float]
    order: list[str] = []
    params: dict[str, float | int | str] = {}
    shape: dict[str, int]
    provenance: Provenance

    @property
    def gap(self) -> float:
        """``mean m(clean) - mean m(corrupted)``."""
        return float(np.mean(self.clean) - np.mean(self.corrupted))

    @property
    def share(self) -> np.ndarray:
        """Each edge's share of the clean-corrupted gap: ``-score / gap`` (positive = carries the behaviour)."""
        return -np.asarray(self.score) / self.gap

    @property
    def importance(self) -> np.ndarray:
        """MIB's signed score, positive where the edge helps the task: ``-score * sign(gap)`` in metric units
        (``-score`` with the logit difference, ``score`` with the KL divergence; MIB attributes with a loss).
        For a graph read from MIB JSON (``method="external"``) the file's score."""
        return self.importance_sign * np.asarray(self.score, dtype=float)

    @property
    def importance_sign(self) -> float:
        """``importance = importance_sign * score``: 1 for an external graph, else ``-sign(gap)`` (-1 when the
        gap is 0 or unknown)."""
        if self.method == "external":
            return 1.0
        g = self.gap if self.clean else float("nan")
        return 1.0 if np.isfinite(g) and g < 0 else -1.0

    def ranking(self, *, absolute: bool = True) -> np.ndarray:
        """Edge positions by decreasing ``|score|``, or with ``absolute=False`` by decreasing
        :attr:`importance` (MIB's signed top-k); ties in edge order."""
        return ranking(np.asarray(self.score), absolute=True) if absolute else ranking(self.importance, absolute=False)

    def top(self, k: int, *, absolute: bool = True) -> np.ndarray:
        """Boolean mask of the ``k`` first edges of :meth:`ranking`."""
        m = np.zeros(len(self.score), dtype=bool)
        m[self.ranking(absolute=absolute)[:k]] = True
        return m

    def edge_set(self) -> EdgeSet:
        s = self.shape
        return _build(s["n_layers"], s["n_heads"], s["n_kv_heads"], bool(s["has_mlp"]), bool(s["parallel_residual"]))

    def summary(self, k: int = 5) -> str:
        top = self.ranking()[:k]
        return (f"{self.method} ({self.metric}, {len(self.clean)} prompts): {len(self.edges)} edges, "
                f"{sum(self.in_circuit)} in the circuit; largest |score|: "
                + ", ".join(f"{self.edges[i]} {self.score[i]:+.3f}" for i in top))

    def __str__(self) -> str:
        return self.summary()

    def _table(self) -> Table:
        """The edges with the largest |score| (:meth:`ranking`) with share, interval, adjusted p and membership."""
        n, share = len(self.edges), self.share if self.clean else [None] * len(self.edges)

        def col(xs, i):
            return None if xs is None else xs[i]

        rows = [(self.edges[i], self.score[i], share[i], interval(col(self.ci_low, i), col(self.ci_high, i)),
                 col(self.pvalue_adjusted, i), "yes" if self.in_circuit[i] else "")
                for i in self.ranking()[:TOP_ROWS]]
        notes = [f"{len(self.clean)} prompts, gap {self.gap:.3f}; {sum(self.in_circuit)} of {n} edges in the circuit"]
        if self.decision:
            notes.append(f"test: {self.decision}")
        return Table(f"EdgeScores: {self.method}, metric {self.metric}",
                     ("edge", "score", "share", "CI", "p_adj", "in circuit"), rows, notes=notes, total=n, noun="edge")

    def to_mib_json(self) -> dict:
        """The EAP-IG / MIB circuit JSON: ``{"cfg": {...}, "nodes": {name: {"in_graph": bool}},
        "edges": {name: {"score": float, "in_graph": bool}}}`` (``Graph.from_json`` of the EAP-IG
        package reads it). ``score`` is :attr:`importance`, MIB's sign (positive helps the task), so MIB's
        signed top-k picks the edges that carry the behaviour; :func:`circuitry.discovery.mib.read_mib_json`
        reads it back. With GQA a key/value edge is listed under every query head of its group."""
        s = self.shape
        edges: dict[str, dict] = {}
        G = s["n_heads"] // s["n_kv_heads"]
        for name, sc, keep in zip(self.mib_edges, self.importance.tolist(), self.in_circuit):
            names = [name]
            if G > 1 and (name.endswith("<k>") or name.endswith("<v>")):
                src, dst = name.split("->")
                layer, head = dst[1:].split(".h")
                first = int(head[:-3])
                names = [f"{src}->a{layer}.h{first + j}{dst[-3:]}" for j in range(G)]
            for nm in names:
                edges[nm] = {"score": None if np.isnan(sc) else float(sc), "in_graph": bool(keep)}
        nodes = {"input": {"in_graph": True}, "logits": {"in_graph": True}}
        for l in range(s["n_layers"]):
            for h in range(s["n_heads"]):
                nodes[f"a{l}.h{h}"] = {"in_graph": False}
            if s["has_mlp"]:
                nodes[f"m{l}"] = {"in_graph": False}
        for nm, e in edges.items():
            if e["in_graph"]:
                for end in nm.split("<")[0].split("->"):
                    nodes[end]["in_graph"] = True
        cfg = {"n_layers": s["n_layers"], "n_heads": s["n_heads"], "parallel_attn_mlp": bool(s["parallel_residual"]),
               "d_model": s.get("d_model", 0)}
        return {"cfg": cfg, "nodes": nodes, "edges": edges}

    @classmethod
    def from_mib_json(cls, source, model) -> "EdgeScores":
        """An MIB / EAP-IG graph JSON (a path or the parsed dict) over ``model``'s edges (a loaded model or an
        :class:`EdgeSet`): :func:`circuitry.discovery.mib.read_mib_json`."""
        from circuitry.discovery.mib import read_mib_json

        return read_mib_json(source, model)

    def to_graph(self, *, circuit_only: bool = False) -> nx.DiGraph:
        """The scores as a composition graph (:func:`circuitry.graph.build_graph`).

        Every edge kind carries ``effect`` (share of the gap), and the extra fields ``score`` (raw),
        ``rank`` (1 = largest ``|score|``) and ``in_circuit`` (1.0 or 0.0); every graph edge also gets
        the boolean ``in_circuit`` (any of its kinds kept). ``circuit_only`` keeps only the circuit's
        edges (what DOT, Mermaid and drawings show)."""
        from circuitry.graph import EdgeMeasurement, build_graph

        es = self.edge_set()
        rank = np.empty(len(self.edges), dtype=int)
        rank[self.ranking()] = np.arange(1, len(self.edges) + 1)
        share = self.share
        ms = []
        for i, (src, dst, kind) in enumerate(es.triples):
            if circuit_only and not self.in_circuit[i]:
                continue
            pv = {} if self.pvalue is None else {"pvalue": self.pvalue[i], "pvalue_adjusted": self.pvalue_adjusted[i]}
            if self.ci_low is not None:
                pv.update(ci_low=self.ci_low[i], ci_high=self.ci_high[i])
            ms.append(EdgeMeasurement(source=src, target=dst, kind=kind, effect=float(share[i]), **pv,
                                      extra={"score": self.score[i], "rank": float(rank[i]),
                                             "in_circuit": float(self.in_circuit[i])}))
        s = self.shape
        G = build_graph(n_layers=s["n_layers"], n_heads=s["n_heads"], edges=ms, n_kv_heads=s["n_kv_heads"],
                        mlp_layers=range(s["n_layers"]) if s["has_mlp"] else (),
                        graph_attrs={"method": self.method, "metric": self.metric, "model_id": self.provenance.model_id,
                                     "provenance": self.provenance, "params": json.dumps(self.params, sort_keys=True),
                                     "ablation": str(self.params.get("ablation", "unknown" if self.method == "external"
                                                                     else "counterfactual")),
                                     "score_convention": "score = m(edge fed from its ablation) - m(clean); "
                                                         "effect = share of the clean-ablated gap"})
        kept = {(es.triples[i][0], es.triples[i][1]) for i in range(len(es)) if self.in_circuit[i]}
        for u, v, d in G.edges(data=True):
            d["in_circuit"] = (u, v) in kept
        if circuit_only:
            G.remove_nodes_from([n for n in list(G) if G.degree(n) == 0 and n not in ("embed", "logits")])
        return G


def check_method(method: str) -> str:
    if method not in METHODS:
        raise bad_value("method", method, f"one of {', '.join(METHODS)}", "e.g. method='eap-ig'")
    return method
