"""Algorithms over the composition graph, as plain functions: prune, top paths, circuit subgraph,
strongest edges.

Missing values (NaN) never pass a threshold and never form part of a path.
"""

from __future__ import annotations

import heapq
import math
from typing import Iterable, Literal, NamedTuple, Optional

import networkx as nx

from circuitry.errors import InputError, bad_value
from circuitry.graph.build import _check_kind, edge_kinds
from circuitry.graph.schema import FIELDS, KINDS, Kind, kind_attr
from circuitry.labels import EMBED, LOGITS
from circuitry.provenance import Frozen

Combine = Literal["product", "sum", "min"]
"""How a path's score is made from its edges' |values|.

- ``"product"``: product of |value| (default). With effects normalized to the clean-corrupted gap,
  this treats each edge as a share of the signal that passes on; one weak link makes a weak path.
  With values below 1 it favours short paths (the direct ``embed -> logits`` path often ranks high).
- ``"sum"``: sum of |value|. Favours longer paths; useful when effects are additive contributions.
- ``"min"``: the weakest edge (bottleneck) of the path.
"""


class EdgeValue(NamedTuple):
    """One measured ``(source, target, kind)`` with a value."""

    source: str
    target: str
    kind: str
    value: float


class RankedPath(Frozen):
    """A path from ``source`` to ``target`` with its score.

    ``kinds[i]`` and ``values[i]`` belong to the edge ``nodes[i] -> nodes[i+1]``; ``values`` are signed.
    """

    nodes: tuple[str, ...]
    kinds: tuple[str, ...]
    values: tuple[float, ...]
    score: float
    combine: Combine

    @property
    def edges(self) -> list[tuple[str, str]]:
        """The path's edges as ``(u, v)`` pairs."""
        return list(zip(self.nodes[:-1], self.nodes[1:]))


def _edge_attr_names(G: nx.DiGraph) -> set[str]:
    return {a for _, _, d in G.edges(data=True) for a in d}


def _check_attr(G: nx.DiGraph, attr: str) -> None:
    if G.number_of_edges() and attr not in _edge_attr_names(G):
        numeric = sorted(a for a in _edge_attr_names(G) if a not in ("kind", "kinds"))
        raise bad_value("attr", attr, "a numeric edge attribute", f"use one of {', '.join(numeric[:12])}, ...")


def _finite(x: object) -> Optional[float]:
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _attr_kind(attr: str) -> Optional[str]:
    for k in KINDS:
        if attr.endswith(f"_{k}") and attr[: -len(k) - 1] in FIELDS:
            return k
    return None


def prune(
    G: nx.DiGraph, *, threshold: float, attr: str = "effect", absolute: bool = True, keep_isolated: bool = False
) -> nx.DiGraph:
    """Keep the edges whose ``attr`` reaches ``threshold``.

    Parameters
    ----------
    G : networkx.DiGraph
        A composition graph.
    threshold : float
        Edges with ``|attr| >= threshold`` (or ``attr >= threshold`` when ``absolute=False``) stay.
    attr : str
        Any numeric edge attribute: ``"effect"`` (the dominant kind's, i.e. the largest |effect| of the
        pair, so an edge stays if any of its kinds passes), or a per-kind one such as ``"effect_k"``.
    absolute : bool
        Compare the absolute value (negative effects count as strong).
    keep_isolated : bool
        Keep nodes left without edges. ``embed`` and ``logits`` are always kept.

    Returns
    -------
    networkx.DiGraph
        A new graph (node, edge and graph attributes copied). Edges whose value is NaN are removed.
    """
    t = _finite(threshold)
    if t is None:
        raise bad_value("threshold", threshold, "a finite number", "pass e.g. threshold=0.05")
    _check_attr(G, attr)
    H = G.copy()
    for u, v, d in G.edges(data=True):
        x = _finite(d.get(attr))
        if x is None or (abs(x) if absolute else x) < t:
            H.remove_edge(u, v)
    if not keep_isolated:
        H.remove_nodes_from([n for n in list(H) if H.degree(n) == 0 and n not in (EMBED, LOGITS)])
    return H


