"""Edge attribution patching: EAP (Syed et al. 2023) and EAP-IG (Hanna et al. 2024).

EAP scores an edge ``u -> v`` by the first-order Taylor approximation of exact edge patching:
``(a_u(corrupted) - a_u(clean)) . d m / d x_v``, the gradient taken on the clean run with respect to
the receiver's input ``x_v`` (the residual stream entering that query, key, value, MLP or the logits,
before its layer norm). One forward and one backward pass give every edge at once. EAP-IG averages the
gradient over ``steps`` runs whose input embeddings are interpolated between the corrupted and the
clean prompt (``x = x_corr + (k / steps) (x_clean - x_corr)``, ``k = 0 .. steps - 1``, Hanna et al.'s
choice), an integrated-gradients estimate that is less fooled by saturated nonlinearities.

Per-receiver gradients through the adapter: every query/key/value gets a zero ``add`` edit that
requires grad, so one backward pass gives ``d m / d q`` (etc.) per head; the input gradient of head
``h``'s query is then the layer norm's vector-Jacobian product of ``(d m / d q_h) W_Q[h]^T``. An MLP's
input gradient is that of a zero ``add`` edit on the stream its norm reads (the adapter's ``mlp_in``; with
a parallel residual the layer's input, seen through the MLP's path only), the logits' is
``d m / d resid_post`` of the last layer.

Sign convention: a score approximates ``m(edge fed from the corrupted run) - m(clean)``, in metric
units, as exact patching measures it; with the logit difference an edge the behaviour needs scores
negative, with the KL divergence positive. Rankings use ``|score|``.
"""

from __future__ import annotations

from typing import Callable, Collection

import torch

from circuitry.discovery.edges import EdgeSet
from circuitry.discovery.runs import RunCache
from circuitry.metrics import Targets
from circuitry.models import Edit, ModelAdapter


def receiver_gradients(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor, metric: Callable, targets: Targets,
                       *, embed: torch.Tensor | None = None, blocks: Collection[int] | None = None,
                       into: dict[int, torch.Tensor] | None = None) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """``d m / d x_v`` for every receiver ``v`` on one run of ``ids`` (input embeddings replaced by
    ``embed [n, p, d]`` if given): ``({r0: [R, n, p, d]}, metric [n])``, one tensor per block of consecutive
    receivers in :attr:`EdgeSet.receivers` order keyed by its first receiver ``r0`` (a layer's queries, keys
    and values; its MLP; the logits: :func:`receiver_blocks`). ``blocks``: only these blocks (the backward
    pass then stops at the earliest layer they need); ``into``: add each block's gradient to ``into[r0]``
    in place (and return ``into``), so that a sum over runs holds one copy.

    Only the logits the metric reads are computed (:func:`~circuitry.interventions.batching.logit_slice`:
    for the logit difference two columns at the target positions), forward and backward."""
    from circuitry.interventions.batching import logit_slice

    info = model.info
    L, n, p = info.n_layers, *ids.shape
    recs = edges.receivers
    blocks = sorted(receiver_blocks(edges) if blocks is None else blocks)
    leaves = {}
    edits = []
    if embed is not None:
        edits.append(Edit("resid_pre", 0, embed.detach().clone().requires_grad_(True)))
    for r0 in blocks:
        l = recs[r0].layer
        for k in ("qkv" if recs[r0].kind in "qkv" else ["mlp_in"] if recs[r0].kind == "mlp" else []):
            z = torch.zeros(model.site_shape(k, n, p), dtype=model.dtype, device=model.device, requires_grad=True)
            leaves[(k, l)] = z
            edits.append(Edit(k, l, z, op="add"))
    attn = [recs[r0].layer for r0 in blocks if recs[r0].kind in "qkv"]
    reads = [("resid_pre", l) for l in attn] + [("attn_in", l) for l in attn] + [("resid_post", L - 1)]
    cut, cut_targets = logit_slice(metric, targets)
    out = model.run(ids, reads=reads, edits=edits, grad=True, logits_at=cut)
    m = metric(out.logits, cut_targets)
    wrt = list(leaves.values()) + [out[("resid_post", L - 1)]]
    g = dict(zip(list(leaves) + ["final"], torch.autograd.grad(m.sum(), wrt, retain_graph=bool(attn))))
    result: dict[int, torch.Tensor] = {} if into is None else into
    for r0 in blocks:
        l, kind = recs[r0].layer, recs[r0].kind
        if kind in "qkv":
            cot = _cotangents(model, edges, [g.pop((k, l)) for k in "qkv"], l)  # [R, n, p, d]
            grad = torch.autograd.grad(out[("attn_in", l)], out[("resid_pre", l)], grad_outputs=cot,
                                       is_grads_batched=True, retain_graph=True)[0].detach()
            del cot
        else:
            grad = g.pop(("mlp_in", l) if kind == "mlp" else "final").detach().unsqueeze(0)
        if r0 in result:
            result[r0] += grad
        else:
            result[r0] = grad
        del grad
    return result, m.detach().float().cpu()


