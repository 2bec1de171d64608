"""Edge-level forward passes: sender outputs of a run, and the metric of circuits whose other edges
are fed from the corrupted run.

An edge ``u -> v`` is *patched* when the receiver input ``v`` gets the sender's output from the
corrupted run instead of its output in the current run: ``x_v = resid + sum over patched u of
(a_u(corrupted) - a_u(current))``. Patching every edge gives the corrupted run; patching none, the
clean run (ACDC, Conmy et al. 2023; MIB, Mueller et al. 2025). Every receiver input may differ, so a
layer is run in up to three steps: (1) for each distinct input of a patched query/key/value receiver,
compute only that receiver's query, key or value from it (its layer norm and its head's columns of the
projection, :func:`circuitry.models.head_inputs.head_inputs`; through the adapter on a sharded or remote
model); (2) run the circuit's rows through the layer (nnsight) with those set, recording the head outputs;
(3) with MLPs, add the MLP input's correction to the stream its norm reads (the adapter's ``mlp_in``), so
only the MLP sees it: in the same pass when no edge from that layer's heads into its MLP is patched, else
in a second pass of the layer. With a parallel residual (GPT-NeoX/Pythia) the MLP reads the layer's input,
as its heads do: it has no edges from the same layer's heads (:mod:`.edges`). Layers before the first
patched receiver are not recomputed (the adapter's ``start``), and the last layer computes only the logits
the metric reads.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from circuitry.discovery.edges import EdgeSet
from circuitry.interventions.batching import row_mask, rows_per_pass
from circuitry.metrics import Targets
from circuitry.models import Edit, ModelAdapter


class RunCache:
    """Sender outputs of one run: ``acts [sender, n, p, d]``, ``resid[l]`` the residual stream entering
    layer ``l`` (``resid[n_layers]``: leaving the last layer), and the ``logits``.

    :func:`cache_run` keeps each head's ``z`` (``[n, p, heads, d_head]`` per layer) instead of its output
    ``z_h W_O[h]`` (``[heads, n, p, d_model]``), ``d_model / d_head`` times less memory (32x on a Llama-3 1B;
    docs/scale.md); ``acts`` is computed from them when first read, and kept. :meth:`outputs` computes some
    prompts' sender outputs without keeping them (EAP and EAP-IG read them so, a few prompts at a time)."""

    def __init__(self, acts: torch.Tensor | None = None, resid: list[torch.Tensor] | None = None,
                 logits: torch.Tensor | None = None, *, embed: torch.Tensor | None = None,
                 z: list[torch.Tensor] | None = None, mlp: list[torch.Tensor] | None = None,
                 W_O: list[torch.Tensor] | None = None, n_layers: int | None = None):
        self._acts, self.resid, self.logits = acts, list(resid or []), logits
        self.n_layers = len(z) if z is not None else n_layers
        self._embed, self._z, self._mlp, self._W_O = embed, z, mlp, W_O

    @property
    def acts(self) -> torch.Tensor:
        """``[sender, n, p, d]``: the embedding, then per layer each head's output and the MLP's."""
        if self._acts is None:
            self._acts = self.outputs(slice(None))
        return self._acts

    @property
    def embed(self) -> torch.Tensor:
        """The first sender's output (the embedding), ``[n, p, d]``."""
        return self._embed if self._acts is None else self._acts[0]

    def _layer_width(self) -> range:
        if self.n_layers is None:
            raise ValueError("RunCache.outputs(rows, layer) needs n_layers for a cache built from acts")
        return range(self.n_layers)

    @property
    def computes_outputs(self) -> bool:
        """Whether :meth:`outputs` computes a new tensor (``acts`` not held) rather than returning a view."""
        return self._acts is None

    def outputs(self, rows: slice, layer: int | None = None) -> torch.Tensor:
        """Every sender's output on the prompts ``rows``: ``[sender, rows, p, d]`` (a view of ``acts`` when
        it is held, else computed from the heads' ``z`` as the adapter computes ``head_out``). ``layer``:
        only that layer's senders (its heads, then its MLP; ``-1``: the embedding)."""
        if self._acts is not None:
            if layer is None:
                return self._acts[:, rows]
            per = (self._acts.shape[0] - 1) // len(self._layer_width())
            lo = 0 if layer < 0 else 1 + layer * per
            return self._acts[lo:lo + (1 if layer < 0 else per), rows]
        layers = range(len(self._z)) if layer is None else [] if layer < 0 else [layer]
        parts = [self._embed[rows][None]] if layer is None or layer < 0 else []
        for l in layers:
            z = self._z[l]
            parts.append(torch.einsum("bphe,hed->bphd", z[rows], self._W_O[l].to(z.dtype)).permute(2, 0, 1, 3))
            if self._mlp is not None:
                parts.append(self._mlp[l][rows][None])
        return torch.cat(parts)


