"""The composition graph: a ``networkx.DiGraph`` of measured paths between model components.

Nodes are ``"embed"``, heads ``"L{layer}H{head}"``, ``"MLP{layer}"``, ``"logits"`` and, with
grouped-query attention, the key/value groups ``"L{layer}G{group}"`` that K and V paths enter; edges carry the
measured effect of each path by kind (q, k, v, out). Build it with :func:`build_graph`, analyse it with
plain functions (:func:`prune`, :func:`top_paths`, :func:`circuit_subgraph`, :func:`strongest_edges`),
and export it (GraphML, GEXF, node-link JSON, DOT, Mermaid, PNG/SVG). Schema: ``docs/graph-formats.md``.
"""

from circuitry.graph.algorithms import (
    Combine,
    EdgeValue,
    RankedPath,
    circuit_subgraph,
    prune,
    strongest_edges,
    top_paths,
)
from circuitry.graph.build import (
    GRAPH_SCHEMA,
    build_graph,
    edge_kinds,
    edges_by_kind,
    graph_provenance,
    measurements_from_graph,
    set_edge_values,
)
from circuitry.graph.draw import MAX_DRAWN_EDGES, draw_graph, drawn_edges, layered_layout
from circuitry.graph.export import (
    read_gexf,
    read_graphml,
    read_node_link_json,
    write_all,
    write_gexf,
    write_graphml,
    write_node_link_json,
)
from circuitry.graph.schema import FIELDS, KIND_COLORS, KINDS, EdgeMeasurement, Kind, NodeType, kind_attr
from circuitry.graph.text import to_dot, to_mermaid, write_dot, write_mermaid

__all__ = [
    "Combine", "EdgeMeasurement", "MAX_DRAWN_EDGES", "drawn_edges", "EdgeValue", "FIELDS", "GRAPH_SCHEMA", "KINDS", "KIND_COLORS", "Kind",
    "NodeType", "RankedPath", "build_graph", "circuit_subgraph", "draw_graph", "edge_kinds", "edges_by_kind",
    "graph_provenance", "kind_attr", "layered_layout", "measurements_from_graph", "prune", "read_gexf",
    "read_graphml", "read_node_link_json", "set_edge_values", "strongest_edges", "to_dot", "to_mermaid",
    "top_paths", "write_all", "write_dot", "write_gexf", "write_graphml", "write_mermaid",
    "write_node_link_json",
]