def top_paths(
    G: nx.DiGraph,
    *,
    k: int = 5,
    source: str = EMBED,
    target: str = LOGITS,
    attr: str = "effect",
    combine: Combine = "product",
) -> list[RankedPath]:
    """The ``k`` highest-scoring paths from ``source`` to ``target``.

    A path's score combines the absolute values of ``attr`` along its edges (see :data:`Combine`;
    default the product). Edges with a missing value are not traversed. The search is exact and
    runs in ``O(edges * k log k)`` on the layered DAG (a k-best dynamic program in topological order;
    every combine rule is monotone, so the best paths extend best prefixes). Ties break by node ids.

    Returns
    -------
    list of RankedPath
        Best first; fewer than ``k`` when fewer paths exist.

    Raises
    ------
    InputError
        Unknown ``source``/``target``, ``k < 1``, an unknown ``combine``, or a graph with a cycle.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise bad_value("k", k, "a positive integer", "pass e.g. k=5")
    if combine not in ("product", "sum", "min"):
        raise bad_value("combine", combine, "'product', 'sum' or 'min'", "pass combine='product'")
    for name, node in (("source", source), ("target", target)):
        if node not in G:
            raise bad_value(name, node, "a node of the graph", "prune with keep_isolated or check the label")
    if source == target:
        raise bad_value("target", target, "a node other than source")
    _check_attr(G, attr)
    try:
        order = list(nx.topological_sort(G))
    except nx.NetworkXUnfeasible as exc:
        raise InputError("the graph has a cycle; top_paths needs edges that run forward in layer order") from exc
    start = {"product": 1.0, "sum": 0.0, "min": math.inf}[combine]

    def step(s: float, w: float) -> float:
        return s * w if combine == "product" else s + w if combine == "sum" else min(s, w)

    best: dict[str, list[tuple[float, tuple[str, ...]]]] = {source: [(start, (source,))]}
    for u in order:
        if u not in best or u == target:
            continue
        for v, d in G.succ[u].items():
            w = _finite(d.get(attr))
            if w is None:
                continue
            cand = best.get(v, []) + [(step(s, abs(w)), p + (v,)) for s, p in best[u]]
            best[v] = heapq.nsmallest(k, cand, key=lambda x: (-x[0], x[1]))
    fixed = _attr_kind(attr)
    out = []
    for score, nodes in best.get(target, []):
        pairs = list(zip(nodes[:-1], nodes[1:]))
        out.append(RankedPath(
            nodes=nodes,
            kinds=tuple(fixed or G.edges[e]["kind"] for e in pairs),
            values=tuple(float(G.edges[e][attr]) for e in pairs),
            score=float(score),
            combine=combine,
        ))
    return out


def circuit_subgraph(G: nx.DiGraph, nodes_or_edges: Iterable[str | tuple[str, str] | RankedPath]) -> nx.DiGraph:
    """The part of ``G`` that forms a circuit.

    Parameters
    ----------
    G : networkx.DiGraph
        A composition graph.
    nodes_or_edges : iterable
        Node ids (``"L0H1"``), edges ``(u, v)`` and/or :class:`RankedPath` objects. Nodes alone give
        the induced subgraph (every edge among them); edges and paths give exactly those edges, plus
        any bare nodes listed, without further edges.

    Returns
    -------
    networkx.DiGraph
        An independent copy with all attributes.

    Raises
    ------
    InputError
        An unknown node or edge, or an empty selection.
    """
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    for item in nodes_or_edges:
        if isinstance(item, RankedPath):
            edges += item.edges
        elif isinstance(item, str):
            nodes.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            edges.append((str(item[0]), str(item[1])))
        else:
            raise bad_value("nodes_or_edges item", item, "a node id, a (source, target) pair or a RankedPath")
    if not nodes and not edges:
        raise bad_value("nodes_or_edges", [], "at least one node, edge or path")
    for n in nodes:
        if n not in G:
            raise bad_value("nodes_or_edges", n, "a node of the graph", "check the label (e.g. 'L1H6')")
    for u, v in edges:
        if not G.has_edge(u, v):
            raise bad_value("nodes_or_edges", (u, v), "an edge of the graph", "the edge may have been pruned")
    if not edges:
        return G.subgraph(nodes).copy()
    H = G.edge_subgraph(edges).copy()
    for n in nodes:
        if n not in H:
            H.add_node(n, **G.nodes[n])
    return H


def strongest_edges(
    G: nx.DiGraph, *, kind: Optional[Kind] = None, n: int = 10, attr: str = "effect"
) -> list[EdgeValue]:
    """The ``n`` measurements with the largest ``|attr|``.

    Parameters
    ----------
    kind : {"q", "k", "v", "out"}, optional
        Only this kind; ``None`` ranks every measured ``(source, target, kind)`` together.
    n : int
        How many to return.
    attr : str
        An unsuffixed field (``"effect"``, ``"composition"``, ``"pvalue"``, ... or an extra field);
        the per-kind attribute ``<attr>_<kind>`` is read.

    Returns
    -------
    list of EdgeValue
        ``(source, target, kind, value)``, largest ``|value|`` first; NaN values are skipped.
    """
    if kind is not None:
        _check_kind(kind)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise bad_value("n", n, "a positive integer", "pass e.g. n=10")
    _check_attr(G, kind_attr(attr, kind or "q") if G.number_of_edges() else attr)
    rows = []
    for u, v, d in G.edges(data=True):
        for k in edge_kinds(G, u, v):
            x = _finite(d.get(kind_attr(attr, k)))
            if (kind is None or k == kind) and x is not None:
                rows.append(EdgeValue(u, v, k, x))
    rows.sort(key=lambda r: (-abs(r.value), r.source, r.target, KINDS.index(r.kind)))
    return rows[:n]
