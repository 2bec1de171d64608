"""The schema of circuitry's composition graph: edge kinds, edge fields and :class:`EdgeMeasurement`.

A measurement is one path from a sender node into one input of a receiver node. Several measurements
may join the same pair of nodes (the Q, K and V inputs of one receiver head); see
:func:`circuitry.graph.build_graph` for how they share one ``networkx.DiGraph`` edge.
"""

from __future__ import annotations

import math
import re
from typing import Literal, Optional, get_args

from pydantic import Field, field_validator, model_validator

from circuitry.provenance import Frozen

Kind = Literal["q", "k", "v", "out"]
"""Where a path enters its receiver.

- ``"q"``: the query input of a later attention head.
- ``"k"``: the key input of a later attention head (with grouped-query attention: of a key/value group
  ``L{l}G{g}``, shared by the group's query heads).
- ``"v"``: the value input of a later attention head (or key/value group, as for ``"k"``).
- ``"out"``: a reader of the whole residual stream: the logits (unembedding) or an MLP.
"""

KINDS: tuple[str, ...] = get_args(Kind)
HEAD_KINDS: tuple[str, ...] = ("q", "k", "v")

FIELDS: tuple[str, ...] = (
    "effect",
    "ci_low",
    "ci_high",
    "pvalue",
    "pvalue_adjusted",
    "composition",
    "composition_raw",
)
"""Numeric fields of a measurement, in the order they appear as edge attributes."""

NodeType = Literal["embed", "head", "kv_group", "mlp", "logits"]
"""Type of a graph node.

- ``"embed"``: the token embedding.
- ``"head"``: an attention head ``L{l}H{h}`` (sends; receives through ``q``, and ``k``/``v`` when the
  model has no grouped-query attention).
- ``"kv_group"``: a key/value group ``L{l}G{g}`` of a grouped-query model (receives through ``k`` and
  ``v`` only; its query heads are the node attribute ``query_heads``).
- ``"mlp"``: an MLP layer.
- ``"logits"``: the logits.
"""

RESERVED_EDGE_ATTRS: frozenset[str] = frozenset(
    {"kind", "kinds", *FIELDS, *(f"{f}_{k}" for f in FIELDS for k in KINDS)}
)
RESERVED_NODE_ATTRS: frozenset[str] = frozenset({"layer", "head", "type", "query_heads"})

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def kind_attr(field: str, kind: str) -> str:
    """Name of the edge attribute holding ``field`` of one kind: ``kind_attr("effect", "k") == "effect_k"``."""
    return f"{field}_{kind}"


def _nan_to_none(v: Optional[float]) -> Optional[float]:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


class EdgeMeasurement(Frozen):
    """One measured path ``source -> target`` entering the target through ``kind``.

    Parameters
    ----------
    source, target : str
        Canonical node ids: ``"embed"``, ``"L0H3"``, ``"MLP0"``, ``"logits"``, and as a ``k``/``v``
        target on a grouped-query model the key/value group ``"L1G0"``.
    kind : {"q", "k", "v", "out"}
        Which input of the target the path enters (see :data:`Kind`). ``q``/``k``/``v`` need a head
        as target (``k``/``v``: the key/value group on a grouped-query model); ``out`` needs ``logits``
        or an MLP.
    effect : float, optional
        Mean effect of the path on the metric (path patching), over prompts.
    ci_low, ci_high : float, optional
        Confidence interval of ``effect`` (filled by the statistics stage).
    pvalue, pvalue_adjusted : float, optional
        Raw and multiple-comparison-adjusted p-values, in ``[0, 1]`` (statistics stage).
    composition : float, optional
        Weight-based composition score of this kind (Elhage et al. 2021), baseline subtracted.
    composition_raw : float, optional
        The same score before subtracting the random-matrix baseline.
    extra : dict of str to float
        Further named numbers (e.g. ``{"n_prompts": 64}``); names are identifiers and must not clash
        with the fields above.

    NaN inputs are stored as ``None`` ("not measured"); the graph turns ``None`` into NaN.
    """

    source: str
    target: str
    kind: Kind
    effect: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    pvalue: Optional[float] = None
    pvalue_adjusted: Optional[float] = None
    composition: Optional[float] = None
    composition_raw: Optional[float] = None
    extra: dict[str, float] = Field(default_factory=dict)

    @field_validator(*FIELDS)
    @classmethod
    def _nan_is_missing(cls, v: Optional[float]) -> Optional[float]:
        return _nan_to_none(v)

    @field_validator("pvalue", "pvalue_adjusted")
    @classmethod
    def _pvalue_range(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError(f"p-value {v!r} is outside [0, 1]")
        return v

    @field_validator("extra")
    @classmethod
    def _extra_names(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            if not _NAME_RE.match(name) or name in RESERVED_EDGE_ATTRS:
                raise ValueError(
                    f"extra key {name!r} is invalid: expected an identifier (letters, digits, '_') that is "
                    f"not a reserved edge attribute ({', '.join(FIELDS)}, kind, kinds or '<field>_<kind>')"
                )
        return {k: float(x) for k, x in v.items()}

    @model_validator(mode="after")
    def _ci_order(self) -> "EdgeMeasurement":
        if self.ci_low is not None and self.ci_high is not None and self.ci_low > self.ci_high:
            raise ValueError(f"ci_low={self.ci_low} is above ci_high={self.ci_high}; swap them")
        return self

    def value(self, field: str) -> float:
        """A field or extra value as a float, NaN when missing."""
        v = self.extra.get(field) if field not in FIELDS else getattr(self, field)
        return math.nan if v is None else float(v)

KIND_COLORS: dict[str, str] = {"q": "#1f77b4", "k": "#d62728", "v": "#2ca02c", "out": "#7f3fbf"}
"""Colour of each kind in drawings, DOT and Mermaid (blue q, red k, green v, purple out)."""
