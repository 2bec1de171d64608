"""Text drawings of the composition graph: Graphviz DOT and Mermaid.

Both are *multigraph views*: they write one edge line per measured ``(source, target, kind)``, coloured
by kind (:data:`~circuitry.graph.schema.KIND_COLORS`), with that kind's values, so the Q, K and V paths
into one head appear as separate arrows. The DOT writer is circuitry's own (no pydot or graphviz
needed); render with ``dot -Tsvg graph.dot -o graph.svg`` where Graphviz is installed.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

import networkx as nx

from circuitry.errors import bad_value
from circuitry.graph.build import _extra_fields, edge_kinds
from circuitry.graph.export import PathLike, _check_graph
from circuitry.graph.schema import FIELDS, KIND_COLORS, kind_attr
from circuitry.io import atomic_write_text
from circuitry.labels import node_layer

_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DOT_RENAMED_NODE_ATTRS = {"layer": "circuitry_layer"}
"""Node attributes renamed in DOT because Graphviz reserves the name (``layer`` selects output layers)."""
_TYPE_FILL = {"embed": "#fde9c9", "head": "#ffffff", "kv_group": "#f3e6f7", "mlp": "#e8e8e8", "logits": "#d9ecd0"}


def _measured(G: nx.DiGraph, attr: str) -> list[tuple[str, str, str, dict[str, float]]]:
    fields = (*FIELDS, *_extra_fields(G))
    if attr not in fields:
        raise bad_value("attr", attr, f"an edge field, one of {', '.join(fields)}", "pass attr='effect'")
    return [
        (u, v, k, {f: float(d.get(kind_attr(f, k), math.nan)) for f in fields})
        for u, v, d in G.edges(data=True)
        for k in edge_kinds(G, u, v)
    ]


def node_text(G: nx.DiGraph, n: str, sep: str = " = ") -> str:
    """A node's label in drawings: its id, and for a key/value group its query heads
    (``"L1G0 = L1H0-L1H3"``; ``sep`` goes between the two)."""
    heads = [h for h in str(G.nodes[n].get("query_heads", "")).split(",") if h]
    if G.nodes[n].get("type") != "kv_group" or not heads:
        return n
    return f"{n}{sep}{heads[0]}" + (f"-{heads[-1]}" if len(heads) > 1 else "")


def _width(x: float, top: float, lo: float = 1.0, hi: float = 5.0) -> float:
    return lo if math.isnan(x) or top <= 0 else lo + (hi - lo) * abs(x) / top


def _top(rows: list[tuple[str, str, str, dict[str, float]]], attr: str) -> float:
    vals = [abs(r[3][attr]) for r in rows if not math.isnan(r[3][attr])]
    return max(vals, default=0.0)


def _fmt(x: float, digits: int) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}g}"


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_attrs(attrs: dict[str, Any]) -> str:
    parts = []
    for k, v in attrs.items():
        key = k if _ID_RE.match(k) else _dot_str(k)
        val = ("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)
        parts.append(f"{key}={_dot_str(val)}")
    return ", ".join(parts)


def to_dot(G: nx.DiGraph, *, attr: str = "effect", digits: int = 3, name: str = "circuit") -> str:
    """The graph as Graphviz DOT text.

    Parameters
    ----------
    G : networkx.DiGraph
        A composition graph.
    attr : str
        Field that sets edge width (``penwidth``, 1-5 by |value|) and the edge label.
    digits : int
        Significant digits in labels (attribute values are written in full, NaN as ``nan``).
    name : str
        The DOT graph name.

    Returns
    -------
    str
        ``digraph`` text: graph attributes in ``graph [...]``, one ``rank=same`` group per layer, every
        node with its attributes (``layer`` as ``circuitry_layer``), and one edge per measured kind with
        ``kind``, every field of that kind, ``color``, ``penwidth`` and ``label``. Missing values are
        dashed edges.
    """
    _check_graph(G)
    rows = _measured(G, attr)
    top = _top(rows, attr)
    lines = [f"digraph {_dot_str(name)} {{"]
    lines.append(f"  graph [{_dot_attrs({'rankdir': 'LR', 'ranksep': '1.2', **G.graph})}];")
    lines.append('  node [shape="box", style="rounded,filled", fontname="Helvetica"];')
    ranks: dict[float, list[str]] = {}
    for n in G:
        ranks.setdefault(node_layer(n), []).append(n)
    for layer in sorted(ranks):
        lines.append("  { rank=same; " + " ".join(_dot_str(n) + ";" for n in ranks[layer]) + " }")
    for n, d in G.nodes(data=True):
        attrs = {DOT_RENAMED_NODE_ATTRS.get(k, k): v for k, v in d.items()}
        attrs.update(label=node_text(G, n), fillcolor=_TYPE_FILL.get(str(d.get("type")), "#ffffff"))
        lines.append(f"  {_dot_str(n)} [{_dot_attrs(attrs)}];")
    for u, v, k, vals in rows:
        x = vals[attr]
        style = {
            "color": KIND_COLORS[k],
            "penwidth": f"{_width(x, top):.2f}",
            "label": f"{k} {_fmt(x, digits)}",
            "fontcolor": KIND_COLORS[k],
        }
        if math.isnan(x):
            style["style"] = "dashed"
        lines.append(f"  {_dot_str(u)} -> {_dot_str(v)} [{_dot_attrs({'kind': k, **vals, **style})}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(G: nx.DiGraph, path: PathLike, *, attr: str = "effect", digits: int = 3) -> Any:
    """Write :func:`to_dot` to ``path`` atomically; returns the path."""
    return atomic_write_text(path, to_dot(G, attr=attr, digits=digits))


def _mm_text(s: str) -> str:
    return s.replace('"', "#quot;").replace("\n", " ")


def to_mermaid(
    G: nx.DiGraph, *, attr: str = "effect", node_score: Optional[str] = None, digits: int = 3
) -> str:
    """The graph as a Mermaid ``flowchart LR`` (renders in GitHub Markdown, GitLab, Notion).

    Parameters
    ----------
    G : networkx.DiGraph
        A composition graph.
    attr : str
        Field shown on each edge label (``"k 0.412"``) and used for the stroke width (1-5 px).
    node_score : str, optional
        A node attribute to print under each node id (e.g. ``"induction_score"``).
    digits : int
        Significant digits in labels.

    Returns
    -------
    str
        Mermaid text: graph attributes as ``%%`` comments, one subgraph per layer, one edge per measured
        kind, and a ``linkStyle`` line per edge with the kind's colour.
    """
    _check_graph(G)
    if node_score is not None and not any(node_score in d for _, d in G.nodes(data=True)):
        raise bad_value("node_score", node_score, "a node attribute of the graph", "e.g. 'induction_score'")
    rows = _measured(G, attr)
    top = _top(rows, attr)
    lines = ["flowchart LR", "  %% circuitry composition graph"]
    for k, v in G.graph.items():
        lines.append(f"  %% {k}: {str(v).replace(chr(10), ' ')}")

    def node_line(n: str) -> str:
        text = node_text(G, n)
        if node_score is not None:
            text += f"<br/>{node_score} {_fmt(float(G.nodes[n].get(node_score, math.nan)), digits)}"
        shape = ('(["', '"])') if G.nodes[n].get("type") in ("embed", "logits") else ('["', '"]')
        return f"{n}{shape[0]}{_mm_text(text)}{shape[1]}"

    groups: dict[float, list[str]] = {}
    for n in G:
        groups.setdefault(node_layer(n), []).append(n)
    for layer in sorted(groups):
        members = groups[layer]
        if G.nodes[members[0]].get("type") in ("embed", "logits"):
            lines += [f"  {node_line(n)}" for n in members]
            continue
        sid = f"layer{layer:g}".replace(".", "_").replace("-", "m")
        kind = G.nodes[members[0]].get("type")
        title = (f"layer {layer:g}" if kind == "head" else f"MLP {int(layer)}" if kind == "mlp"
                 else f"layer {G.nodes[members[0]].get('layer')} key/value groups")
        lines.append(f'  subgraph {sid} ["{title}"]')
        lines += [f"    {node_line(n)}" for n in members]
        lines.append("  end")
    for u, v, k, vals in rows:
        arrow = "-.->" if math.isnan(vals[attr]) else "-->"
        lines.append(f'  {u} {arrow}|"{k} {_fmt(vals[attr], digits)}"| {v}')
    for i, (_, _, k, vals) in enumerate(rows):
        lines.append(f"  linkStyle {i} stroke:{KIND_COLORS[k]},stroke-width:{_width(vals[attr], top):.1f}px")
    return "\n".join(lines) + "\n"


def write_mermaid(G: nx.DiGraph, path: PathLike, *, attr: str = "effect", node_score: Optional[str] = None) -> Any:
    """Write :func:`to_mermaid` to ``path`` (``.mmd``) atomically; returns the path."""
    return atomic_write_text(path, to_mermaid(G, attr=attr, node_score=node_score))
