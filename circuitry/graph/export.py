"""Write and read the composition graph as GraphML, GEXF and node-link JSON (networkx readwrite).

Every writer is atomic (temporary file, then rename). Readers return a ``networkx.DiGraph`` with the
same node ids, attributes and types as the graph written:

- GraphML keeps types through its key declarations and stores NaN as ``NaN``.
- GEXF keeps types too (NaN as ``NaN``); networkx's GEXF writer drops graph-level attributes, so
  circuitry stores them as JSON in the standard ``<meta><description>`` element and reads them back.
- Node-link JSON writes NaN as ``null`` (strict JSON has no NaN); the reader turns ``null`` back into
  NaN.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import networkx as nx

from circuitry.errors import InputError, bad_value
from circuitry.io import atomic_write_text

PathLike = str | os.PathLike
_GEXF_META_PREFIX = "circuitry graph attributes: "


def _check_graph(G: Any) -> nx.DiGraph:
    if not isinstance(G, nx.DiGraph) or G.is_multigraph():
        raise bad_value("G", type(G).__name__, "a networkx.DiGraph", "build it with circuitry.graph.build_graph")
    for where, items in (("graph", [("", G.graph)]), ("node", G.nodes(data=True)),
                         ("edge", (((u, v), d) for u, v, d in G.edges(data=True)))):
        for key, attrs in items:
            for name, value in attrs.items():
                if not isinstance(value, (str, int, float, bool)):
                    raise InputError(
                        f"{where} attribute {name!r}{' of ' + str(key) if key else ''} is a "
                        f"{type(value).__name__}; export formats store only str, int, float and bool. "
                        "Fix: convert it to a JSON string"
                    )
    return G


def _clean(G: nx.Graph) -> nx.DiGraph:
    H = nx.DiGraph()
    H.graph.update({k: v for k, v in G.graph.items() if k not in ("node_default", "edge_default", "mode")})
    for n, d in G.nodes(data=True):
        H.add_node(str(n), **d)
    for u, v, d in G.edges(data=True):
        H.add_edge(str(u), str(v), **d)
    return H


def _ours(G: nx.Graph, path: PathLike, fmt: str) -> nx.DiGraph:
    """Refuse a graph file that is not circuitry's: an undirected graph would have its edge directions
    invented, and a graph without circuitry's schema tag has none of the fields the readers promise."""
    from circuitry.graph.build import GRAPH_SCHEMA

    if not G.is_directed():
        raise InputError(f"path={str(path)!r} holds an undirected {fmt} graph; circuitry's graphs are directed "
                         "(sender -> receiver), and reading it as one would invent edge directions. Fix: read it "
                         f"with networkx directly, or export a circuitry graph with write_{fmt}")
    H = G if isinstance(G, nx.DiGraph) and not G.is_multigraph() else None
    schema = (H if H is not None else G).graph.get("schema")
    if schema != GRAPH_SCHEMA:
        raise InputError(f"path={str(path)!r} is a {fmt} graph but not circuitry's (graph attribute schema="
                         f"{schema!r}, expected {GRAPH_SCHEMA!r}). Fix: read foreign graphs with networkx; "
                         "circuitry's readers take the files circuitry writes (docs/graph-formats.md)")
    return G


#: the largest graph file read back (memory: it is parsed whole; circuitry's largest graphs are a few MB)
MAX_GRAPH_BYTES = 256 * 2**20


def _read_file(path: PathLike) -> bytes:
    from circuitry.errors import too_large

    p = Path(path)
    if not p.is_file():
        raise bad_value("path", str(path), "an existing file", "write it first or check the path")
    if p.stat().st_size > MAX_GRAPH_BYTES:
        raise too_large("path", str(path), f"{MAX_GRAPH_BYTES} bytes", f"memory: the file has {p.stat().st_size} "
                        "bytes and is parsed whole", "read it with networkx directly")
    return p.read_bytes()


