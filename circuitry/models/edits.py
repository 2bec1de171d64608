"""What one forward pass is asked to do: :class:`Edit` s to apply, the :class:`LogitSlice` to compute, and
the :class:`RunResult` it returns; where in a layer each canonical site sits (:data:`STAGES`,
:func:`stage_of`) and how edits apply to an activation (:func:`apply_edits`). The pass itself is
:meth:`circuitry.models.ModelAdapter.run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import torch

from circuitry.models.families import FamilySpec

# Stage order inside one layer: the order in which the model runs the modules that hold the sites.
STAGES = ("layer_in", "ln1", "q", "k", "v", "qkv", "pattern_hook", "o_proj", "attn_mod", "attn_post", "mlp_in", "mlp",
          "layer_out")


@dataclass(frozen=True)
class Edit:
    """Overwrite (``op="set"``) or add to (``op="add"``) a site's activation during one forward pass.

    ``value`` and ``mask`` broadcast against the site's canonical shape (e.g. ``[b, p, h, d_head]``
    for ``z``); entries where ``mask`` is ``False`` keep the model's value. ``mask=None`` edits
    everything. Build masks with :meth:`ModelAdapter.mask`.

    ``rows`` (int64 batch indices) restricts the edit to those batch rows; ``value`` and ``mask`` then
    describe only those rows (``[len(rows), ...]``). Many patches stacked along the batch use it so
    that each layer's edit touches only the rows patched at that layer.
    """

    site: str
    layer: int
    value: torch.Tensor | float
    mask: torch.Tensor | None = None
    op: Literal["set", "add"] = "set"
    rows: torch.Tensor | None = None


@dataclass(frozen=True)
class LogitSlice:
    """Compute only part of the logits: at ``positions`` (1-D, int64) and, when ``columns`` (1-D, int64) is
    given, only those vocabulary entries. :meth:`ModelAdapter.run` then returns logits
    ``[b, len(positions), len(columns) or vocab]``; the unembedding of the other positions and columns is never
    computed (for a large vocabulary it is most of a small model's forward pass)."""

    positions: torch.Tensor
    columns: torch.Tensor | None = None


@dataclass
class RunResult:
    """Output of :meth:`ModelAdapter.run`: ``logits [b, p, vocab]`` and the requested reads,
    keyed by ``(site, layer)`` (values after the edits at that site were applied)."""

    logits: torch.Tensor | None
    acts: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, key: tuple[str, int]) -> torch.Tensor:
        return self.acts[key]


def stage_of(spec: FamilySpec, site: str) -> str:
    if site == "resid_pre":
        return "layer_in"
    if site == "attn_in":
        return "ln1"
    if site in ("q", "k", "v"):
        return site if spec.qkv_layout == "separate" else "qkv"
    if site == "pattern":
        return "pattern_hook" if spec.pattern else "attn_mod"
    if site in ("head_out", "attn_out") and spec.attn_post:
        return "attn_post"  # after the norm on the attention output (Gemma-2)
    if site in ("z", "head_out", "attn_out"):
        return "o_proj"
    if site == "mlp_in":
        return "mlp_in"
    if site == "mlp_out":
        return "mlp"
    return "layer_out"


def apply_edits(act: torch.Tensor, edits: Sequence[Edit]) -> torch.Tensor:
    for e in edits:
        if e.rows is not None:
            rows = e.rows.to(act.device)
            sub = apply_edits(act.index_select(0, rows), [Edit(e.site, e.layer, e.value, e.mask, e.op)])
            act = act.index_copy(0, rows, sub)
            continue
        val = e.value if torch.is_tensor(e.value) else torch.tensor(e.value, dtype=act.dtype, device=act.device)
        val = val.to(dtype=act.dtype, device=act.device)
        if e.op == "set":
            act = val.expand_as(act).clone() if e.mask is None else torch.where(e.mask, val, act)
        else:
            act = act + (val if e.mask is None else torch.where(e.mask, val, torch.zeros((), dtype=act.dtype)))
    return act
