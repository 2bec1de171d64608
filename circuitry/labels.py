"""Canonical names of heads and graph nodes.

A head is ``L{layer}H{head}`` (TransformerLens's labels), layer and head counted from 0. Graph nodes
are head labels, ``"embed"``, ``"logits"`` and ``MLP{layer}``, and on a model with grouped-query
attention the key/value groups ``L{layer}G{group}``.

**Key/value groups.** With grouped-query attention (``n_kv_heads < n_heads``) the query heads of layer
``l`` share ``n_kv_heads`` key/value heads; group ``g`` is key/value head ``g``, read by the
``group_size = n_heads // n_kv_heads`` query heads ``g * group_size .. (g + 1) * group_size - 1``. A
path into a key or value input enters a *group*, not a query head, so it is named after the group:
``L1G0`` (:func:`group_label`), described with its query heads as ``L1G0 = L1H0-L1H3``
(:func:`describe_group`). Query inputs stay per query head (``L1H2``). On a model without grouped-query
attention every group is one head, and key/value receivers keep their head labels (``L1H0``):
:func:`kv_label` picks the right one.
"""

from __future__ import annotations

import re
from typing import Iterable

from circuitry.errors import InputError

EMBED = "embed"
LOGITS = "logits"
_HEAD_RE = re.compile(r"^L(\d+)H(\d+)$")
_MLP_RE = re.compile(r"^MLP(\d+)$")
_GROUP_RE = re.compile(r"^L(\d+)G(\d+)$")

Head = tuple[int, int]


def head_label(layer: int, head: int) -> str:
    """``head_label(1, 3) == "L1H3"``."""
    return f"L{layer}H{head}"


def mlp_label(layer: int) -> str:
    """``mlp_label(0) == "MLP0"``."""
    return f"MLP{layer}"


def parse_head(label: str | Head) -> Head:
    """``parse_head("L1H3") == (1, 3)``; a ``(layer, head)`` tuple passes through."""
    if isinstance(label, tuple) and len(label) == 2:
        return int(label[0]), int(label[1])
    m = _HEAD_RE.match(str(label).strip())
    if not m:
        raise InputError(f"head {label!r} is not a head label: expected 'L{{layer}}H{{head}}', e.g. 'L1H3'")
    return int(m.group(1)), int(m.group(2))


def parse_heads(labels: Iterable[str | Head]) -> list[Head]:
    """Parse many head labels, keeping their order."""
    return [parse_head(x) for x in labels]


def group_label(layer: int, group: int) -> str:
    """The label of key/value group ``group`` of layer ``layer``: ``group_label(1, 0) == "L1G0"``."""
    return f"L{layer}G{group}"


def is_group(label: str) -> bool:
    """Whether ``label`` is a key/value group label (``"L1G0"``)."""
    return isinstance(label, str) and bool(_GROUP_RE.match(label.strip()))


def parse_group(label: str) -> tuple[int, int]:
    """``parse_group("L1G0") == (1, 0)``: the layer and the key/value head index.

    Raises
    ------
    InputError
        ``label`` is not of the form ``L{layer}G{group}``.
    """
    m = _GROUP_RE.match(str(label).strip())
    if not m:
        raise InputError(f"group {label!r} is not a key/value group label: expected 'L{{layer}}G{{group}}', "
                         "e.g. 'L1G0'")
    return int(m.group(1)), int(m.group(2))


def group_heads(label: str, group_size: int) -> list[str]:
    """The query heads of a key/value group: ``group_heads("L1G1", 4) == ["L1H4", "L1H5", "L1H6", "L1H7"]``."""
    layer, g = parse_group(label)
    return [head_label(layer, g * group_size + j) for j in range(group_size)]


def group_of(head: str | Head, group_size: int) -> str:
    """The key/value group a query head reads: ``group_of("L1H6", 4) == "L1G1"``."""
    layer, h = parse_head(head)
    return group_label(layer, h // group_size)


def describe_group(label: str, group_size: int) -> str:
    """A group with its query heads: ``"L1G0 = L1H0-L1H3"`` (one head: ``"L1G0 = L1H0"``)."""
    heads = group_heads(label, group_size)
    return f"{label} = {heads[0]}" + (f"-{heads[-1]}" if len(heads) > 1 else "")


def receiver_text(label: str, group_size: int) -> str:
    """A receiver as tables and findings name it: a key/value group with its query heads
    (``receiver_text("L1G0", 4) == "L1G0 (L1H0-L1H3)"``), any other node as itself."""
    if not is_group(label):
        return label
    return "{} ({})".format(*describe_group(label, group_size).split(" = "))


def kv_label(layer: int, kv_head: int, n_heads: int, n_kv_heads: int) -> str:
    """The receiver label of key/value head ``kv_head``: ``L{layer}G{kv_head}`` with grouped-query attention
    (``n_kv_heads < n_heads``), else the head's own label ``L{layer}H{kv_head}`` (every group is one head).

    Examples
    --------
    >>> kv_label(1, 0, 8, 2), kv_label(1, 0, 8, 8)
    ('L1G0', 'L1H0')
    """
    return group_label(layer, kv_head) if n_kv_heads < n_heads else head_label(layer, kv_head)


def node_layer(node: str) -> float:
    """Layer of a graph node for drawing: ``embed`` is -1, ``logits`` is +inf, ``MLPl`` sits after
    layer ``l``'s heads (``l + 0.5``), a key/value group ``LlGg`` before layer ``l``'s query heads and
    after ``MLP{l-1}`` (``l - 0.4``; it only receives)."""
    if node == EMBED:
        return -1.0
    if node == LOGITS:
        return float("inf")
    m = _HEAD_RE.match(node)
    if m:
        return float(m.group(1))
    m = _MLP_RE.match(node)
    if m:
        return float(m.group(1)) + 0.5
    m = _GROUP_RE.match(node)
    if m:
        return float(m.group(1)) - 0.4
    raise InputError(f"node {node!r} is not a circuitry node: expected 'embed', 'logits', 'L1H3', 'L1G0' "
                     "(a key/value group) or 'MLP0'")


def all_heads(n_layers: int, n_heads: int) -> list[str]:
    """Every head label of a model, layer by layer."""
    return [head_label(layer, h) for layer in range(n_layers) for h in range(n_heads)]