def _node_link_model():
    """The pydantic model of circuitry's node-link JSON: string node ids, edges between them, and attribute
    values that are JSON scalars (built on first use)."""
    global _NODE_LINK
    if _NODE_LINK is None:
        from typing import Literal

        from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

        Scalar = StrictBool | StrictInt | StrictFloat | StrictStr | None

        class _Attrs(BaseModel):
            model_config = ConfigDict(extra="allow", frozen=True)

            @model_validator(mode="after")
            def _scalars(self):
                for k, v in (self.model_extra or {}).items():
                    if not (v is None or isinstance(v, (bool, int, float, str))):
                        raise ValueError(f"attribute {k!r} is a {type(v).__name__}; circuitry's graphs hold only "
                                         "strings, numbers, booleans and null")
                return self

        class Node(_Attrs):
            id: StrictStr

        class Edge(_Attrs):
            source: StrictStr
            target: StrictStr

        class NodeLink(BaseModel):
            model_config = ConfigDict(extra="forbid", frozen=True)
            directed: Literal[True]
            multigraph: Literal[False] = False
            graph: dict[StrictStr, Scalar] = {}
            nodes: list[Node]
            edges: list[Edge]

        _NODE_LINK = NodeLink
    return _NODE_LINK


_NODE_LINK = None


_GRAPHML_DOUBLE_KEY = re.compile(r'<key id="([^"]+)" for="\w+" attr.name="[^"]*" attr.type="double"')


def write_graphml(G: nx.DiGraph, path: PathLike) -> Path:
    """Write ``G`` as GraphML (opens in Gephi, Cytoscape, yEd); returns the path.

    NaN is written ``NaN`` (XML Schema's spelling, which Java tools parse), not Python's ``nan``.
    """
    buf = io.BytesIO()
    nx.write_graphml(_check_graph(G), buf)
    text = buf.getvalue().decode("utf-8")
    keys = _GRAPHML_DOUBLE_KEY.findall(text)
    if keys:
        pattern = r'(<data key="(?:' + "|".join(map(re.escape, keys)) + r')">)nan(</data>)'
        text = re.sub(pattern, r"\1NaN\2", text)
    return atomic_write_text(path, text)