def cache_run(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor) -> RunCache:
    """One forward pass recording every sender's output (embedding, each head's ``head_out``, each MLP);
    heads are kept as their ``z`` unless a norm follows the attention output (Gemma-2: a head's output is
    then its share of the normed sum, read as ``head_out``)."""
    L = model.info.n_layers
    lean = not model.spec.attn_post
    reads = [("resid_pre", l) for l in range(L)] + [("z" if lean else "head_out", l) for l in range(L)]
    reads.append(("resid_post", L - 1))
    if edges.has_mlp:
        reads += [("mlp_out", l) for l in range(L)]
    out = model.run(ids, reads=reads)
    resid = [out[("resid_pre", l)].detach() for l in range(L)] + [out[("resid_post", L - 1)].detach()]
    mlp = [out[("mlp_out", l)].detach() for l in range(L)] if edges.has_mlp else None
    if lean:  # W_O as views of the module's weights (HeadWeights would copy every weight)
        from circuitry.models.weights import layer_weights

        W_O = [layer_weights(model.module, model.spec, model.info, l)[3] for l in range(L)]
        return RunCache(None, resid, out.logits.detach(), embed=resid[0], z=[out[("z", l)].detach() for l in range(L)],
                        mlp=mlp, W_O=W_O)
    acts = [out[("resid_pre", 0)]]
    for l in range(L):
        acts += list(out[("head_out", l)].unbind(2))
        if edges.has_mlp:
            acts.append(out[("mlp_out", l)])
    return RunCache(torch.stack(acts).detach(), resid, out.logits.detach(), n_layers=L)


def run_from(model: ModelAdapter, ids: torch.Tensor, layer: int, resid: torch.Tensor, *, reads=(), edits=(),
             logits: bool = True, logits_at=None):
    """Run ``ids`` from ``layer`` with the residual stream ``resid`` entering it (earlier layers skipped);
    ``logits_at``: only that part of the logits (:class:`~circuitry.models.LogitSlice`)."""
    edits = list(edits)
    if layer == 0:
        return model.run(ids, reads=reads, edits=[Edit("resid_pre", 0, resid)] + edits, logits=logits,
                         logits_at=logits_at)
    return model.run(ids, reads=reads, edits=edits, logits=logits, logits_at=logits_at, start=(layer, resid))


def receiver_inputs(model: ModelAdapter, ids: torch.Tensor, layer: int, resid: torch.Tensor,
                    max_rows: int) -> dict[str, torch.Tensor]:
    """Queries, keys and values of ``layer`` computed from the residual streams ``resid [rows, p, d]``
    (``ids`` has the same rows): ``{"q": [rows, p, h, dh], "k": ..., "v": ...}``."""
    parts: dict[str, list[torch.Tensor]] = {"q": [], "k": [], "v": []}
    for i in range(0, resid.shape[0], max_rows):
        out = run_from(model, ids[i:i + max_rows], layer, resid[i:i + max_rows],
                       reads=[(k, layer) for k in "qkv"], logits=False)
        for k in "qkv":
            parts[k].append(out[(k, layer)].detach())
    return {k: torch.cat(v) for k, v in parts.items()}


