"""The data of the interactive circuit page, read from what ``circuitry analyze`` or ``circuitry discover``
wrote into a folder; those files are the single source of truth, nothing is recomputed.

- ``circuitry analyze``: ``report.json`` (task, seed, provenance, figures, and for every path the test that
  gave its p-value with the flags ``significant`` and ``matters``) and ``graph.json`` (every measured path
  with its share of the gap, 95% interval and p-values; Wang et al. 2023's path patching).
- ``circuitry discover``: ``discovery.json`` (task, provenance, each method's decision rule) and
  ``{method}/graph.json`` (every edge with its score, share, interval, p-values and whether it was kept;
  exact patching, EAP by Syed et al. 2023, EAP-IG by Hanna et al. 2024, ACDC by Conmy et al. 2023).

A *view* is one graph (analyze has one, discover one per method): its nodes with positions by layer
(:func:`circuitry.graph.layered_layout`) and its *paths*, one per measured ``(sender, receiver, kind)``:
a graph-file edge that carries q, k and v measurements is three paths, each coloured by its kind. With
grouped-query attention a K or V path enters the key/value group ``L{l}G{g}``, one node that is the parent
of its query heads on the page (the group is one unit: measured, drawn and counted once).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from circuitry.errors import InputError

#: pixels between layers (x) and between heads (y) on the page
LAYER_SPACING, HEAD_SPACING = 260.0, 64.0
#: the page draws at most this many paths (the largest |share| first) and says so; every path stays in the data
MAX_DRAWN_PATHS = 2000
_CORRECTIONS = {"bh": "Benjamini-Hochberg", "holm": "Holm", "bonferroni": "Bonferroni", "none": "no correction"}
_NODE_SKIP = {"layer", "head", "type", "query_heads"}
_EDGE_FIELDS = ("effect", "ci_low", "ci_high", "pvalue", "pvalue_adjusted", "composition", "score", "rank",
                "in_circuit")


def _num(v: Any) -> float | None:
    """A finite float, or ``None`` (JSON ``null``) for a missing or NaN value."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _read_json(path: Path, command: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"{path} cannot be read as JSON ({exc}). Fix: run {command} again into that folder") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object. Fix: run {command} again into that folder")
    return data


def _positions(G) -> dict[str, tuple[float, float]]:
    """Page coordinates (x right, y down): the layered layout of the PNG figures, with a key/value group at its
    layer (it is drawn as the box around its query heads)."""
    from circuitry.graph import layered_layout

    pos = layered_layout(G)
    out = {}
    for n, (x, y) in pos.items():
        if G.nodes[n].get("type") == "kv_group":
            x = float(G.nodes[n]["layer"])
        out[n] = (round(x * LAYER_SPACING, 1), round(-y * HEAD_SPACING, 1))
    return out