def read_graphml(path: PathLike) -> nx.DiGraph:
    """Read a graph written by :func:`write_graphml` (types from the key declarations)."""
    data = _read_file(path)
    try:
        G = nx.read_graphml(io.BytesIO(data), node_type=str)
    except (ET.ParseError, nx.NetworkXError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise bad_value("path", str(path), "a GraphML file", f"the file does not parse ({exc})") from None
    return _clean(_ours(G, path, "graphml"))


def write_gexf(G: nx.DiGraph, path: PathLike) -> Path:
    """Write ``G`` as GEXF 1.2 (Gephi's native format); graph attributes go into ``<meta><description>``."""
    buf = io.BytesIO()
    nx.write_gexf(_check_graph(G), buf)
    text = buf.getvalue().decode("utf-8")
    desc = _GEXF_META_PREFIX + json.dumps(G.graph, sort_keys=True, allow_nan=True)
    marker = "</creator>"
    if marker not in text:  # pragma: no cover - networkx always writes a creator
        raise InputError("networkx wrote GEXF without <meta><creator>; cannot store graph attributes")
    text = text.replace(marker, marker + f"\n    <description>{escape(desc)}</description>", 1)
    return atomic_write_text(path, text)


def read_gexf(path: PathLike) -> nx.DiGraph:
    """Read a graph written by :func:`write_gexf`, restoring graph attributes and dropping the
    ``label``/``id`` attributes the GEXF reader adds."""
    data = _read_file(path)
    try:
        raw = nx.read_gexf(io.BytesIO(data), node_type=str)
    except (ET.ParseError, nx.NetworkXError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise bad_value("path", str(path), "a GEXF file", f"the file does not parse ({exc})") from None
    if not raw.is_directed():
        _ours(raw, path, "gexf")
    G = _clean(raw)
    for _, d in G.nodes(data=True):
        d.pop("label", None)
    for _, _, d in G.edges(data=True):
        d.pop("id", None)
    for el in ET.fromstring(data).iter():
        if el.tag.endswith("description") and (el.text or "").startswith(_GEXF_META_PREFIX):
            text = el.text[len(_GEXF_META_PREFIX):]
            try:
                attrs = json.loads(text) if len(text) <= 1_000_000 else None
            except (ValueError, RecursionError):
                attrs = None
            if not isinstance(attrs, dict) or not all(
                    v is None or isinstance(v, (bool, int, float, str)) for v in attrs.values()):
                raise InputError(f"path={str(path)!r}: its <description> starts as circuitry's but does not hold a "
                                 "JSON object of graph attributes (strings, numbers, booleans). Fix: read foreign "
                                 "graphs with networkx; circuitry's readers take the files circuitry writes "
                                 "(docs/graph-formats.md)")
            G.graph.update(attrs)
    return _ours(G, path, "gexf")


def _nan_to_null(d: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


def _null_to_nan(d: dict[str, Any]) -> dict[str, Any]:
    return {k: math.nan if v is None else v for k, v in d.items()}


def write_node_link_json(G: nx.DiGraph, path: PathLike) -> Path:
    """Write ``G`` as node-link JSON (``networkx.node_link_data``, key ``edges``), NaN as ``null``."""
    data = nx.node_link_data(_check_graph(G), edges="edges")
    data["graph"] = _nan_to_null(data["graph"])
    data["nodes"] = [_nan_to_null(n) for n in data["nodes"]]
    data["edges"] = [_nan_to_null(e) for e in data["edges"]]
    return atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def read_node_link_json(path: PathLike) -> nx.DiGraph:
    """Read a graph written by :func:`write_node_link_json`; ``null`` values become NaN."""
    from pydantic import ValidationError

    from circuitry.errors import field_error
    from circuitry.io import MAX_DEPTH, _depth

    raw = _read_file(path)
    if _depth(raw) > MAX_DEPTH:
        raise bad_value("path", str(path), f"a node-link JSON file (nested at most {MAX_DEPTH} levels)",
                        "write it with circuitry.graph.write_node_link_json")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad_value("path", str(path), "a node-link JSON file", f"the file is not UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not isinstance(data.get("edges"), list):
        raise bad_value("path", str(path), "a node-link JSON object with 'nodes' and 'edges' lists",
                        "write it with circuitry.graph.write_node_link_json")
    if data.get("directed") is not True:
        raise InputError(f"path={str(path)!r} holds an undirected node-link graph (directed={data.get('directed')!r}); "
                         "circuitry's graphs are directed. Fix: read it with networkx directly")
    try:
        _node_link_model().model_validate(data)
    except ValidationError as exc:
        raise field_error(str(path), exc, "read foreign graphs with networkx; circuitry's readers take the files "
                          "circuitry writes (docs/graph-formats.md)") from None
    data["graph"] = _null_to_nan(data.get("graph", {}))
    data["nodes"] = [_null_to_nan(n) for n in data.get("nodes", [])]
    data["edges"] = [_null_to_nan(e) for e in data.get("edges", [])]
    return _ours(_clean(nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")), path, "node_link_json")


def write_all(G: nx.DiGraph, directory: PathLike, *, stem: str = "graph",
              drawn: nx.DiGraph | None = None) -> dict[str, Path]:
    """Write ``G`` in every text format to ``directory``: ``{stem}.graphml``, ``.gexf``, ``.json``,
    ``.dot`` and ``.mmd`` (Mermaid). Returns ``{format: path}``. Drawings: see :func:`draw_graph`.

    ``drawn`` (default ``G``) is the graph of the two *drawing* formats, DOT and Mermaid: pass the
    statistically supported subgraph so that a render shows only what the statistics support, while the
    data formats (GraphML, GEXF, node-link JSON) keep every edge with its statistics."""
    from circuitry.graph.text import write_dot, write_mermaid

    drawn = G if drawn is None else drawn
    d = Path(directory)
    return {
        "graphml": write_graphml(G, d / f"{stem}.graphml"),
        "gexf": write_gexf(G, d / f"{stem}.gexf"),
        "json": write_node_link_json(G, d / f"{stem}.json"),
        "dot": write_dot(drawn, d / f"{stem}.dot"),
        "mermaid": write_mermaid(drawn, d / f"{stem}.mmd"),
    }
