"""Single heads' queries, keys and values computed from a residual stream, without a pass through the model.

A receiver of an edge (:mod:`circuitry.discovery.runs`) reads its own residual stream: its query is
``ln1(x) @ W_Q[h] + b_Q[h]`` (keys and values per key/value head; the zoo's shortformer models add the
positional embedding to the query and key inputs after ``ln1``). A pass through the model computes every
head's query, key and value from ``x`` (``3 d_model^2`` per token) where one receiver needs
``d_model d_head`` of it (1/36 on GPT-2 small); :func:`head_inputs` computes only the receivers asked for,
from the layer's own norm module and views of its projection weights (the site values the adapter reads,
``q``/``k``/``v`` before rotary, :mod:`circuitry.models.families`), equal to the adapter's to float
rounding (tested for every family). A tensor-parallel or remote model returns ``None``: its weights are
not all here, and the caller runs the layer through the adapter instead.
"""

from __future__ import annotations

from typing import Sequence

import torch

from circuitry.models.families import get_path
from circuitry.models.weights import qkv_weights


@torch.no_grad()
def head_inputs(model, layer: int, x: torch.Tensor, receivers: Sequence[tuple[str, int]]) -> torch.Tensor | None:
    """``[len(receivers), rows, p, d_head]``: for each ``(kind, index)`` (``kind`` in ``"qkv"``; ``index`` a
    query head for ``"q"``, a key/value head for ``"k"`` and ``"v"``) its value computed from the residual
    stream ``x [rows, p, d_model]`` entering ``layer``; ``None`` for a tensor-parallel or remote model."""
    if model.tensor_parallel or model.remote:
        return None
    spec, info = model.spec, model.info
    lay = get_path(model.module, spec.layers)[layer]
    normed = get_path(lay, spec.ln1)(x.to(device=model.device, dtype=model.dtype))
    rows, p, d = normed.shape
    ws, bs = qkv_weights(lay, spec, info)
    out = normed.new_empty(len(receivers), rows, p, info.d_head)
    for i, kind in enumerate("qkv"):
        which = [j for j, (k, _) in enumerate(receivers) if k == kind]
        if not which:
            continue
        idx = [receivers[j][1] for j in which]
        inp = normed
        if kind in "qk" and info.positional == "shortformer":
            inp = normed + get_path(model.module, spec.pos_embed).weight[:p].to(normed.dtype)
        W = ws[i][idx].to(normed.dtype)  # [r, d, dh]
        y = inp.reshape(-1, d) @ W.permute(1, 0, 2).reshape(d, -1)  # [rows * p, r * dh]
        y = y.view(rows, p, len(idx), -1) + bs[i][idx].to(normed.dtype)
        out[which] = y.permute(2, 0, 1, 3)
    return out
