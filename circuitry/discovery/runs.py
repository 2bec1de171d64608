"""Edge-level forward passes: sender outputs of a run, and the metric of circuits whose other edges
are fed from the corrupted run.

An edge ``u -> v`` is *patched* when the receiver input ``v`` gets the sender's output from the
corrupted run instead of its output in the current run: ``x_v = resid + sum over patched u of
(a_u(corrupted) - a_u(current))``. Patching every edge gives the corrupted run; patching none, the
clean run (ACDC, Conmy et al. 2023; MIB, Mueller et al. 2025). Every receiver input may differ, so a
layer is run in three steps through the adapter (nnsight): (1) for each receiver with patched edges,
run the layer on its own residual stream (one batch row group per receiver) and record its query,
key or value; (2) run the circuit's rows from that layer with those inputs set, recording the head
outputs; (3) with MLPs, run again adding the MLP input's correction to the stream its norm reads (the
adapter's ``mlp_in``), so only the MLP sees it. With a parallel residual (GPT-NeoX/Pythia) the MLP reads
the layer's input, as its heads do: it has no edges from the same layer's heads (:mod:`.edges`), and the
same step patches it. Layers before the first patched receiver are not recomputed (the adapter's ``start``).
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
    return RunCache(torch.stack(acts).detach(), resid, out.logits.detach())


def run_from(model: ModelAdapter, ids: torch.Tensor, layer: int, resid: torch.Tensor, *, reads=(), edits=(),
             logits: bool = True):
    """Run ``ids`` from ``layer`` with the residual stream ``resid`` entering it (earlier layers skipped)."""
    edits = list(edits)
    if layer == 0:
        return model.run(ids, reads=reads, edits=[Edit("resid_pre", 0, resid)] + edits, logits=logits)
    return model.run(ids, reads=reads, edits=edits, logits=logits, start=(layer, resid))


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
                      max_rows: int | None = None, progress: bool | str = False,
                      memo: dict | None = None) -> torch.Tensor:
    """The metric of each circuit (``keep [C, E]`` bool: the edges in the circuit) with every other edge
    fed from the corrupted run: ``[C, n]`` per prompt. ``progress``: a tqdm bar (its text if a string).

    ``memo``: a dict kept by the caller across calls with the same runs. In the first layer with a patched
    receiver every earlier activation is the clean one, so a receiver's query/key/value there depends only
    on its set of patched senders; they are remembered under that set (ACDC re-tests one receiver at a
    time, so the others come from the memo)."""
    keep = np.atleast_2d(np.asarray(keep, dtype=bool))
    n, p = ids.shape
    max_rows = max_rows or rows_per_pass(model, p)
    per = max(1, max_rows // n)
    starts = range(0, keep.shape[0], per)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=progress if isinstance(progress, str) else "circuits", unit="pass", leave=False)
    out = [_evaluate_chunk(model, edges, ids, clean, corr, keep[i:i + per], metric, targets, max_rows, memo)
           for i in starts]
    return torch.cat(out)


def _evaluate_chunk(model, edges, ids, clean, corr, keep, metric, targets, max_rows, memo) -> torch.Tensor:
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
    P = torch.from_numpy(patched).to(model.device, clean.acts.dtype)
    cur = clean.acts.unsqueeze(0).repeat(C, 1, 1, 1, 1)  # [C, S, n, p, d]
    resid = clean.resid[l0].repeat(C, 1, 1)  # [C*n, p, d]
    rows_ids = ids.repeat(C, 1)
    send_layer = np.array(edges.sender_layer)
    logits = None
    for l in range(l0, L):
        heads = [i for i, r in enumerate(edges.receivers) if r.layer == l and r.kind in "qkv"]
        before = int((send_layer < l).sum())
        diff = corr.acts[:before].unsqueeze(0) - cur[:, :before]  # [C, s, n, p, d]
        edits = _head_edits(model, edges, ids, l, heads, P[:, :before, heads], diff, resid, C, max_rows,
                            memo if l == l0 else None)
        reads = [("head_out", l), ("resid_post", l)]
        last = l == L - 1
        res = run_from(model, rows_ids, l, resid, reads=reads, edits=edits, logits=last)
        cur[:, send_layer == l] = res[("head_out", l)].view(C, n, p, info.n_heads, -1).permute(0, 3, 1, 2, 4)
        if edges.has_mlp:
            r_mlp = next(i for i, r in enumerate(edges.receivers) if r.layer == l and r.kind == "mlp")
            upto = int((send_layer < l + 0.25).sum())
            corr_in = _correction(P[:, :upto, r_mlp], corr.acts[:upto].unsqueeze(0) - cur[:, :upto])
            mlp_edits = [Edit("mlp_in", l, corr_in, op="add")]
            res = run_from(model, rows_ids, l, resid, reads=[("mlp_out", l), ("resid_post", l)],
                           edits=edits + mlp_edits, logits=last)
            cur[:, send_layer == l + 0.5] = res[("mlp_out", l)].view(C, 1, n, p, -1)
        if last:
            corr_in = _correction(P[:, :, R - 1], corr.acts.unsqueeze(0) - cur)
            if bool(P[:, :, R - 1].any()):
                fin = edits + (mlp_edits if edges.has_mlp else []) + [Edit("resid_post", l, corr_in, op="add")]
                res = run_from(model, rows_ids, l, resid, edits=fin)
            logits = res.logits
        else:
            resid = res[("resid_post", l)].detach()
    return metric(logits, targets.repeat(C)).detach().float().cpu().view(C, n)


def _correction(Pc: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
    """``sum_s P[c, s] * diff[c, s]`` as ``[C*n, p, d]``."""
    out = torch.einsum("cs,csnpd->cnpd", Pc, diff)
    return out.reshape(-1, *out.shape[2:])


def _head_edits(model, edges, ids, l, heads, Pl, diff, resid, C, max_rows, memo) -> list[Edit]:
    """Set each patched query/key/value of layer ``l`` to its value computed from its own input."""
    need = Pl.any(1)  # [C, R_l]
    if not bool(need.any()):
        return []
    n, p = ids.shape
    cs, rs = need.nonzero(as_tuple=True)
    # receivers of one circuit with the same patched senders read the same input: compute it once
    key = torch.cat([cs[:, None].to(Pl.dtype), Pl[cs, :, rs]], dim=1)
    uniq, group = torch.unique(key, dim=0, return_inverse=True)
    gc = uniq[:, 0].long()
    names = [(l, bytes(row.bool().cpu().numpy().tobytes())) for row in uniq[:, 1:]]
    todo = [k for k in range(len(gc)) if memo is None or names[k] not in memo]
    vals = {kind: [None] * len(gc) for kind in "qkv"}
    # with a memo, each input is computed in its own pass of n rows, so a remembered value is bit-identical
    # to a recomputed one (CPU kernels may round differently for other batch sizes): a resumed ACDC run
    # then repeats the uninterrupted one exactly
    for batch in ([todo] if memo is None else [[k] for k in todo]) if todo else []:
        t = torch.tensor(batch)
        corr_in = torch.einsum("ks,ksnpd->knpd", uniq[t, 1:], diff[gc[t]])  # [K, n, p, d]
        X = resid.view(C, n, p, -1)[gc[t]] + corr_in
        new = receiver_inputs(model, ids.repeat(len(batch), 1), l, X.reshape(-1, p, X.shape[-1]), max_rows)
        for j, k in enumerate(batch):
            got = {kind: new[kind][j * n:(j + 1) * n].clone() for kind in "qkv"}
            if memo is not None:
                memo[names[k]] = got
            for kind in "qkv":
                vals[kind][k] = got[kind]
    for k in range(len(gc)):
        if vals["q"][k] is None:
            for kind in "qkv":
                vals[kind][k] = memo[names[k]][kind]
    out = {}
    for j, c, r in zip(group.tolist(), cs.tolist(), rs.tolist()):
        rec = edges.receivers[heads[r]]
        if rec.kind not in out:
            shape = model.site_shape(rec.kind, C * n, p)
            out[rec.kind] = (torch.zeros(shape, dtype=model.dtype, device=model.device),
                             row_mask(model, rec.kind, C * n, p))
        v, m = out[rec.kind]
        rows = slice(c * n, (c + 1) * n)
        v[rows, :, rec.index] = vals[rec.kind][j][:, :, rec.index]
        m[rows, :, rec.index] = True
    return [Edit(kind, l, v, m) for kind, (v, m) in out.items()]