def graph_view(G, *, name: str, graph_file: str, alpha: float | None, min_share: float, test: str,
               flags: dict[str, dict] | None = None, members: set[str] = frozenset(),
               kept_only: bool = False) -> dict:
    """One view of the page from a circuitry graph (:func:`circuitry.graph.read_node_link_json`).

    Parameters
    ----------
    G : networkx.DiGraph
        A composition graph in circuitry's schema (``docs/graph-formats.md``).
    name, graph_file : str
        The view's name (``"analyze"`` or the method) and the graph file it was read from (relative path).
    alpha : float or None
        The run's significance level: the page's initial "max adjusted p" (``None``: no p-values, e.g. ACDC).
    min_share : float
        The run's practical significance: the page's initial "min |share|".
    test : str
        The test behind the p-values and the decision, in words.
    flags : dict, optional
        Per path id ``"src->dst:kind"``, ``significant`` and ``matters`` as the run decided them
        (``report.json``'s path effects); without, they are ``adjusted p <= alpha`` and ``|share| >= min_share``.
    members : set of str
        Nodes to mark (analyze's circuit heads).
    kept_only : bool
        The page starts with only the kept circuit drawn (ACDC: its kept edges have no p-values).

    Returns
    -------
    dict
        ``nodes`` (id, type, layer, parent group, position, numbers), ``paths`` (id, source, target, kind,
        share, interval, p-values, flags, method-specific numbers) and the view's defaults.
    """
    from circuitry.graph import edge_kinds, kind_attr

    pos = _positions(G)
    parent = {h: g for g, d in G.nodes(data=True) if d.get("type") == "kv_group"
              for h in str(d.get("query_heads", "")).split(",") if h}
    nodes = []
    for n, d in G.nodes(data=True):
        numbers = {k: _num(v) for k, v in d.items() if k not in _NODE_SKIP and _num(v) is not None}
        nodes.append({"id": n, "type": d.get("type", "head"), "layer": int(d.get("layer", 0)),
                      "parent": parent.get(n), "x": pos[n][0], "y": pos[n][1], "query_heads": d.get("query_heads"),
                      "numbers": numbers, "member": n in members})
    paths = []
    for u, v, d in G.edges(data=True):
        for k in edge_kinds(G, u, v):
            vals = {f: _num(d.get(kind_attr(f, k))) for f in _EDGE_FIELDS}
            pid = f"{u}->{v}:{k}"
            share, p_adj = vals.pop("effect"), vals.pop("pvalue_adjusted")
            flag = (flags or {}).get(pid)
            if flag is None:
                flag = {"significant": None if p_adj is None or alpha is None else p_adj <= alpha,
                        "matters": None if share is None else abs(share) >= min_share}
            kept = vals.pop("in_circuit")
            paths.append({"id": pid, "source": u, "target": v, "kind": k, "share": share, "pvalue_adjusted": p_adj,
                          **{f: x for f, x in vals.items() if x is not None},
                          "significant": flag.get("significant"), "matters": flag.get("matters"),
                          "kept": None if kept is None else kept > 0.5})
    return {"name": name, "graph_file": graph_file, "test": test, "alpha": alpha, "min_share": min_share,
            "defaults": {"max_p": 1.0 if alpha is None else alpha, "min_share": 0.0 if kept_only else min_share,
                         "kept_only": kept_only},
            "has_kept": any(p["kept"] is not None for p in paths), "nodes": nodes, "paths": paths}


def _links(d: Path, names) -> list[dict]:
    """The files among ``names`` (relative paths) that exist in ``d`` and stay inside it."""
    out = []
    for rel in names:
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or ":" in rel or not (d / p).is_file():
            continue
        out.append({"href": p.as_posix(), "label": p.as_posix()})
    return out


def _provenance(p: dict) -> dict:
    keys = ("model_id", "library_version", "torch_version", "weights_sha256", "dataset_sha256", "seed", "device",
            "created")
    return {k: p.get(k) for k in keys if p.get(k) is not None}


def _gap_text(g) -> str | None:
    """The clean-corrupted gap in words (``None`` when the file has none)."""
    if not isinstance(g, dict) or _num(g.get("mean")) is None:
        return None
    lo, hi = _num(g.get("ci_low")), _num(g.get("ci_high"))
    return (f"{g['mean']:.3g}, 95% interval [{'-inf' if lo is None else f'{lo:.3g}'}, "
            f"{'inf' if hi is None else f'{hi:.3g}'}]{'' if g.get('resolved') else ' (NOT resolved)'}")