def evaluate_circuits(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor, clean: RunCache, corr: RunCache,
                      keep: np.ndarray, metric: Callable, targets: Targets, *,
                      max_rows: int | None = None, progress: bool | str = False) -> torch.Tensor:
    """The metric of each circuit (``keep [C, E]`` bool: the edges in the circuit) with every other edge
    fed from the corrupted run: ``[C, n]`` per prompt. ``progress``: a tqdm bar (its text if a string).

    Cost (docs/performance.md, P7): per circuit one pass of each layer from the first patched receiver's,
    a second pass of a layer whose MLP reads a patched edge from that layer's heads, and for each distinct
    receiver input only the receivers' own query/key/value columns (:func:`~circuitry.models.head_inputs.
    head_inputs`); a receiver input sums the patched senders' differences, or subtracts the unpatched ones
    from the sum over every sender when fewer are unpatched. Only the logits the metric reads are computed."""
    keep = np.atleast_2d(np.asarray(keep, dtype=bool))
    n, p = ids.shape
    max_rows = max_rows or rows_per_pass(model, p)
    per = max(1, max_rows // n)
    starts = range(0, keep.shape[0], per)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=progress if isinstance(progress, str) else "circuits", unit="pass", leave=False)
    out = [_evaluate_chunk(model, edges, ids, clean, corr, keep[i:i + per], metric, targets, max_rows)
           for i in starts]
    return torch.cat(out)


class _Shifts:
    """The input shifts of patched receivers in a chunk of circuits: ``sum over patched senders s of
    (a_s(corrupted) - a_s(current))``, from the patched senders or, when fewer are unpatched, as ``total -
    sum over unpatched``. ``total [C, n, p, d]`` is that sum over every sender so far, kept up to date with
    :meth:`advance` as each layer's senders are computed."""

    CHUNK = 32  # senders summed at once (bounds the temporary copy)

    def __init__(self, corr_acts: torch.Tensor, cur: torch.Tensor, first: int):
        self.corr, self.cur, self.upto = corr_acts, cur, first
        # every circuit's senders before the first patched layer are the clean run's: one sum serves all
        self.total = self._sum(0, np.arange(first)).unsqueeze(0).repeat(cur.shape[0], 1, 1, 1)

    def advance(self, senders: np.ndarray) -> None:
        """Add the differences of ``senders`` (the next ones, just computed) to the total."""
        idx = torch.from_numpy(senders)
        self.total += (self.corr[idx].unsqueeze(0) - self.cur[:, idx]).sum(1)
        self.upto = int(senders.max()) + 1

    def _sum(self, c: int, idx: np.ndarray) -> torch.Tensor:
        """``sum over s in idx of (corr[s] - cur[c, s])``, :data:`CHUNK` senders at a time."""
        out = torch.zeros_like(self.corr[0])
        for i in range(0, len(idx), self.CHUNK):
            j = torch.from_numpy(idx[i:i + self.CHUNK])
            out += (self.corr[j] - self.cur[c, j]).sum(0)
        return out

    def __call__(self, c: int, row: np.ndarray) -> torch.Tensor:
        """The shift of circuit ``c``'s receiver whose patched senders are ``row`` (bool over the first
        ``len(row)`` senders; ``len(row) == self.upto`` for the complement to apply)."""
        pat = np.flatnonzero(row)
        if len(row) != self.upto or 2 * len(pat) <= len(row):
            return self._sum(c, pat)
        return self.total[c] - self._sum(c, np.flatnonzero(~row))


