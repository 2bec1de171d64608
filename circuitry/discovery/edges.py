"""The edge set every discovery method scores: sender output -> receiver input.

Senders are the token embedding (``"embed"``), every attention head (``"L0H3"``) and every MLP
(``"MLP2"``): each writes one vector per position into the residual stream. Receivers are the inputs
that read the residual stream: the query, key and value input of every head, the input of every MLP,
and the logits. An edge ``u -> v`` exists when ``u`` writes before ``v`` reads: the heads of layer
``l`` read what was written before layer ``l``; the MLP of layer ``l`` also reads layer ``l``'s heads
(sequential blocks; with a parallel residual it reads only earlier layers, like the heads); the logits
read everything. Node names are those of the composition graph and of path patching
(:mod:`circuitry.labels`).

With grouped-query attention (``n_kv_heads < n_heads``) the key and value inputs are per key/value
head, shared by its group of query heads, as in path patching: one ``k`` and one ``v`` receiver per
group, named after the group, ``L{l}G{g}`` (:func:`circuitry.labels.group_label`; :attr:`Receiver.index`
is the key/value head). :meth:`EdgeSet.lookup` also takes a query head's key/value edge
(``"L0H3->L1H2<k>"``) and finds its group's. The EAP-IG / MIB names stay per query head, as MIB writes
them: a group's edge is named after its first query head (``a1.h0<k>``) and
:meth:`~circuitry.discovery.results.EdgeScores.to_mib_json` lists it under every query head of the group.

Edge names: circuitry's ``"L0H3->L1H5<k>"`` / ``"embed->logits"`` and the EAP-IG / MIB names
(Hanna et al. 2024; Mueller et al. 2025) ``"a0.h3->a1.h5<k>"``, ``"input->a0.h1<q>"``,
``"m0->logits"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np

from circuitry.errors import InputError
from circuitry.labels import EMBED, LOGITS, group_of, head_label, is_group, kv_label, mlp_label, parse_group, parse_head


@dataclass(frozen=True)
class Receiver:
    """An input that reads the residual stream: ``kind`` ``q``/``k``/``v`` of head (group) ``index`` in
    ``layer``, the input of ``MLP{layer}`` (``kind="mlp"``) or the logits (``kind="logits"``). ``node`` is
    the query head's label for ``q``, the key/value head's for ``k``/``v`` (``L1G0`` with grouped-query
    attention, else ``L1H0``)."""

    node: str
    kind: str
    layer: int
    index: int  # query head for q, key/value head for k and v, -1 otherwise

    @property
    def graph_kind(self) -> str:
        """The composition graph's kind: ``q``/``k``/``v`` or ``out``."""
        return self.kind if self.kind in ("q", "k", "v") else "out"


def _mib_node(node: str, group_size: int = 1) -> str:
    """MIB's name of a node; a key/value group is named after its first query head, as MIB does."""
    if node == EMBED:
        return "input"
    if node == LOGITS:
        return "logits"
    if node.startswith("MLP"):
        return f"m{int(node[3:])}"
    if is_group(node):
        layer, g = parse_group(node)
        return f"a{layer}.h{g * group_size}"
    layer, head = parse_head(node)
    return f"a{layer}.h{head}"