def analyze_data(d: Path) -> dict:
    """The page data of a ``circuitry analyze`` folder (``report.json`` and ``graph.json``)."""
    from circuitry.graph import read_node_link_json

    r = _read_json(d / "report.json", "circuitry analyze")
    try:
        cfg, task, prov = r["config"], r["task"], r["provenance"]
        alpha, min_share = float(cfg["alpha"]), float(cfg["min_share"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{d / 'report.json'} is not a circuitry analyze report (no config, task or provenance). "
                         "Fix: run circuitry analyze again into that folder") from None
    flags, tests = {}, set()
    for e in r.get("path_effects") or []:
        flags[e["site"]] = {"significant": e.get("significant"), "matters": e.get("matters")}
        if e.get("test"):
            tests.add(f"{e['test']}; {_CORRECTIONS.get(e.get('correction'), e.get('correction'))}-adjusted over "
                      "all paths")
    views, note = [], ""
    if (d / "graph.json").is_file():
        G = read_node_link_json(d / "graph.json")
        views.append(graph_view(G, name="analyze", graph_file="graph.json", alpha=alpha, min_share=min_share,
                                test="; ".join(sorted(tests)) or "not recorded", flags=flags,
                                members=set(r.get("circuit_heads") or [])))
    else:
        note = ("No path was measured: the clean-corrupted gap is not resolved (see report.md), so there is no "
                "graph to draw.")
    header = {"Model": prov.get("model_id"), "Task": f"{task.get('name')} ({task.get('source')}): {task.get('prompts')}",
              "Metric": f"{task.get('metric')}: {task.get('target')}",
              "Prompts": f"{task.get('n_discovery')} discovery pairs; circuit test on {task.get('test_prompts')}",
              "Seed": cfg.get("seed"), "Direction": cfg.get("direction"),
              "Decision": f"a path is significant when its adjusted p <= {alpha:g} and matters when |share| >= "
                          f"{min_share:g}",
              "Gap": _gap_text(r.get("gap"))}
    findings = [{"claim": str(f.get("claim", "")), "holds": bool(f.get("holds"))} for f in r.get("findings") or []]
    figures = [f for f in r.get("figures") or [] if isinstance(f, str)]
    return {"command": "circuitry analyze", "title": f"circuitry analyze: {prov.get('model_id')}, task {task.get('name')}",
            "header": {k: str(v) for k, v in header.items() if v is not None}, "provenance": _provenance(prov),
            "findings": findings, "figures": _links(d, figures),
            "files": _links(d, ["report.md", "report.json", "graph.json", "graph.graphml", "graph.gexf", "graph.dot",
                                "graph.mmd"]),
            "views": views, "note": note, "max_drawn": MAX_DRAWN_PATHS}


def _method_test(s: dict) -> str:
    if s.get("decision"):
        return str(s["decision"])
    p = s.get("params") or {}
    if s.get("method") == "acdc":
        rule = p.get("rule", "remove if the metric moves by less than tau")
        return f"ACDC (Conmy et al. 2023) keeps an edge by its sweep ({rule}, tau {p.get('tau')}); it gives no p-values"
    return "not recorded"


def discover_data(d: Path) -> dict:
    """The page data of a ``circuitry discover`` folder (``discovery.json`` and ``{method}/graph.json``)."""
    from circuitry.graph import read_node_link_json

    r = _read_json(d / "discovery.json", "circuitry discover")
    prov = r.get("provenance") if isinstance(r.get("provenance"), dict) else {}
    methods = [m for m in r.get("methods") or [] if isinstance(m, str)]
    if not methods or not prov:
        raise InputError(f"{d / 'discovery.json'} is not a circuitry discover report (no methods or provenance). "
                         "Fix: run circuitry discover again into that folder")
    scores = {s.get("method"): s for s in r.get("scores") or [] if isinstance(s, dict)}
    views = []
    for m in methods:
        f = d / m / "graph.json"
        if m not in scores or not f.is_file():
            continue
        s = scores[m]
        p = s.get("params") or {}
        alpha = None if m == "acdc" else _num(p.get("alpha"))
        views.append(graph_view(read_node_link_json(f), name=m, graph_file=f"{m}/graph.json", alpha=alpha,
                                min_share=_num(p.get("threshold")) or 0.0, test=_method_test(s),
                                kept_only=m == "acdc"))
    header = {"Model": prov.get("model_id"), "Task": r.get("task"), "Prompts": f"{r.get('n_prompts')} pairs",
              "Seed": prov.get("seed"), "Methods": ", ".join(methods), "Ablation": r.get("ablation"),
              "Gap": _gap_text(r.get("gap"))}
    files = sorted(k for k in (r.get("files") or {}) if isinstance(k, str))
    note = "" if views else ("No edge was scored: the clean-corrupted gap is not resolved (see discovery.json), so "
                             "there is no graph to draw.")
    return {"command": "circuitry discover", "title": f"circuitry discover: {prov.get('model_id')}, task {r.get('task')}",
            "header": {k: str(v) for k, v in header.items() if v is not None}, "provenance": _provenance(prov),
            "findings": [], "figures": _links(d, [f for f in files if f.endswith((".png", ".svg"))]),
            "files": _links(d, ["discovery.json"] + [f for f in files if f.endswith((".json", ".graphml", ".gexf",
                                                                                      ".dot", ".mmd"))
                                                     and f != "discovery.json"]),
            "views": views, "note": note, "max_drawn": MAX_DRAWN_PATHS}


def page_data(directory: str | Path) -> dict:
    """The page data of an output folder of ``circuitry analyze`` (it holds ``report.json``) or
    ``circuitry discover`` (``discovery.json``).

    Raises
    ------
    InputError
        The folder holds neither, or a file that is not what circuitry writes.
    """
    d = Path(directory)
    if (d / "report.json").is_file():
        return analyze_data(d)
    if (d / "discovery.json").is_file():
        return discover_data(d)
    raise InputError(f"directory={str(d)!r} holds neither report.json (circuitry analyze) nor discovery.json "
                     "(circuitry discover). Fix: pass the --out folder of one of those commands, or run one with "
                     f"--out {d}")