def receiver_blocks(edges: EdgeSet) -> dict[int, int]:
    """The receiver blocks :func:`receiver_gradients` returns: ``{first receiver: number of receivers}``,
    a layer's queries, keys and values, its MLP, the logits."""
    out: dict[int, int] = {}
    r0 = 0
    for i, r in enumerate(edges.receivers):
        prev = edges.receivers[i - 1] if i else None
        if prev is None or prev.layer != r.layer or (prev.kind in "qkv") != (r.kind in "qkv"):
            r0 = i
        out[r0] = out.get(r0, 0) + 1
    return out


def _cotangents(model: ModelAdapter, edges: EdgeSet, grads: list[torch.Tensor], layer: int) -> torch.Tensor:
    """``(d m / d q_h) W_Q[h]^T`` for every query, key and value receiver of ``layer``, ``[R, n, p, d]`` in
    :attr:`EdgeSet.receivers` order: the cotangents of the layer norm's output, in one batched matmul (the
    layer's weights read as views, :func:`circuitry.models.weights.layer_weights`)."""
    from circuitry.models.weights import layer_weights

    wq, wk, wv = layer_weights(model.module, model.spec, model.info, layer)[:3]
    recs = [r for r in edges.receivers if r.layer == layer and r.kind in "qkv"]
    idx = {kind: [r.index for r in recs if r.kind == kind] for kind in "qkv"}
    mats = torch.cat([w[idx[kind]] for w, kind in zip((wq, wk, wv), "qkv")]).to(model.dtype)  # [R, d, dh]
    g = torch.cat([gr[:, :, idx[kind]] for gr, kind in zip(grads, "qkv")], dim=2)  # [n, p, R, dh]
    return torch.einsum("npre,rde->rnpd", g, mats)


GRADIENT_BYTES = 512 * 2**20
"""Receiver gradients held at once (bytes). :func:`attribution_plan` scores the prompts in chunks, and if one
prompt's gradients exceed this, the receivers in groups of consecutive layers, whose float32
``[receiver, prompt, position, d_model]`` gradients fit in it. Memory model: docs/scale.md."""


