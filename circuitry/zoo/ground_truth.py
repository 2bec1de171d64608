"""Ground-truth circuits of the tracr models, in circuitry's edge names.

A model compiled by tracr (Lindner et al. 2023) writes every RASP variable into its own named
subspace of the residual stream (``"tokens:x"``, ``"indices:3"``, ``"one"``, ``"frac_prevs_7"``, ...),
and every component reads and writes named subspaces only. The build (:mod:`circuitry.zoo.tracr_build`)
records them per component::

    {"embed": {"layer": -1, "writes": [...]},
     "L0H0": {"layer": 0, "q": [...], "k": [...], "v": [...], "writes": [...]},
     "MLP0": {"layer": 0, "reads": [...], "writes": [...]},
     "logits": {"reads": [...]}}

Two edge lists follow from them (:func:`reading_edges`, :func:`live_edges`):

* **reads**: ``u -> v`` when receiver ``v`` reads a subspace that sender ``u`` writes (and ``u`` runs
  before ``v``). This is the circuit as compiled: every edge of it carries information tracr put there.
  It includes the edges that carry only input-independent directions (``one``, the BOS token) and,
  for a fixed input length, the positions and everything computed from them (e.g. ``length``).
* **counterfactual**: the edges of *reads* that can change a counterfactual patch between two inputs
  of the same length: the sender's write into the receiver's subspace differs between some two inputs
  of the task's input set, and the receiver itself reaches the logits through such edges. Edge
  patching with a corrupted input of the same length (circuitry's default) gives every other edge an
  effect of exactly 0, so this is the list a patching method can recover; a zero- or mean-ablation
  method is judged against *reads*.

Only the standard library is used: the build runs in tracr's environment (jax, no torch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

EMBED, LOGITS = "embed", "logits"


def _layer_of_sender(node: str, comp: Mapping) -> float:
    """Order of a sender: embed -1, heads of layer ``l`` at ``l``, the MLP of layer ``l`` at ``l + 0.5``."""
    if node == EMBED:
        return -1.0
    return comp["layer"] + (0.5 if node.startswith("MLP") else 0.0)


def receivers(components: Mapping[str, Mapping]) -> list[tuple[str, str, float, list[str]]]:
    """Every receiver ``(node, kind, layer, subspaces read)``: ``q``/``k``/``v`` of each head, ``mlp`` of
    each MLP, and the logits (layer ``inf``)."""
    out = []
    for node, comp in components.items():
        if node.startswith("L"):
            out += [(node, kind, float(comp["layer"]), list(comp[kind])) for kind in ("q", "k", "v")]
        elif node.startswith("MLP"):
            out.append((node, "mlp", float(comp["layer"]), list(comp["reads"])))
        elif node == LOGITS:
            out.append((node, "logits", float("inf"), list(comp["reads"])))
    return out


def edge_name(sender: str, receiver: str, kind: str) -> str:
    """circuitry's edge name (:attr:`circuitry.discovery.edges.EdgeSet.names`): ``"L0H0->L1H0<k>"``,
    ``"embed->MLP0"``, ``"MLP2->logits"``."""
    return f"{sender}->{receiver}<{kind}>" if kind in ("q", "k", "v") else f"{sender}->{receiver}"


def _runs_before(sender_order: float, kind: str, receiver_layer: float) -> bool:
    """A head of layer ``l`` reads what was written before layer ``l``; the MLP of layer ``l`` also reads
    that layer's heads; the logits read everything (as :func:`circuitry.discovery.edges.edge_set`)."""
    if kind == "logits":
        return True
    if kind == "mlp":
        return sender_order < receiver_layer + 0.25
    return sender_order < receiver_layer - 0.25


def edge_subspaces(components: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """Every edge of *reads* with the subspaces it carries (written by the sender, read by the receiver),
    in topological order (by receiver, then sender)."""
    senders = [(n, c) for n, c in components.items() if n != LOGITS and c.get("writes")]
    senders.sort(key=lambda nc: _layer_of_sender(*nc))
    recs = sorted(receivers(components), key=lambda r: (r[2], r[0], "qkvml".index(r[1][0])))
    out: dict[str, list[str]] = {}
    for rnode, kind, rlayer, reads in recs:
        for snode, comp in senders:
            if not _runs_before(_layer_of_sender(snode, comp), kind, rlayer):
                continue
            shared = sorted(set(comp["writes"]) & set(reads))
            if shared:
                out[edge_name(snode, rnode, kind)] = shared
    return out


def reading_edges(components: Mapping[str, Mapping]) -> list[str]:
    """The *reads* ground truth: ``u -> v`` whenever ``v`` reads a subspace ``u`` writes."""
    return list(edge_subspaces(components))


def split_edge(name: str) -> tuple[str, str]:
    """``"L0H0->L1H0<k>"`` -> ``("L0H0", "L1H0")``."""
    src, dst = name.split("->")
    return src, dst.split("<")[0]


def live_edges(edges: Sequence[str], varying: Iterable[str]) -> list[str]:
    """The *counterfactual* ground truth: the ``varying`` edges (of ``edges``) whose receiver reaches the
    logits through varying edges. Order follows ``edges``."""
    vary = set(varying)
    live = {LOGITS}
    changed = True
    while changed:
        changed = False
        for e in edges:
            src, dst = split_edge(e)
            if e in vary and dst in live and src not in live:
                live.add(src)
                changed = True
    return [e for e in edges if e in vary and split_edge(e)[1] in live]