@dataclass(frozen=True, eq=False)
class EdgeSet:
    """Every sender -> receiver edge of one model, in topological order (by receiver, then sender).

    Build it with :func:`edge_set`. ``edges[i] = (sender index, receiver index)``.
    """

    n_layers: int
    n_heads: int
    n_kv_heads: int
    has_mlp: bool
    parallel_residual: bool
    senders: tuple[str, ...]
    sender_layer: tuple[float, ...]
    receivers: tuple[Receiver, ...]
    edges: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.edges)

    @cached_property
    def sender_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.senders)}

    @cached_property
    def triples(self) -> list[tuple[str, str, str]]:
        """``(source, target, kind)`` per edge, kind ``q``/``k``/``v``/``out`` (path patching's triples)."""
        return [(self.senders[s], self.receivers[r].node, self.receivers[r].graph_kind) for s, r in self.edges]

    @cached_property
    def names(self) -> list[str]:
        """circuitry's edge names: ``"L0H3->L1H5<k>"``, ``"embed->MLP0"``, ``"L1H5->logits"``."""
        return [f"{s}->{t}<{k}>" if k != "out" else f"{s}->{t}" for s, t, k in self.triples]

    @cached_property
    def mib_names(self) -> list[str]:
        """EAP-IG / MIB edge names: ``"a0.h3->a1.h5<k>"``, ``"input->m0"``, ``"a1.h5->logits"`` (a key/value
        group ``L1G1`` of size 4: ``a1.h4``, its first query head)."""
        gs = self.n_heads // self.n_kv_heads
        return [f"{_mib_node(s)}->{_mib_node(t, gs)}<{k}>" if k != "out" else f"{_mib_node(s)}->{_mib_node(t)}"
                for s, t, k in self.triples]

    @cached_property
    def index(self) -> dict[str, int]:
        """Edge position by circuitry name."""
        return {n: i for i, n in enumerate(self.names)}

    @cached_property
    def matrix(self) -> np.ndarray:
        """``[sender, receiver]`` int array: the edge index, or -1 where there is no edge."""
        m = np.full((len(self.senders), len(self.receivers)), -1, dtype=np.int64)
        for i, (s, r) in enumerate(self.edges):
            m[s, r] = i
        return m

    @cached_property
    def receiver_layer(self) -> np.ndarray:
        """Layer of each edge's receiver (the logits: ``n_layers``)."""
        return np.array([self.receivers[r].layer for _, r in self.edges])

    def lookup(self, names: Iterable[str | tuple[str, str, str]]) -> list[int]:
        """Edge positions of names (``"L0H3->L1H0<k>"``) or triples (``("L0H3", "L1H0", "k")``).

        With grouped-query attention a key/value edge into a query head (``"L0H3->L1H2<k>"``) is its
        group's edge (``"L0H3->L1G0<k>"``): several query heads of one group give the same position.

        Raises :class:`InputError` for an edge the model does not have."""
        out = []
        gs = self.n_heads // self.n_kv_heads
        for n in names:
            key = n if isinstance(n, str) else (f"{n[0]}->{n[1]}<{n[2]}>" if n[2] != "out" else f"{n[0]}->{n[1]}")
            if key not in self.index and gs > 1 and key.endswith(("<k>", "<v>")):
                src, dst = key[:-3].split("->")
                try:
                    key = f"{src}->{group_of(dst, gs)}{key[-3:]}"
                except InputError:
                    pass
            if key not in self.index:
                raise InputError(f"edge {key!r} is not an edge of this model ({len(self)} edges, e.g. "
                                 f"{self.names[0]!r}); senders write before receivers read, names as in "
                                 "circuitry.labels. Fix: check the layer order and the kind (q, k, v or none)")
            out.append(self.index[key])
        return out

    def mask(self, names: Iterable[str | tuple[str, str, str]]) -> np.ndarray:
        """A boolean edge mask with the named edges set."""
        m = np.zeros(len(self), dtype=bool)
        m[self.lookup(names)] = True
        return m


def edge_set(model) -> EdgeSet:
    """The edge set of a loaded model (a :class:`~circuitry.models.ModelAdapter`).

    Examples
    --------
    >>> from circuitry.models import load_model
    >>> es = edge_set(load_model("zoo:attn-only-2l"))
    >>> len(es), es.names[0], es.mib_names[-1]
    (257, 'embed->L0H0<q>', 'a1.h7->logits')
    """
    i = model.info
    return _build(i.n_layers, i.n_heads, i.n_kv_heads, i.has_mlp, i.parallel_residual)


def _build(L: int, H: int, HK: int, has_mlp: bool, parallel: bool) -> EdgeSet:
    senders: list[str] = [EMBED]
    slayer: list[float] = [-1.0]
    for layer in range(L):
        senders += [head_label(layer, h) for h in range(H)]
        slayer += [float(layer)] * H
        if has_mlp:
            senders.append(mlp_label(layer))
            slayer.append(layer + 0.5)
    receivers: list[Receiver] = []
    for layer in range(L):
        receivers += [Receiver(head_label(layer, h), "q", layer, h) for h in range(H)]
        for kind in ("k", "v"):
            receivers += [Receiver(kv_label(layer, g, H, HK), kind, layer, g) for g in range(HK)]
        if has_mlp:
            receivers.append(Receiver(mlp_label(layer), "mlp", layer, -1))
    receivers.append(Receiver(LOGITS, "logits", L, -1))
    edges = []
    for r, rec in enumerate(receivers):
        if rec.kind == "logits":
            limit = float("inf")
        elif rec.kind == "mlp" and not parallel:
            limit = rec.layer + 0.25  # the layer's own heads, not its MLP
        else:
            limit = rec.layer - 0.25
        edges += [(s, r) for s, sl in enumerate(slayer) if sl < limit]
    return EdgeSet(L, H, HK, has_mlp, parallel, tuple(senders), tuple(slayer), tuple(receivers), tuple(edges))


def reference_mask(edges: EdgeSet, reference: Sequence[str | tuple[str, str, str]]) -> np.ndarray:
    """Boolean labels of a reference circuit over ``edges`` (for :func:`roc_auc`)."""
    return edges.mask(reference)


def induction_reference(prev_token: str, induction: Sequence[str]) -> list[tuple[str, str, str]]:
    """The reference induction circuit of a 2-layer attention-only model (Conmy et al. 2023; Shi et al.
    2024): the previous-token head into the K input of each induction head, the embedding into their Q
    and V inputs, the induction heads into the logits, and the direct embedding -> logits path.

    Examples
    --------
    >>> len(induction_reference("L0H3", ["L1H0", "L1H2", "L1H5", "L1H7"]))
    17
    """
    ref = [(EMBED, LOGITS, "out")]
    for h in induction:
        ref += [(prev_token, h, "k"), (EMBED, h, "q"), (EMBED, h, "v"), (h, LOGITS, "out")]
    return ref