def attribution_plan(edges: EdgeSet, n: int, seq: int, d_model: int, *, chunk: int | None = None,
                     budget: int | None = None) -> tuple[int, list[list[int]]]:
    """``(prompts per chunk, groups of receiver blocks)`` such that one chunk's gradients for one group,
    ``receivers x chunk x seq x d_model`` float32 values, fit in ``budget`` bytes (at least one block per
    group). ``chunk``: the prompts per chunk (default: as many as fit, all receivers in one group). Each group
    repeats the chunk's forward and backward passes, so more prompts per chunk cost no extra passes and
    more groups do."""
    budget = budget or GRADIENT_BYTES
    blocks = receiver_blocks(edges)
    per = seq * d_model * 4  # bytes per receiver and prompt
    if chunk is None:
        chunk = max(1, min(n, budget // (per * len(edges.receivers))))
    groups: list[list[int]] = [[]]
    size = 0
    for r0, R in blocks.items():
        if groups[-1] and size + R * chunk * per > budget:
            groups.append([])
            size = 0
        groups[-1].append(r0)
        size += R * chunk * per
    return chunk, groups


def attribution_per_prompt(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor, clean: RunCache,
                           corr: RunCache, metric: Callable, targets: Targets, *, steps: int | None = None,
                           progress: bool = True, chunk: int | None = None,
                           budget: int | None = None) -> torch.Tensor:
    """EAP (``steps=None``) or EAP-IG (``steps`` interpolation points) scores per edge and prompt: ``[E, n]``.

    Prompts are independent, so they are scored ``chunk`` at a time and the receivers in groups of layers
    (:func:`attribution_plan`, within ``budget`` bytes of gradients, default :data:`GRADIENT_BYTES`): a
    chunk's gradients, summed over the steps in place, are contracted with its senders' corrupted-minus-clean
    outputs one prompt at a time (computed from the heads' cached ``z``), block by block, then dropped. The
    scores do not depend on the chunking beyond float rounding."""
    n, p = ids.shape
    d = model.info.d_model
    chunk, groups = attribution_plan(edges, n, p, d, chunk=chunk, budget=budget)
    plan = _contraction_plan(edges)
    out = torch.zeros(len(edges), n)
    work = [(i, grp) for i in range(0, n, chunk) for grp in groups]
    if progress:
        from tqdm.auto import tqdm

        work = tqdm(work, desc="EAP-IG" if steps else "EAP", unit="chunk", leave=False)
    for i, grp in work:
        rows = slice(i, min(n, i + chunk))
        sub = Targets(*(None if t is None else t[rows] for t in (targets.positions, targets.answers, targets.foils,
                                                                   targets.clean_logprobs)))
        grads = _mean_gradients(model, edges, ids[rows], clean.embed[rows], corr.embed[rows], metric, sub, steps,
                                grp)
        for j in range(rows.stop - rows.start):  # one prompt, one sender layer at a time
            a = slice(i + j, i + j + 1)
            full = {r0: None for r0 in grp}  # [S_block, R] scores of the prompt
            lo = 0
            for sl in range(-1, model.info.n_layers):  # -1: the embedding
                diff = corr.outputs(a, sl)
                diff = diff.sub_(clean.outputs(a, sl)) if corr.computes_outputs else diff - clean.outputs(a, sl)
                hi = lo + diff.shape[0]
                delta = diff.float().reshape(hi - lo, p * d)  # [S_layer, p * d]
                for r0 in grp:
                    smax = plan[r0][3]
                    if lo >= smax:
                        continue
                    gr = grads[r0][:, j].float()  # [R, p, d]
                    part = delta[:smax - lo] @ gr.reshape(gr.shape[0], p * d).T  # [senders, R]
                    full[r0] = part if full[r0] is None else torch.cat([full[r0], part])
                lo = hi
                del diff, delta
            for r0 in grp:
                idx, s_idx, r_idx, _ = plan[r0]
                out[idx, a] = full[r0][s_idx, r_idx][:, None].cpu()
        del grads
    return out


def _mean_gradients(model, edges, ids, e_clean, e_corr, metric, targets, steps, blocks) -> dict[int, torch.Tensor]:
    """EAP's receiver gradients (of ``blocks``) on the clean run, or EAP-IG's mean over the ``steps``
    interpolated inputs ``e_corr + (k / steps) (e_clean - e_corr)``, summed in place."""
    if steps is None:
        return receiver_gradients(model, edges, ids, metric, targets, blocks=blocks)[0]
    total: dict[int, torch.Tensor] = {}
    for k in range(steps):
        receiver_gradients(model, edges, ids, metric, targets, embed=e_corr + (k / steps) * (e_clean - e_corr),
                           blocks=blocks, into=total)
    for v in total.values():
        v /= steps
    return total


def _contraction_plan(edges: EdgeSet) -> dict[int, tuple[list[int], torch.Tensor, torch.Tensor, int]]:
    """Per receiver block (:func:`receiver_blocks`): its edges, their senders and receivers (from the block's
    first) and how many senders precede the block."""
    first = {}
    for r0, R in receiver_blocks(edges).items():
        first.update({r: r0 for r in range(r0, r0 + R)})
    members: dict[int, list[int]] = {}
    for e, (_, r) in enumerate(edges.edges):
        members.setdefault(first[r], []).append(e)
    plan = {}
    for r0, idx in members.items():
        s_idx = torch.tensor([edges.edges[e][0] for e in idx])
        r_idx = torch.tensor([edges.edges[e][1] - r0 for e in idx])
        plan[r0] = (idx, s_idx, r_idx, int(s_idx.max()) + 1)
    return plan