def _evaluate_chunk(model, edges, ids, clean, corr, keep, metric, targets, max_rows) -> torch.Tensor:
    from circuitry.interventions.batching import logit_slice

    info = model.info
    L, C, (n, p) = info.n_layers, keep.shape[0], ids.shape
    S, R = len(edges.senders), len(edges.receivers)
    patched = np.zeros((C, S, R), dtype=bool)
    s_idx, r_idx = (np.array(x) for x in zip(*edges.edges))
    patched[:, s_idx, r_idx] = ~keep
    rec_layer = np.array([r.layer for r in edges.receivers])
    busy = patched.any(axis=(0, 1))
    if not busy.any():
        return metric(clean.logits, targets).float().cpu().expand(C, n).clone()
    l0 = int(min(rec_layer[busy].min(), L - 1))
    cur = clean.acts.unsqueeze(0).repeat(C, 1, 1, 1, 1)  # [C, S, n, p, d]
    send_layer = np.array(edges.sender_layer)
    shifts = _Shifts(corr.acts, cur, int((send_layer < l0).sum()))
    resid = clean.resid[l0].repeat(C, 1, 1)
    rows_ids = ids.repeat(C, 1)
    cut, cut_targets = logit_slice(metric, targets.repeat(C))
    logits = None

    def shift_edit(site: str, layer: int, r: int, upto: int) -> list[Edit]:
        """An ``add`` edit of every circuit's shift into receiver ``r`` (patched senders among the first
        ``upto``), or none when no circuit patches it."""
        rows = patched[:, :upto, r]
        if not rows.any():
            return []
        val = torch.zeros((C, n, p, resid.shape[-1]), dtype=resid.dtype, device=resid.device)
        for c in np.flatnonzero(rows.any(1)):
            val[c] = shifts(c, rows[c])
        return [Edit(site, layer, val.view(C * n, p, -1), op="add")]

    for l in range(l0, L):
        heads = [i for i, r in enumerate(edges.receivers) if r.layer == l and r.kind in "qkv"]
        before = int((send_layer < l).sum())
        edits = _head_edits(model, edges, ids, l, heads, patched[:, :before, heads], shifts, resid, C, max_rows)
        last = l == L - 1
        at = dict(logits=last, logits_at=cut) if last else dict(logits=False)
        mlp_edits: list[Edit] = []
        if edges.has_mlp:
            r_mlp = next(i for i, r in enumerate(edges.receivers) if r.layer == l and r.kind == "mlp")
            upto = int((send_layer < l + 0.25).sum())
            # no patched edge from this layer's heads into its MLP: the MLP's shift is known before the pass
            same_layer = bool(patched[:, before:upto, r_mlp].any())
            if not same_layer:
                mlp_edits = shift_edit("mlp_in", l, r_mlp, before)
        res = run_from(model, rows_ids, l, resid, reads=[("head_out", l), ("resid_post", l)]
                       + ([("mlp_out", l)] if edges.has_mlp else []), edits=edits + mlp_edits, **at)
        layer_heads = np.flatnonzero(send_layer == l)
        cur[:, layer_heads] = res[("head_out", l)].view(C, n, p, info.n_heads, -1).permute(0, 3, 1, 2, 4)
        shifts.advance(layer_heads)
        if edges.has_mlp:
            if same_layer:
                mlp_edits = shift_edit("mlp_in", l, r_mlp, upto)
                res = run_from(model, rows_ids, l, resid, reads=[("mlp_out", l), ("resid_post", l)],
                               edits=edits + mlp_edits, **at)
            mlp = np.flatnonzero(send_layer == l + 0.5)
            cur[:, mlp] = res[("mlp_out", l)].view(C, 1, n, p, -1)
            shifts.advance(mlp)
        if last:
            fin = shift_edit("resid_post", l, R - 1, S)
            if fin:
                res = run_from(model, rows_ids, l, resid, edits=edits + mlp_edits + fin, **at)
            logits = res.logits
        else:
            resid = res[("resid_post", l)].detach()
    return metric(logits, cut_targets).detach().float().cpu().view(C, n)


def _head_edits(model, edges, ids, l, heads, Pl, shifts: _Shifts, resid, C, max_rows) -> list[Edit]:
    """Set each patched query/key/value of layer ``l`` to its value computed from its own input
    (``Pl [C, senders before l, R_l]`` bool: the patched edges into the layer's head receivers)."""
    from circuitry.models.head_inputs import head_inputs

    need = Pl.any(1)  # [C, R_l]
    if not need.any():
        return []
    n, p = ids.shape
    # receivers of one circuit with the same patched senders read the same input: compute it once
    groups: dict[tuple[int, bytes], list[int]] = {}
    for c, r in zip(*np.nonzero(need)):
        groups.setdefault((int(c), Pl[c, :, r].tobytes()), []).append(int(r))
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for (c, _), rs in groups.items():
        X = resid.view(C, n, p, -1)[c] + shifts(c, Pl[c, :, rs[0]])
        recs = [(edges.receivers[heads[r]].kind, edges.receivers[heads[r]].index) for r in rs]
        vals = head_inputs(model, l, X, recs)
        if vals is None:  # a sharded or remote model: run the layer through the adapter
            full = receiver_inputs(model, ids, l, X, max_rows)
            vals = [full[kind][:, :, index] for kind, index in recs]
        for (kind, index), val in zip(recs, vals):
            if kind not in out:
                out[kind] = (torch.zeros(model.site_shape(kind, C * n, p), dtype=model.dtype, device=model.device),
                             row_mask(model, kind, C * n, p))
            v, m = out[kind]
            v[c * n:(c + 1) * n, :, index] = val
            m[c * n:(c + 1) * n, :, index] = True
    return [Edit(kind, l, v, m) for kind, (v, m) in out.items()]
