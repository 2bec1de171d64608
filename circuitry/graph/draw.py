"""Draw the composition graph with matplotlib, laid out by layer.

matplotlib is imported inside :func:`draw_graph`; the figure is rendered on its own Agg canvas
(``matplotlib.figure.Figure`` + ``FigureCanvasAgg``), so neither pyplot's global state nor the
session's backend is touched.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Literal, Optional, Sequence

import networkx as nx

from circuitry.errors import bad_value
from circuitry.graph.export import PathLike, _check_graph
from circuitry.graph.schema import KIND_COLORS, KINDS, Kind
from circuitry.graph.text import _measured, _top, node_text
from circuitry.io import atomic_write_bytes
from circuitry.labels import node_layer

ImageFormat = Literal["png", "svg"]
"""Image formats of :func:`draw_graph`, chosen by the file suffix: ``.png`` (raster) or ``.svg`` (vector)."""

MAX_DRAWN_EDGES = 30
"""Arrows :func:`draw_graph` draws by default: the strongest ones; more than this is no longer readable."""


def layered_layout(G: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Positions ``{node: (x, y)}``: x is the layer (``embed`` at -1, ``MLP{l}`` at l + 0.5, a key/value
    group ``L{l}G{g}`` at l - 0.4, ``logits`` one past the last layer), heads stacked top to bottom by head
    index, a key/value group level with the middle of its query heads (moved 0.75 down when that middle
    is the centre line and an ``MLP{l-1}`` node sits there), other nodes centred."""
    finite = [node_layer(n) for n in G if math.isfinite(node_layer(n))]
    right = math.floor(max(finite, default=0.0)) + 1.0
    heads = [int(G.nodes[n].get("head", -1)) for n in G]
    n_heads = max(heads, default=-1) + 1
    pos = {}
    for n, d in G.nodes(data=True):
        x = node_layer(n)
        x = right if not math.isfinite(x) else x
        h = int(d.get("head", -1))
        members = [int(m[m.index("H") + 1:]) for m in str(d.get("query_heads", "")).split(",") if "H" in m]
        if d.get("type") == "kv_group" and members:
            h = sum(members) / len(members)
        y = (n_heads - 1) / 2 - h if h >= 0 else 0.0
        if d.get("type") == "kv_group" and abs(y) < 0.5 and f"MLP{int(d.get('layer', 0)) - 1}" in G:
            y -= 0.75
        pos[n] = (x, y)
    return pos


def drawn_edges(G: nx.DiGraph, *, attr: str = "effect", kinds: Optional[Sequence[Kind]] = None,
                max_edges: Optional[int] = MAX_DRAWN_EDGES) -> tuple[list[tuple[str, str, str, dict]], int]:
    """The arrows :func:`draw_graph` draws, and how many it could have drawn.

    Parameters
    ----------
    G : networkx.DiGraph
        A composition graph.
    attr : str
        The edge field that ranks the arrows (largest ``|attr|`` first; NaN last).
    kinds : sequence of {"q", "k", "v", "out"}, optional
        Kinds to consider (default all).
    max_edges : int, optional
        At most this many arrows (default :data:`MAX_DRAWN_EDGES`); ``None`` draws every one.

    Returns
    -------
    rows : list of (source, target, kind, values)
        One row per arrow (one per measured kind), the strongest ``max_edges``, in the graph's edge order.
    total : int
        The number of measured ``(source, target, kind)`` of ``kinds`` in ``G``.
    """
    if max_edges is not None and (isinstance(max_edges, bool) or not isinstance(max_edges, int) or max_edges < 1):
        raise bad_value("max_edges", max_edges, "a positive integer or None", "pass e.g. max_edges=30")
    kinds = tuple(KINDS if kinds is None else kinds)
    rows = [r for r in _measured(G, attr) if r[2] in kinds]
    if max_edges is None or len(rows) <= max_edges:
        return rows, len(rows)
    order = sorted(range(len(rows)), key=lambda i: (math.isnan(rows[i][3][attr]),
                                                    -abs(rows[i][3][attr]) if not math.isnan(rows[i][3][attr]) else 0, i))
    keep = sorted(order[:max_edges])
    return [rows[i] for i in keep], len(rows)


