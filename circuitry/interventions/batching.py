"""Many interventions in one forward pass: units stacked along the batch, chunked to a row budget.

A *unit* is one intervention applied to all ``n`` prompts (e.g. "patch head L1H3 at position 5").
``U`` units on ``n`` prompts become ``U * n`` batch rows; rows ``u*n .. (u+1)*n - 1`` belong to unit
``u``. The results are identical to running the units one at a time (tests check this to 1e-5).
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import torch

from circuitry.metrics import METRICS, Targets, logit_diff
from circuitry.models import Edit, ModelAdapter
from circuitry.models.edits import LogitSlice

U = TypeVar("U")


CPU_MAX_ROWS = 128
#: on the CPU, a pass's widest activation (the MLP's hidden layer) stays under this many bytes: the
#: linear layers then run in cache (measured in docs/performance.md, "smaller passes")
CPU_PASS_BYTES = 8 * 2**20


def rows_per_pass(model: ModelAdapter, seq_len: int, *, memory_mb: float = 512.0,
                  logits: LogitSlice | None = None) -> int:
    """How many batch rows fit a memory budget: a rough bound from the widest activations of a row,
    plus the logits a row computes (all ``seq_len x d_vocab`` of them, or only ``logits``' part).

    On the CPU the bound is also capped at ``CPU_MAX_ROWS`` and at the rows whose widest activation
    (``seq_len x max(d_mlp, 4 d_model)`` floats) fits ``CPU_PASS_BYTES``: a CPU does the same work per row
    whatever the batch, and larger batches fall out of cache (a 4-layer GPT-2 with d 768 patches 14-20%
    faster at 16-32 rows than at 128; a 6 x 8, d 256 GPT-2's ablations 14% faster at 32). Stacking pays
    off on a GPU."""
    i = model.info
    if logits is None:
        n_logits = seq_len * i.n_outputs
    else:
        n_logits = len(logits.positions) * (i.n_outputs if logits.columns is None else len(logits.columns))
    per_row = (seq_len * (4 * i.d_model + i.n_heads * seq_len + max(i.d_mlp, 1)) + n_logits) * 4 * 3
    rows = max(1, int(memory_mb * 2**20 // per_row))
    if model.device.type != "cpu":
        return rows
    in_cache = max(1, CPU_PASS_BYTES // (seq_len * max(i.d_mlp, 4 * i.d_model) * 4))
    return min(rows, CPU_MAX_ROWS, in_cache)


def logit_slice(metric: Callable, targets: Targets) -> tuple[LogitSlice | None, Targets]:
    """The part of the logits a built-in metric reads, and the targets re-indexed into that part.

    Every built-in metric reads the logits only at the targets' positions; ``logit_diff`` reads only the
    answer and foil columns there. Returns ``(slice, targets)`` such that ``metric(sliced_logits,
    new_targets)`` equals ``metric(logits, targets)`` (up to float rounding of a smaller matmul); a user
    metric may read anything, so it gets ``(None, targets)``: the full logits."""
    if not any(metric is m for m in METRICS.values()):
        return None, targets
    pos = torch.unique(targets.positions)
    new = Targets(torch.searchsorted(pos, targets.positions.contiguous()), targets.answers, targets.foils,
                  targets.clean_logprobs)
    if metric is not logit_diff or bool((targets.answers < 0).any()) or bool((targets.foils < 0).any()):
        return LogitSlice(pos), new  # missing targets: the metric raises its own error
    cols = torch.unique(torch.cat([targets.answers.reshape(-1), targets.foils.reshape(-1)]))
    return LogitSlice(pos, cols), Targets(new.positions, torch.searchsorted(cols, targets.answers.contiguous()),
                                          torch.searchsorted(cols, targets.foils.contiguous()), None)


def run_units(model: ModelAdapter, ids: torch.Tensor, units: Sequence[U],
              make_edits: Callable[[Sequence[U], int], list[Edit]],
              metric: Callable[[torch.Tensor, Targets], torch.Tensor], targets: Targets, *,
              max_rows: int | None = None, progress: bool | str = False,
              first_layer: Callable[[U], int] | None = None,
              resid_pre: dict[int, torch.Tensor] | None = None,
              stream: Callable[[U], torch.Tensor] | None = None) -> torch.Tensor:
    """Run every unit on all prompts and return the metric per unit and prompt, ``[U, n]``.

    ``make_edits(chunk, n)`` returns the edits for a batch of ``len(chunk) * n`` rows laid out as
    above. ``max_rows`` bounds the rows of one forward pass (default: :func:`rows_per_pass`).

    With ``first_layer(unit)`` (the earliest layer a unit touches) and ``resid_pre`` (the unpatched
    run's residual stream entering each layer, ``[n, p, d]``), a pass starts at its chunk's earliest
    layer from the cached residual stream instead of recomputing the layers before it. Units should
    come sorted by layer so that chunks skip as much as possible. ``stream(unit)`` instead gives each
    unit its own residual stream entering ``first_layer(unit)`` (``[n, p, d]``); every unit must then
    start at the same layer.

    Only the logits the metric reads are computed (:func:`logit_slice`).
    """
    n = ids.shape[0]
    cut, targets = logit_slice(metric, targets)
    max_rows = max_rows or rows_per_pass(model, ids.shape[1], logits=cut)
    per_chunk = max(1, max_rows // n)
    out = torch.empty(len(units), n)
    starts = range(0, len(units), per_chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=progress if isinstance(progress, str) else "patching", unit="pass", leave=False)
    for s in starts:
        chunk = units[s:s + per_chunk]
        k = len(chunk)
        batch = ids.repeat(k, 1)
        start = None
        if first_layer is not None and stream is not None:
            l0 = first_layer(chunk[0])
            if l0 > 0:
                start = (l0, torch.cat([stream(u) for u in chunk]))
        elif first_layer is not None and resid_pre is not None:
            l0 = min(first_layer(u) for u in chunk)
            if l0 > 0:
                start = (l0, resid_pre[l0].repeat(k, 1, 1))
        logits = model.run(batch, edits=make_edits(chunk, n), start=start, logits_at=cut).logits
        out[s:s + k] = metric(logits, targets.repeat(k)).detach().float().cpu().view(k, n)
    return out


def row_mask(model: ModelAdapter, site: str, rows: int, seq: int) -> torch.Tensor:
    """An all-False mask over ``site`` of a ``rows``-row batch, shaped to broadcast against it:
    ``[rows, seq, heads, 1]`` for head sites, ``[rows, heads, seq, 1]`` for ``pattern``,
    ``[rows, seq, 1]`` otherwise."""
    shape = model.site_shape(site, rows, seq)
    return torch.zeros(*shape[:-1], 1, dtype=torch.bool, device=model.device)
