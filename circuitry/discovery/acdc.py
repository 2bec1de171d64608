"""ACDC: automatic circuit discovery by greedy edge pruning (Conmy et al. 2023).

Start from the full model. Visit receivers from the logits backwards (reverse topological order:
logits, then the last layer's MLP, values, keys and queries, head by head from the last, then the
layer before...) and, for each receiver, its incoming edges from the latest sender to the earliest.
Tentatively feed the edge from the corrupted run (:func:`circuitry.discovery.runs.evaluate_circuits`);
if the metric (mean over prompts, KL divergence to the clean run by default) moves by less than
``tau`` (``|m(without the edge) - m(current circuit)| < tau``), the edge stays removed, otherwise it is
restored. The visit order is fixed, so a run is deterministic; it is recorded in the result.

Unlike Conmy et al.'s one-sided rule (remove when the KL rises by less than ``tau``, which also removes
edges whose removal *lowers* the KL), circuitry's rule is two-sided: an edge whose removal moves the
metric a lot in either direction is kept, ``tau = 0`` keeps every edge and a ``tau`` above every
change removes every edge. Failure mode (order dependence): whether an edge is kept depends on which
edges were already removed, so a different visit order or a different prompt sample can give a
different circuit; see ``docs/discovery.md``.

Progress is written atomically to a checkpoint file after every edge; a run killed mid-way and started
again with the same checkpoint resumes where it stopped and gives the identical circuit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from circuitry.discovery.edges import EdgeSet
from circuitry.discovery.runs import RunCache, evaluate_circuits
from circuitry.errors import InputError
from circuitry.io import atomic_write_json
from circuitry.metrics import Targets
from circuitry.models import ModelAdapter


def acdc_order(edges: EdgeSet) -> list[int]:
    """Edge positions in ACDC's visit order (receivers from the logits backwards, senders latest first)."""
    order = []
    for r in reversed(range(len(edges.receivers))):
        col = edges.matrix[:, r]
        order += [int(e) for e in col[::-1] if e >= 0]
    return order


def run_acdc(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor, clean: RunCache, corr: RunCache,
             metric: Callable, targets: Targets, *, tau: float, checkpoint: str | Path | None = None,
             run_id: str = "", max_rows: int | None = None,
             progress: bool = True) -> tuple[np.ndarray, list[int], np.ndarray, float]:
    """The ACDC sweep: ``(keep [E] bool, visit order, delta [E] (metric change when each edge was
    tested), metric of the final circuit)``. ``run_id`` identifies the run in the checkpoint; a
    checkpoint of another run is refused."""
    order = acdc_order(edges)
    keep = np.ones(len(edges), dtype=bool)
    delta = np.full(len(edges), np.nan)

    def value(mask: np.ndarray) -> float:
        return float(evaluate_circuits(model, edges, ids, clean, corr, mask[None], metric, targets,
                                       max_rows=max_rows).mean())

    start, current = 0, None
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        state = json.loads(path.read_text())
        if state.get("run_id") != run_id:
            raise InputError(f"checkpoint {str(path)!r} belongs to another run (its run_id {state.get('run_id')!r} "
                             f"differs from {run_id!r}: model, prompts, metric or tau changed). Fix: delete it or "
                             "pass another checkpoint path")
        start, current = int(state["next"]), float(state["current"])
        keep[:] = state["keep"]
        delta[:] = [np.nan if x is None else x for x in state["delta"]]
    if current is None:
        current = value(keep)
    steps = range(start, len(order))
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"ACDC (tau={tau:g})", initial=start, total=len(order), unit="edge", leave=False)
    for i in steps:
        e = order[i]
        keep[e] = False
        v = value(keep)
        delta[e] = v - current
        if abs(v - current) < tau:
            current = v
        else:
            keep[e] = True
        if path is not None:
            atomic_write_json(path, {"run_id": run_id, "next": i + 1, "current": current, "keep": keep.tolist(),
                                     "delta": [None if np.isnan(x) else float(x) for x in delta]})
    return keep, order, delta, current