def draw_graph(
    G: nx.DiGraph,
    path: PathLike | Sequence[PathLike],
    *,
    attr: str = "effect",
    node_score: Optional[str] = None,
    kinds: Optional[Sequence[Kind]] = None,
    title: Optional[str] = None,
    figsize: Optional[tuple[float, float]] = None,
    dpi: int = 150,
    max_width: float = 6.0,
    cmap: Optional[str] = None,
    attr_label: Optional[str] = None,
    node_label: Optional[str] = None,
    max_edges: Optional[int] = MAX_DRAWN_EDGES,
    node_range: Optional[tuple[float, float]] = None,
) -> list[Path]:
    """Draw ``G`` by layer and write PNG and/or SVG files.

    Parameters
    ----------
    G : networkx.DiGraph
        A composition graph.
    path : path or sequence of paths
        Output file(s); the suffix picks the format (see :data:`ImageFormat`). One rendering is saved
        to every path, e.g. ``["fig.png", "fig.svg"]``.
    attr : str
        Edge field for the width (proportional to |value|, up to ``max_width`` points). Edges whose
        value is NaN are drawn thin and dashed.
    node_score : str, optional
        Node attribute for the node colour (``cmap``, with a colour bar); nodes without a value are
        grey. ``None`` colours nodes by type. The colour scale is ``node_range`` when given, else
        anchored at 0: ``[0, max]`` for non-negative scores, ``[min, 0]`` for non-positive ones,
        symmetric about 0 (a diverging map) for scores of both signs.
    kinds : sequence of {"q", "k", "v", "out"}, optional
        Kinds to draw (default all). Each measured kind is its own arrow, coloured by kind
        (:data:`~circuitry.graph.schema.KIND_COLORS`), so Q, K and V paths into one head stay apart.
    title : str, optional
        Figure title; default names ``G.graph["model_id"]`` when present.
    figsize : (float, float), optional
        Inches; default grows with the number of layers and heads. The image is
        ``figsize * dpi`` pixels (PNG).
    dpi : int
        Resolution of the PNG.
    max_width : float
        Line width of the strongest edge.
    cmap : str, optional
        A matplotlib colormap name for ``node_score``; default ``"viridis"``, or ``"RdBu_r"`` when the
        scores have both signs.
    attr_label, node_label : str, optional
        Words for the quantity behind the edge widths (the legend) and the node colours (the colour
        bar); default the attribute names. Every figure names its quantity.
    max_edges : int, optional
        Draw at most this many arrows, the largest ``|attr|`` (default :data:`MAX_DRAWN_EDGES`, 30;
        ``None``: all); the legend says how many are drawn of how many (:func:`drawn_edges`). The graph
        itself keeps every edge, so the files written from it do too. Key/value group nodes
        (grouped-query attention) are labelled with their query heads. Each arrow has the SVG id
        ``edge:{source}->{target}:{kind}``.
    node_range : (float, float), optional
        The node score's natural range, fixed whatever the values (``(0, 1)`` for an attention share,
        ``(-1, 1)`` for a share of the gap), so a weak score is not drawn in the strongest colour; a
        range reaching below 0 uses a diverging map. Values outside take the end colours.

    Returns
    -------
    list of pathlib.Path
        The files written (atomically).
    """
    _check_graph(G)
    paths = [Path(path)] if isinstance(path, (str, Path)) or not isinstance(path, Sequence) else [Path(p) for p in path]
    for p in paths:
        if p.suffix.lower() not in (".png", ".svg"):
            raise bad_value("path", str(p), "a file ending in .png or .svg", "e.g. figures/graph.png")
    if not paths:
        raise bad_value("path", [], "at least one .png or .svg path")
    kinds = tuple(KINDS if kinds is None else kinds)
    for k in kinds:
        if k not in KINDS:
            raise bad_value("kinds", k, f"kinds among {', '.join(KINDS)}")
    if node_score is not None and not any(node_score in d for _, d in G.nodes(data=True)):
        raise bad_value("node_score", node_score, "a node attribute", "e.g. 'induction_score'")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 10:
        raise bad_value("dpi", dpi, "an integer of at least 10")
    if node_range is not None and not (len(node_range) == 2 and all(isinstance(x, (int, float)) for x in node_range)
                                       and node_range[0] < node_range[1]):
        raise bad_value("node_range", node_range, "(low, high) with low < high", "e.g. (0, 1) for a share")

    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    pos = layered_layout(G)
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    if figsize is None:
        figsize = (max(6.0, 1.9 * (max(xs) - min(xs) + 1) + 2.0), max(4.0, 0.55 * (max(ys) - min(ys) + 1) + 1.5))
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)

    rows, n_total = drawn_edges(G, attr=attr, kinds=kinds, max_edges=max_edges)
    top = _top(rows, attr)
    per_pair: dict[tuple[str, str], list[str]] = {}
    for u, v, k, _ in rows:
        per_pair.setdefault((u, v), []).append(k)
    node_r = 17.0
    for u, v, k, vals in rows:
        x = vals[attr]
        siblings = per_pair[(u, v)]
        span = abs(pos[v][0] - pos[u][0])
        rad = (0.25 if span > 1.01 and pos[u][1] == pos[v][1] else 0.0) + 0.12 * (siblings.index(k) - (len(siblings) - 1) / 2)
        width = 0.6 if math.isnan(x) or top <= 0 else 0.6 + (max_width - 0.6) * abs(x) / top
        arrow = FancyArrowPatch(
            pos[u], pos[v], connectionstyle=f"arc3,rad={rad:.3f}", arrowstyle="-|>", mutation_scale=10,
            lw=width, color=KIND_COLORS[k], alpha=0.85, linestyle="--" if math.isnan(x) else "-",
            shrinkA=node_r, shrinkB=node_r, zorder=1,
        )
        arrow.set_gid(f"edge:{u}->{v}:{k}")
        ax.add_patch(arrow)

    norm = None
    if node_score is not None:
        vals = [float(d.get(node_score, math.nan)) for _, d in G.nodes(data=True)]
        finite = [v for v in vals if math.isfinite(v)]
        lo, hi = min(finite, default=0.0), max(finite, default=1.0)
        signed = lo < 0 < hi if node_range is None else node_range[0] < 0
        if node_range is not None:  # the quantity's own range, whatever the values
            norm = Normalize(vmin=float(node_range[0]), vmax=float(node_range[1]))
        elif signed:  # both signs: symmetric about 0, so 0 is the diverging map's middle colour
            span = max(-lo, hi)
            norm = Normalize(vmin=-span, vmax=span)
        else:  # one sign: the scale starts at 0
            vmin, vmax = min(lo, 0.0), max(hi, 0.0)
            norm = Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-9)
        cm = colormaps[cmap or ("RdBu_r" if signed else "viridis")]
    type_fill = {"embed": "#fde9c9", "head": "#ffffff", "kv_group": "#f3e6f7", "mlp": "#e0e0e0", "logits": "#d9ecd0"}
    for n, d in G.nodes(data=True):
        fill = type_fill.get(str(d.get("type")), "#ffffff")
        text_color = "black"
        if norm is not None:
            s = float(d.get(node_score, math.nan))
            if math.isfinite(s):
                rgba = cm(norm(s))
                fill = rgba
                text_color = "white" if 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5 else "black"
            else:
                fill = "#d0d0d0"
        ax.text(*pos[n], node_text(G, n, sep="\n"), ha="center", va="center", fontsize=8, color=text_color, zorder=3,
                bbox=dict(boxstyle="round,pad=0.35", fc=fill, ec="#333333", lw=0.8))
    n_layers = G.graph.get("n_layers")
    if isinstance(n_layers, int):
        for layer in range(n_layers):
            ax.text(layer, max(ys) + 0.6, f"layer {layer}", ha="center", va="bottom", fontsize=9, color="#555555")

    present = [k for k in KINDS if k in kinds and any(r[2] == k for r in rows)]
    handles = [Line2D([0], [0], color=KIND_COLORS[k], lw=2.5, label=k) for k in present]
    if handles:
        shown = (f"all {n_total} arrows drawn" if len(rows) == n_total else
                 f"the {len(rows)} largest of {n_total} arrows drawn; the graph files hold all {n_total}")
        ax.legend(handles=handles, title=f"kind (width ∝ |{attr_label or attr}|); {shown}", loc="upper center", fontsize=8,
                  title_fontsize=8, frameon=True, bbox_to_anchor=(0.5, 0.0), ncol=len(handles))
    if norm is not None:
        from matplotlib.cm import ScalarMappable

        fig.colorbar(ScalarMappable(norm=norm, cmap=cm), ax=ax, shrink=0.6, pad=0.01,
                     label=node_label or node_score)
    model = G.graph.get("model_id")
    fig.suptitle(title if title is not None else f"composition graph{f' of {model}' if model else ''}", fontsize=11)
    written = []
    for p in paths:
        buf = io.BytesIO()
        fig.savefig(buf, format=p.suffix.lower()[1:], dpi=dpi)
        written.append(atomic_write_bytes(p, buf.getvalue()))
    return written
