"""What report.html should draw, computed from the graph file alone (independently of circuitry.viewer), by the
page's documented rule (docs/viewer.md): a path ``(sender, receiver, kind)`` is drawn when its kind is ticked,
its adjusted p <= max p (a view without p-values ignores this), ``|share| >= min |share|``, and it is kept
(with "kept circuit only"); a node when it ends a drawn path, is the key/value group of a drawn query head,
or (with "nodes without a drawn path") always."""

from __future__ import annotations

import math

from circuitry.graph import KINDS, edge_kinds, read_node_link_json


def expected_drawn(graph_file, *, max_p: float, min_share: float, kinds=KINDS, kept_only: bool = False,
                   isolated: bool = False, has_p: bool = True) -> tuple[set[str], set[str]]:
    """``(node ids, path ids "src->dst:kind")`` drawn for these filter settings."""
    G = read_node_link_json(graph_file)
    paths = set()
    for u, v, d in G.edges(data=True):
        for k in edge_kinds(G, u, v):
            share, p = d[f"effect_{k}"], d[f"pvalue_adjusted_{k}"]
            if k not in kinds or (kept_only and not d.get(f"in_circuit_{k}", 0) > 0.5):
                continue
            if has_p and (p > max_p if not math.isnan(p) else max_p < 1):
                continue
            if (abs(share) < min_share) if not math.isnan(share) else min_share > 0:
                continue
            paths.add(f"{u}->{v}:{k}")
    nodes = set(G) if isolated else {e for pid in paths for e in pid.split(":")[0].split("->")}
    group_of = {h: g for g, d in G.nodes(data=True) if d.get("type") == "kv_group"
                for h in d["query_heads"].split(",")}
    nodes |= {group_of[n] for n in nodes if n in group_of}
    return nodes, paths


def measured_paths(graph_file) -> int:
    """Every measured ``(sender, receiver, kind)`` in the graph file."""
    G = read_node_link_json(graph_file)
    return sum(len(edge_kinds(G, u, v)) for u, v in G.edges())
