"""Canonical names of heads and graph nodes.

A head is ``L{layer}H{head}`` (TransformerLens's labels), layer and head counted from 0. Graph nodes
are head labels, ``"embed"``, ``"logits"`` and ``MLP{layer}``.
"""

from __future__ import annotations

import re
from typing import Iterable

from circuitry.errors import InputError

EMBED = "embed"
LOGITS = "logits"
_HEAD_RE = re.compile(r"^L(\d+)H(\d+)$")
_MLP_RE = re.compile(r"^MLP(\d+)$")

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


def node_layer(node: str) -> float:
    """Layer of a graph node for drawing: ``embed`` is -1, ``logits`` is +inf, ``MLPl`` sits after
    layer ``l``'s heads (``l + 0.5``)."""
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
    raise InputError(f"node {node!r} is not a circuitry node: expected 'embed', 'logits', 'L1H3' or 'MLP0'")


def all_heads(n_layers: int, n_heads: int) -> list[str]:
    """Every head label of a model, layer by layer."""
    return [head_label(layer, h) for layer in range(n_layers) for h in range(n_heads)]
