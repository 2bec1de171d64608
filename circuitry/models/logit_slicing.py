"""Computing only the logits a pass is asked for (:class:`~circuitry.models.LogitSlice`), for
:meth:`circuitry.models.ModelAdapter.run`: the last layer's output projection and MLP at the metric's positions
only, and the unembedding of only the requested positions and vocabulary columns (docs/performance.md, items 1
and 8)."""

from __future__ import annotations

import torch

from circuitry.models.edits import LogitSlice
from circuitry.models.families import get_path


def trim_positions(model, logits: bool, logits_at: LogitSlice | None, reads, edits, seq: int):
    """The positions the last layer's output projection and MLP must compute, or ``None`` (compute all).

    When only the logits at ``logits_at.positions`` are read, the last layer's attention output and MLP
    matter only there (its keys and values, computed before, still cover every position). Nothing at the
    last layer may be read or edited after the heads' ``z``, and a sharded model computes everything."""
    if not logits or logits_at is None or model.tensor_parallel or len(logits_at.positions) >= seq:
        return None
    last = model.info.n_layers - 1
    late = {"head_out", "attn_out", "mlp_in", "mlp_out", "resid_post"}
    if any(l == last and s in late for s, l in reads) or any(e.layer == last and e.site in late for e in edits):
        return None
    return logits_at.positions


def scatter(y: torch.Tensor, positions: torch.Tensor, seq: int) -> torch.Tensor:
    """``y`` (``[b, len(positions), d]``) at ``positions`` of a ``[b, seq, d]`` zero tensor."""
    full = y.new_zeros(y.shape[0], seq, *y.shape[2:])
    full[:, positions] = y
    return full


def unembed_columns(model, logits_at: LogitSlice | None):
    """``(W_U rows, bias)`` of the requested columns, when they can be computed alone (a plain,
    unsharded ``nn.Linear`` unembedding); else ``None`` (the module runs on the sliced positions)."""
    if logits_at is None or logits_at.columns is None or model.tensor_parallel:
        return None
    un = get_path(model.module, model.spec.unembed)
    if type(un) is not torch.nn.Linear:
        return None
    cols = logits_at.columns.to(un.weight.device)
    return un.weight[cols], None if un.bias is None else un.bias[cols]


def read_logits(model, root, positions, columns, unembed_cols, out: dict) -> None:
    """Inside a trace: ``out["logits"]``, at ``positions`` and ``columns`` when given (``unembed_cols`` from
    :func:`unembed_columns`: the unembedding module is then skipped), soft-capped as the model's forward does."""
    un = get_path(root, model.spec.unembed)
    cap = model.info.logit_softcap  # applied by the model's forward after the unembedding (Gemma-2)
    if positions is None:
        lg = un.output
    else:
        h = un.input[:, positions]
        if unembed_cols is None:
            un.input = h
            lg = un.output
            lg = lg if columns is None else lg[..., columns]
        else:
            lg = torch.nn.functional.linear(h, *unembed_cols)
            un.skip(lg)
    out["logits"] = lg if cap is None else torch.tanh(lg / cap) * cap
