"""Exact edge patching: the metric change when one edge at a time is fed from the corrupted run.

For an edge ``u -> v`` on the clean run, the receiver input ``v`` becomes ``resid + a_u(corrupted) -
a_u(clean)`` and everything downstream is recomputed; every other receiver keeps its clean input.
Into a head's query, key or value, the input is first run through the layer on its own rows and the
resulting query/key/value recorded (as step 2 of Wang et al.'s path patching); into an MLP, the
difference is added to the stream the MLP's norm reads (the adapter's ``mlp_in``: the layer's middle
residual stream, or with a parallel residual its input); into the logits, it is added to the final
residual stream. Patches are stacked along the batch
(:func:`circuitry.interventions.batching.run_units`) and each pass starts at its earliest receiver's
layer from the cached clean residual stream, so the layers before a patch are not recomputed. On an
attention-only model an edge's number equals path patching's for the same sender and receiver (a
test checks it); with MLPs path patching also counts paths through the MLPs, edge patching does not.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from circuitry.discovery.edges import EdgeSet
from circuitry.discovery.runs import RunCache, receiver_inputs
from circuitry.interventions.batching import row_mask, rows_per_pass, run_units
from circuitry.metrics import Targets
from circuitry.models import Edit, ModelAdapter


def exact_per_prompt(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor, clean: RunCache, corr: RunCache,
                     metric: Callable, targets: Targets, *, max_rows: int | None = None,
                     progress: bool = True) -> torch.Tensor:
    """``m(clean run with edge e fed from the corrupted run) - m(clean run)`` per edge and prompt: ``[E, n]``."""
    L = model.info.n_layers
    n, p = ids.shape
    max_rows = max_rows or rows_per_pass(model, p)
    delta = corr.acts - clean.acts  # [S, n, p, d]
    # head receivers: the layer's queries/keys/values computed from resid + delta_u, per (sender, layer)
    pairs = sorted({(s, edges.receivers[r].layer) for s, r in edges.edges if edges.receivers[r].kind in "qkv"},
                   key=lambda x: (x[1], x[0]))
    recorded: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for layer in sorted({l for _, l in pairs}):
        group = [s for s, l in pairs if l == layer]
        X = (clean.resid[layer].unsqueeze(0) + delta[group]).reshape(-1, p, delta.shape[-1])
        vals = receiver_inputs(model, ids.repeat(len(group), 1), layer, X, max_rows)
        for j, s in enumerate(group):
            recorded[(s, layer)] = {k: v[j * n:(j + 1) * n] for k, v in vals.items()}

    def first_layer(e: int) -> int:
        return min(edges.receivers[edges.edges[e][1]].layer, L - 1)

    def make_edits(chunk, n_prompts):
        rows = len(chunk) * n_prompts
        sets: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        adds: dict[tuple[str, int], torch.Tensor] = {}

        def add(site, layer, r, value):
            if (site, layer) not in adds:
                adds[(site, layer)] = torch.zeros((rows, p, delta.shape[-1]), dtype=model.dtype, device=model.device)
            adds[(site, layer)][r] += value

        for u, e in enumerate(chunk):
            s, ri = edges.edges[e]
            rec = edges.receivers[ri]
            r = slice(u * n_prompts, (u + 1) * n_prompts)
            if rec.kind == "logits":
                add("resid_post", L - 1, r, delta[s])
            elif rec.kind == "mlp":
                add("mlp_in", rec.layer, r, delta[s])
            else:
                key = (rec.kind, rec.layer)
                if key not in sets:
                    sets[key] = (torch.zeros(model.site_shape(rec.kind, rows, p), dtype=model.dtype,
                                             device=model.device), row_mask(model, rec.kind, rows, p))
                v, m = sets[key]
                v[r, :, rec.index] = recorded[(s, rec.layer)][rec.kind][:, :, rec.index]
                m[r, :, rec.index] = True
        return ([Edit(k, l, v, m) for (k, l), (v, m) in sets.items()]
                + [Edit(k, l, v, op="add") for (k, l), v in adds.items()])

    order = sorted(range(len(edges)), key=first_layer)
    values = run_units(model, ids, order, make_edits, metric, targets, max_rows=max_rows,
                       progress="exact edge patching" if progress else False, first_layer=first_layer,
                       resid_pre={l: clean.resid[l] for l in range(L)})
    out = torch.empty_like(values)
    out[np.array(order)] = values
    return out - metric(clean.logits, targets).float().cpu()[None, :]
