"""Build the composition graph from edge measurements, and read measurements back out of it.

One ``networkx.DiGraph`` edge joins a pair of nodes; the Q, K and V paths into the same receiver head
share it. With grouped-query attention the K and V paths enter a key/value group node ``L{l}G{g}``
(measured once for the group) and the Q paths the query heads. Every edge carries, for every kind ``K`` in ``q, k, v, out`` and every field ``F``, an
attribute ``F_K`` (NaN where that kind was not measured), plus the unsuffixed fields of its *dominant*
kind (attribute ``kind``) and the list of measured kinds (attribute ``kinds``, e.g. ``"q,k,v"``).
See ``docs/graph-formats.md`` for the full schema.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx
from pydantic import BaseModel

from circuitry.errors import InputError, bad_value
from circuitry.graph.schema import (
    FIELDS,
    HEAD_KINDS,
    KINDS,
    RESERVED_NODE_ATTRS,
    EdgeMeasurement,
    Kind,
    kind_attr,
)
from circuitry.labels import (
    EMBED,
    LOGITS,
    all_heads,
    group_heads,
    group_label,
    is_group,
    mlp_label,
    node_layer,
    parse_group,
    parse_head,
)
from circuitry.provenance import Provenance

GRAPH_SCHEMA = "circuitry.graph/1"
NAN = math.nan


def _node_type(node: str) -> str:
    if node == EMBED:
        return "embed"
    if node == LOGITS:
        return "logits"
    if is_group(node):
        return "kv_group"
    return "mlp" if node.startswith("MLP") else "head"


def _graph_attr_value(key: str, value: Any) -> str | int | float | bool:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, (str, int, float, bool)):
        return value
    raise bad_value(
        f"graph_attrs[{key!r}]", value, "a str, int, float, bool, dict, list or pydantic model",
        "convert it to a string (every export format stores only scalars)",
    )


def _dominant(ms: Sequence[EdgeMeasurement]) -> EdgeMeasurement:
    """Largest |effect|; among missing effects largest |composition|; then q, k, v, out order."""

    def key(m: EdgeMeasurement) -> tuple[float, float, int]:
        e, c = abs(m.value("effect")), abs(m.value("composition"))
        return (-1.0 if math.isnan(e) else e, -1.0 if math.isnan(c) else c, -KINDS.index(m.kind))

    return max(ms, key=key)


def _set_edge_attrs(attrs: dict[str, Any], ms: Sequence[EdgeMeasurement], extra_fields: Sequence[str]) -> None:
    by_kind = {m.kind: m for m in ms}
    dom = _dominant(ms)
    fields = (*FIELDS, *extra_fields)
    attrs["kind"] = dom.kind
    attrs["kinds"] = ",".join(k for k in KINDS if k in by_kind)
    for f in fields:
        attrs[f] = dom.value(f)
    for k in KINDS:
        for f in fields:
            attrs[kind_attr(f, k)] = by_kind[k].value(f) if k in by_kind else NAN


def _check_edge(i: int, m: EdgeMeasurement, nodes: set[str], gqa: bool) -> None:
    where = f"edges[{i}] ({m.source} -> {m.target}, kind {m.kind!r})"
    for end in ("source", "target"):
        node = getattr(m, end)
        if node not in nodes and is_group(node) and not gqa:
            raise InputError(f"{where}: {end} {node!r} is a key/value group, but the graph has none: groups exist "
                             "only with grouped-query attention. Fix: pass n_kv_heads (model.info.n_kv_heads) to "
                             "build_graph")
        if node not in nodes:
            raise InputError(
                f"{where}: {end} {node!r} is not a node of this graph; nodes are 'embed', 'logits', "
                f"'L{{layer}}H{{head}}' within n_layers/n_heads, 'MLP{{l}}' for l in mlp_layers and, with "
                "grouped-query attention (n_kv_heads < n_heads), the key/value groups 'L{layer}G{group}'. "
                "Fix: check the label, or pass the model's n_layers, n_heads, n_kv_heads and mlp_layers"
            )
    if m.source == LOGITS or m.target == EMBED:
        raise InputError(f"{where}: 'logits' cannot send and 'embed' cannot receive; swap source and target")
    if _node_type(m.source) == "kv_group":
        raise InputError(f"{where}: a key/value group only receives (its query heads send); use a head as source")
    if _node_type(m.target) == "kv_group":
        if m.kind not in ("k", "v"):
            raise InputError(f"{where}: a path into key/value group {m.target} enters its 'k' or 'v' input; "
                             "queries are per query head: target one of its heads")
    elif gqa and _node_type(m.target) == "head" and m.kind in ("k", "v"):
        raise InputError(f"{where}: with grouped-query attention a key or value input belongs to a key/value "
                         f"group, measured once for all its query heads. Fix: target the group of {m.target} "
                         "(circuitry.labels.group_of)")
    if node_layer(m.source) >= node_layer(m.target):
        raise InputError(
            f"{where}: the edge goes backwards in layer order (layer {node_layer(m.source):g} -> "
            f"{node_layer(m.target):g}); paths run from earlier to later layers. Fix: swap source and target"
        )
    is_head = _node_type(m.target) in ("head", "kv_group")
    if is_head and m.kind not in HEAD_KINDS:
        raise InputError(f"{where}: a path into head {m.target} enters its 'q', 'k' or 'v' input, not {m.kind!r}")
    if not is_head and m.kind != "out":
        raise InputError(f"{where}: a path into {m.target!r} reads the residual stream; use kind 'out'")


def build_graph(
    *,
    n_layers: int,
    n_heads: int,
    edges: Iterable[EdgeMeasurement | Mapping[str, Any]],
    node_scores: Mapping[str, Mapping[str, float]] = {},
    mlp_layers: Iterable[int] = (),
    graph_attrs: Mapping[str, Any] = {},
    n_kv_heads: int | None = None,
) -> nx.DiGraph:
    """Build the composition graph of a model from measured paths.

    Parameters
    ----------
    n_layers, n_heads : int
        Shape of the model; every head ``L{l}H{h}`` becomes a node, measured or not.
    edges : iterable of EdgeMeasurement (or dicts with its fields)
        One item per measured path ``(source, target, kind)``; at most one per triple.
    node_scores : mapping of score name to mapping of node id to float
        E.g. ``{"prev_token_score": {"L0H0": 0.93, ...}, "induction_score": {...}}``. Every node gets
        every score as an attribute, NaN where the mapping has no value.
    mlp_layers : iterable of int
        Layers with an MLP; each adds a node ``MLP{l}``.
    graph_attrs : mapping
        Graph-level attributes (``model_id``, ``provenance``...). Pydantic models, dicts and lists are
        stored as JSON strings so that every export format keeps them.
    n_kv_heads : int, optional
        Key/value heads per layer (default ``n_heads``). Below ``n_heads`` (grouped-query attention)
        every key/value group ``L{l}G{g}`` becomes a node of type ``kv_group`` with the node attribute
        ``query_heads`` (``"L1H0,L1H1,L1H2,L1H3"``), and ``k``/``v`` paths must enter the group,
        never one of its query heads: the group is one measurement, shown once.

    Returns
    -------
    networkx.DiGraph
        Nodes in layer order with attributes ``layer`` (int; ``embed`` -1, ``logits`` n_layers),
        ``head`` (-1 for non-heads), ``type`` and the scores. One edge per node pair with attributes
        ``kind`` (the dominant kind: largest |effect|, then largest |composition|, then q, k, v, out
        order), ``kinds`` (measured kinds, comma-separated), the fields of the dominant kind
        (``effect``, ``ci_low``, ...) and ``<field>_<kind>`` for every field and kind. Missing values
        are NaN floats.

    Raises
    ------
    InputError
        Unknown nodes, edges against layer order, a kind that does not fit the target (with
        grouped-query attention: ``k``/``v`` into a query head), a duplicate ``(source, target, kind)``,
        or a bad score mapping.

    Examples
    --------
    >>> G = build_graph(n_layers=2, n_heads=2, edges=[
    ...     EdgeMeasurement(source="L0H1", target="L1H0", kind="k", effect=0.4),
    ...     EdgeMeasurement(source="embed", target="L1H0", kind="q", effect=0.1)])
    >>> G.edges["L0H1", "L1H0"]["effect_k"], G.edges["L0H1", "L1H0"]["kind"]
    (0.4, 'k')
    """
    for name, v in (("n_layers", n_layers), ("n_heads", n_heads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad_value(name, v, "a positive integer", "pass the model's config value")
    mlps = sorted({int(x) for x in mlp_layers})
    if any(not 0 <= x < n_layers for x in mlps):
        raise bad_value("mlp_layers", mlps, f"layers in [0, {n_layers})", "drop layers the model does not have")
    n_kv = n_heads if n_kv_heads is None else n_kv_heads
    if isinstance(n_kv, bool) or not isinstance(n_kv, int) or n_kv < 1 or n_heads % n_kv:
        raise bad_value("n_kv_heads", n_kv_heads, f"a positive divisor of n_heads={n_heads}",
                        "pass the model's n_kv_heads (model.info.n_kv_heads)")
    gqa = n_kv < n_heads

    nodes = [EMBED]
    for layer in range(n_layers):
        if gqa:
            nodes += [group_label(layer, g) for g in range(n_kv)]
        nodes += [n for n in all_heads(n_layers, n_heads) if parse_head(n)[0] == layer]
        if layer in mlps:
            nodes.append(mlp_label(layer))
    nodes.append(LOGITS)
    G = nx.DiGraph()
    G.graph.update(schema=GRAPH_SCHEMA, n_layers=n_layers, n_heads=n_heads,
                   mlp_layers=",".join(map(str, mlps)))
    if gqa:  # only then: a graph of a model without grouped-query attention stays exactly as before
        G.graph["n_kv_heads"] = n_kv
    for key, value in graph_attrs.items():
        G.graph[str(key)] = _graph_attr_value(str(key), value)

    for node in nodes:
        t = _node_type(node)
        if t == "kv_group":
            G.add_node(node, layer=parse_group(node)[0], head=-1, type=t,
                       query_heads=",".join(group_heads(node, n_heads // n_kv)))
            continue
        layer = -1 if t == "embed" else n_layers if t == "logits" else int(node_layer(node))
        G.add_node(node, layer=layer, head=parse_head(node)[1] if t == "head" else -1, type=t)
    node_set = set(nodes)
    for score, values in node_scores.items():
        if score in node_set or score in RESERVED_NODE_ATTRS or not isinstance(values, Mapping):
            raise bad_value(
                "node_scores", score, "a mapping {score_name: {node: value}}, score names other than "
                "layer/head/type", "pass e.g. {'induction_score': {'L1H0': 0.9}}",
            )
        unknown = sorted(set(values) - node_set)
        if unknown:
            raise bad_value(f"node_scores[{score!r}]", unknown[:5], "node ids of this graph",
                            "check the labels against n_layers/n_heads")
        for node in nodes:
            G.nodes[node][score] = float(values.get(node, NAN))

    ms = [e if isinstance(e, EdgeMeasurement) else EdgeMeasurement.model_validate(dict(e)) for e in edges]
    grouped: dict[tuple[str, str], list[EdgeMeasurement]] = {}
    for i, m in enumerate(ms):
        _check_edge(i, m, node_set, gqa)
        group = grouped.setdefault((m.source, m.target), [])
        if any(o.kind == m.kind for o in group):
            raise InputError(
                f"edges[{i}]: duplicate measurement ({m.source} -> {m.target}, kind {m.kind!r}); each "
                "(source, target, kind) may appear once. Fix: average repeated measurements first"
            )
        group.append(m)
    extra_fields = sorted({k for m in ms for k in m.extra})
    G.graph["edge_extra_fields"] = ",".join(extra_fields)
    for (u, v), group in grouped.items():
        attrs: dict[str, Any] = {}
        _set_edge_attrs(attrs, group, extra_fields)
        G.add_edge(u, v, **attrs)
    return G


def _extra_fields(G: nx.DiGraph) -> list[str]:
    s = G.graph.get("edge_extra_fields", "")
    return [x for x in str(s).split(",") if x]


def _check_kind(kind: Any) -> None:
    if kind not in KINDS:
        raise bad_value("kind", kind, f"one of {', '.join(KINDS)}", "use 'q', 'k', 'v' or 'out'")


def edge_kinds(G: nx.DiGraph, u: str, v: str) -> list[str]:
    """Measured kinds of edge ``u -> v`` in q, k, v, out order."""
    return [k for k in str(G.edges[u, v].get("kinds", "")).split(",") if k]


def edges_by_kind(G: nx.DiGraph, kind: Kind) -> list[tuple[str, str, dict[str, float]]]:
    """The measurements of one kind as ``(source, target, values)``, in edge order.

    ``values`` maps the unsuffixed field names (``effect``, ``ci_low``, ..., extra fields) to that
    kind's numbers (NaN where missing). Edges where ``kind`` was not measured are left out.

    Examples
    --------
    >>> [(u, v) for u, v, d in edges_by_kind(G, "k") if d["effect"] > 0.1]  # doctest: +SKIP
    [('L0H1', 'L1H0')]
    """
    _check_kind(kind)
    fields = (*FIELDS, *_extra_fields(G))
    return [
        (u, v, {f: float(d.get(kind_attr(f, kind), NAN)) for f in fields})
        for u, v, d in G.edges(data=True)
        if kind in edge_kinds(G, u, v)
    ]


def measurements_from_graph(G: nx.DiGraph) -> list[EdgeMeasurement]:
    """Every measurement stored in ``G`` (the inverse of :func:`build_graph` for edges)."""
    extra = _extra_fields(G)
    out = []
    for u, v, d in G.edges(data=True):
        for k in edge_kinds(G, u, v):
            vals = {f: d.get(kind_attr(f, k), NAN) for f in FIELDS}
            ex = {f: float(d[kind_attr(f, k)]) for f in extra
                  if not math.isnan(float(d.get(kind_attr(f, k), NAN)))}
            out.append(EdgeMeasurement(source=u, target=v, kind=k, extra=ex, **vals))
    return out


def set_edge_values(G: nx.DiGraph, source: str, target: str, kind: Kind, **values: float) -> None:
    """Update fields of one measured ``(source, target, kind)`` in place (e.g. p-values from the
    statistics stage) and re-elect the edge's dominant kind.

    Raises
    ------
    InputError
        The edge or kind was not measured, or a field name is unknown.
    """
    _check_kind(kind)
    if not G.has_edge(source, target) or kind not in edge_kinds(G, source, target):
        raise InputError(f"({source} -> {target}, kind {kind!r}) is not a measured edge of the graph; "
                         "rebuild the graph with build_graph to add measurements")
    extra = _extra_fields(G)
    ms = [m for m in measurements_from_graph(G.subgraph([source, target])) if m.target == target]
    old = next(m for m in ms if m.kind == kind)
    data = old.model_dump()
    for name, value in values.items():
        if name in FIELDS:
            data[name] = value
        elif name in extra:
            data["extra"] = {**data["extra"], name: value}
        else:
            raise bad_value("field", name, f"one of {', '.join((*FIELDS, *extra))}",
                            "add new extra fields through build_graph")
    ms = [EdgeMeasurement.model_validate(data) if m.kind == kind else m for m in ms]
    _set_edge_attrs(G.edges[source, target], ms, extra)


def graph_provenance(G: nx.DiGraph) -> Provenance | None:
    """The :class:`~circuitry.provenance.Provenance` stored as JSON in ``G.graph["provenance"]``."""
    raw = G.graph.get("provenance")
    return None if raw in (None, "") else Provenance.model_validate_json(raw)
