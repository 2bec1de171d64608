"""MIB's circuit evaluator, and its graph JSON read into circuitry (Mueller et al. 2025; the EAP-IG package's
``Graph``).

What MIB's ``evaluate_area_under_curve`` does, and circuitry with ``evaluator="mib"``:

- **sizes**: ``int(p * E)`` edges at each fraction ``p`` of MIB's grid (0.001 ... 1), rounded *down*, so a
  size can be 0 (circuitry's own evaluator rounds to the nearest and keeps at least one edge);
- **top-k**: by *signed* importance unless ``absolute`` (MIB's ``--absolute`` flag, off by default, and the
  paper's setting: issue #19 of hannamw/MIB-circuit-track). MIB's scores are signed so that positive helps
  the task (its attribution metric is a loss); :attr:`EdgeScores.importance` is that number;
- **pruning** (:func:`prune_to_paths`, ``Graph.prune``): repeatedly drop nodes without an incoming edge in
  the circuit (the input excepted) or without an outgoing one, and the edges of dropped nodes, until
  nothing changes: what is left is exactly the edges on a path from the input to the logits;
- **f, CPR, CMD**: ``f = (m(C) - m(empty)) / (m(model) - m(empty))`` with means over prompts, CPR the
  trapezoid area under ``f`` over the fractions, CMD the area under ``|1 - f|``.

Where circuitry can still differ from MIB: ties in the top-k (circuitry: edge order; MIB: ``torch.argsort``,
unspecified); MIB's graph always has MLP nodes, so on an attention-only model its ``E`` counts edges from and
into MLPs that circuitry's edge set does not have (the sizes differ); with grouped-query attention MIB scores a
key/value edge per query head and circuitry per key/value group (:func:`read_mib_json` averages a group's
scores; pruning keeps a group's input while any of its query heads is alive); MIB evaluates its own prompt
split and tokenization. ``docs/discovery.md`` lists them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from circuitry.discovery.edges import EdgeSet
from circuitry.errors import InputError, bad_value

Evaluator = Literal["circuitry", "mib"]
"""``"circuitry"``: sizes ``round(p E)`` (at least 1), top-k by ``|score|``, no pruning. ``"mib"``: MIB's
sizes ``int(p E)``, top-k by signed importance, edges off every input-to-logits path pruned."""
TopK = Literal["signed", "absolute"]
"""``"signed"``: the largest :attr:`~EdgeScores.importance` first (MIB's default). ``"absolute"``: the
largest ``|score|`` first (circuitry's default)."""


def default_top_k(evaluator: str) -> str:
    """The top-k order an evaluator uses when none is asked for: MIB's ``"signed"``, circuitry's ``"absolute"``."""
    return "signed" if evaluator == "mib" else "absolute"


def check_evaluator(evaluator: str, top_k: str | None) -> tuple[str, str]:
    """``(evaluator, top_k)`` checked, ``top_k`` defaulted by :func:`default_top_k`."""
    if evaluator not in ("circuitry", "mib"):
        raise bad_value("evaluator", evaluator, "'circuitry' or 'mib'", "e.g. evaluator='mib'")
    top_k = top_k or default_top_k(evaluator)
    if top_k not in ("signed", "absolute"):
        raise bad_value("top_k", top_k, "'signed' or 'absolute'", "e.g. top_k='signed' (MIB's default)")
    return evaluator, top_k


def mib_sizes(total: int, percents: Sequence[float]) -> list[int]:
    """MIB's circuit sizes: ``int(p / 100 * total)`` (rounded down, possibly 0).

    >>> mib_sizes(257, [0.1, 0.2, 0.5, 1, 2, 100])
    [0, 0, 1, 2, 5, 257]
    """
    return [int(float(p) / 100 * total) for p in percents]


def prune_to_paths(edges: EdgeSet, keep: np.ndarray) -> np.ndarray:
    """The edges of the circuits ``keep [..., E]`` that lie on a path from the input (``embed``) to the
    logits, as MIB's ``Graph.prune`` leaves them (the fixed point of dropping nodes without incoming or
    without outgoing circuit edges). A receiver ``q``/``k``/``v``/MLP input belongs to its head or MLP node;
    a key/value group's input lives while any query head of the group does."""
    keep = np.asarray(keep, dtype=bool)
    flat = keep.reshape(-1, keep.shape[-1]).copy()
    s_idx = np.array([s for s, _ in edges.edges])
    r_idx = np.array([r for _, r in edges.edges])
    S = len(edges.senders)
    # receiver -> the sender nodes that own it (heads of a group; the MLP; none for the logits)
    owners = np.zeros((len(edges.receivers), S), dtype=bool)
    gs = edges.n_heads // edges.n_kv_heads
    for r, rec in enumerate(edges.receivers):
        if rec.kind == "logits":
            continue
        if rec.kind == "mlp":
            owners[r, edges.sender_index[rec.node]] = True
        else:
            heads = [rec.index] if rec.kind == "q" else range(rec.index * gs, (rec.index + 1) * gs)
            for h in heads:
                owners[r, edges.sender_index[f"L{rec.layer}H{h}"]] = True
    is_logits = np.array([rec.kind == "logits" for rec in edges.receivers])
    for c in range(flat.shape[0]):
        k = flat[c]
        while True:
            out_any = np.zeros(S, dtype=bool)
            out_any[s_idx[k]] = True
            rec_in = np.zeros(len(edges.receivers), dtype=bool)
            rec_in[r_idx[k]] = True
            in_any = (owners & rec_in[:, None]).any(0)
            in_any[0] = True  # the input
            alive = out_any & in_any
            rec_alive = is_logits | (owners & alive[None, :]).any(1)
            new = k & alive[s_idx] & rec_alive[r_idx]
            if (new == k).all():
                break
            k = new
        flat[c] = k
    return flat.reshape(keep.shape)


def mib_aliases(edges: EdgeSet) -> dict[str, int]:
    """Every MIB edge name of the model -> circuitry's edge position (with grouped-query attention a key/value
    edge has one MIB name per query head of its group)."""
    out = {n: i for i, n in enumerate(edges.mib_names)}
    gs = edges.n_heads // edges.n_kv_heads
    if gs > 1:
        for i, name in enumerate(edges.mib_names):
            if name.endswith(("<k>", "<v>")):
                src, dst = name[:-3].split("->")
                layer, head = dst[1:].split(".h")
                for j in range(1, gs):
                    out[f"{src}->a{layer}.h{int(head) + j}{name[-3:]}"] = i
    return out


def _load(source) -> tuple[dict, str]:
    if isinstance(source, dict):
        return source, "<dict>"
    path = Path(source)
    if not path.is_file():
        raise bad_value("source", str(source), "an existing MIB / EAP-IG graph JSON file", "check the path")
    try:
        return json.loads(path.read_text()), str(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{str(path)!r} is not JSON ({exc}). Fix: pass the graph JSON that EAP-IG's "
                         "Graph.to_json or circuitry discover (scores_mib.json) writes") from None


def is_mib_json(obj) -> bool:
    """Whether a parsed JSON object looks like an MIB / EAP-IG graph (``edges`` a name -> object map)."""
    return isinstance(obj, dict) and isinstance(obj.get("edges"), dict)


def read_mib_json(source, model_or_edges):
    """An MIB / EAP-IG graph JSON as :class:`~circuitry.discovery.results.EdgeScores` over the model's edges,
    so any external circuit can be evaluated with circuitry's statistics (``faithfulness_curves``).

    ``score`` is the file's score (MIB's sign: positive helps the task, so ``importance == score``),
    ``in_circuit`` its ``in_graph``; ``method`` is ``"external"``. Edges of the model the file does not list
    get ``score`` NaN (ranked last) and are not in the circuit (``params["missing_edges"]``); edges into or
    from MLP nodes of a model without MLPs (MIB's graph always has them) are ignored when none is in the
    graph. With grouped-query attention a key/value group's score is the mean over its query heads.

    Raises
    ------
    InputError
        Not a graph JSON, a ``cfg`` of another shape, or an edge the model does not have: before any work.

    Examples
    --------
    >>> from circuitry.discovery.edges import _build
    >>> es = _build(1, 2, 2, False, False)
    >>> s = read_mib_json({"edges": {"input->logits": {"score": 1.5, "in_graph": True}}}, es)
    >>> s.score[s.edges.index("embed->logits")], sum(s.in_circuit), s.params["missing_edges"]
    (1.5, 1, 8)
    """
    from circuitry.discovery.edges import edge_set
    from circuitry.discovery.results import EdgeScores
    from circuitry.provenance import make_provenance

    es = model_or_edges if isinstance(model_or_edges, EdgeSet) else edge_set(model_or_edges)
    model = None if isinstance(model_or_edges, EdgeSet) else model_or_edges
    data, where = _load(source)
    if not is_mib_json(data):
        raise InputError(f"{where}: not an MIB / EAP-IG graph JSON (no 'edges' object mapping edge names to "
                         "{'score', 'in_graph'}). Fix: pass the file EAP-IG's Graph.to_json or circuitry discover "
                         "(scores_mib.json) writes")
    cfg = data.get("cfg") or {}
    for key, have in (("n_layers", es.n_layers), ("n_heads", es.n_heads)):
        if key in cfg and int(cfg[key]) != have:
            raise InputError(f"{where}: the graph's cfg has {key}={cfg[key]}, this model {have} "
                             f"({es.n_layers} layers x {es.n_heads} heads): the graph was made for another model. "
                             "Fix: evaluate it with the model it was made for")
    alias = mib_aliases(es)
    total = np.zeros(len(es))
    count = np.zeros(len(es))
    kept = np.zeros(len(es), dtype=bool)
    ignored = 0
    for name, e in data["edges"].items():
        if not isinstance(e, dict):
            raise InputError(f"{where}: edge {name!r} maps to {e!r}, not an object with 'score' and 'in_graph'")
        i = alias.get(name)
        if i is None:
            ends = name.split("<")[0].split("->")
            if not es.has_mlp and any(x.startswith("m") and x[1:].isdigit() for x in ends) and not e.get("in_graph"):
                ignored += 1
                continue
            raise InputError(f"{where}: edge {name!r} is not an edge of this model ({es.n_layers} layers x "
                             f"{es.n_heads} heads{', MLPs' if es.has_mlp else ', no MLPs'}; e.g. {es.mib_names[0]!r})"
                             ": the graph was made for another model. Fix: evaluate it with the model it was made "
                             "for, or drop the edges this model does not have")
        sc = e.get("score")
        sc = float("nan") if sc is None else float(sc)
        if not math.isnan(sc):
            total[i] += sc
            count[i] += 1
        kept[i] |= bool(e.get("in_graph", False))
    with np.errstate(invalid="ignore"):
        score = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    listed = np.zeros(len(es), dtype=bool)
    for name in data["edges"]:
        if name in alias:
            listed[alias[name]] = True
    missing = int((~listed).sum())
    return EdgeScores(
        method="external", metric=str(cfg.get("metric", "")), edges=list(es.names), mib_edges=list(es.mib_names),
        score=[float(x) for x in score], in_circuit=[bool(x) for x in kept], clean=[], corrupted=[],
        params={"source": where, "missing_edges": missing, "ignored_edges": ignored},
        shape={"n_layers": es.n_layers, "n_heads": es.n_heads, "n_kv_heads": es.n_kv_heads,
               "has_mlp": int(es.has_mlp), "parallel_residual": int(es.parallel_residual),
               "d_model": int(cfg.get("d_model", 0) or 0)},
        provenance=make_provenance(model, source=where, method="external"),
    )
