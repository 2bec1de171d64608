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

from typing import Callable

import torch

from circuitry.discovery.edges import EdgeSet
from circuitry.discovery.runs import RunCache
from circuitry.metrics import Targets
from circuitry.models import Edit, ModelAdapter


def receiver_gradients(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor, metric: Callable, targets: Targets,
                       *, embed: torch.Tensor | None = None) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """``d m / d x_v`` for every receiver ``v`` on one run of ``ids`` (input embeddings replaced by
    ``embed [n, p, d]`` if given): ``({layer: [R_layer, n, p, d]}, metric [n])``; the logits' gradient is
    under key ``n_layers``. Receivers of a layer are in :attr:`EdgeSet.receivers` order."""
    info = model.info
    L, n, p = info.n_layers, *ids.shape
    leaves = {}
    edits = []
    if embed is not None:
        edits.append(Edit("resid_pre", 0, embed.detach().clone().requires_grad_(True)))
    for l in range(L):
        for k in ("q", "k", "v", "mlp_in") if edges.has_mlp else "qkv":
            z = torch.zeros(model.site_shape(k, n, p), dtype=model.dtype, device=model.device, requires_grad=True)
            leaves[(k, l)] = z
            edits.append(Edit(k, l, z, op="add"))
    reads = [("resid_pre", l) for l in range(L)] + [("attn_in", l) for l in range(L)] + [("resid_post", L - 1)]
    out = model.run(ids, reads=reads, edits=edits, grad=True)
    m = metric(out.logits, targets)
    wrt = list(leaves.values()) + [out[("resid_post", L - 1)]]
    grads = torch.autograd.grad(m.sum(), wrt, retain_graph=True)
    g = dict(zip(list(leaves) + ["final"], grads))
    W = model.weights(fold_ln=False)
    G = info.group_size
    result: dict[int, torch.Tensor] = {}
    for l in range(L):
        recs = [r for r in edges.receivers if r.layer == l and r.kind in "qkv"]
        cot = []
        for r in recs:
            mat = {"q": W.W_Q, "k": W.W_K, "v": W.W_V}[r.kind][l, r.index * (G if r.kind != "q" else 1)]
            cot.append(g[(r.kind, l)][:, :, r.index] @ mat.T.to(model.dtype))
        cot = torch.stack(cot)  # [R_l, n, p, d] cotangents of attn_in
        gin = torch.autograd.grad(out[("attn_in", l)], out[("resid_pre", l)], grad_outputs=cot,
                                  is_grads_batched=True, retain_graph=True)[0]
        if edges.has_mlp:
            gin = torch.cat([gin, g[("mlp_in", l)].unsqueeze(0)])
        result[l] = gin.detach()
    result[L] = g["final"].detach().unsqueeze(0)
    return result, m.detach().float().cpu()


def attribution_per_prompt(model: ModelAdapter, edges: EdgeSet, ids: torch.Tensor, clean: RunCache,
                           corr: RunCache, metric: Callable, targets: Targets, *, steps: int | None = None,
                           progress: bool = True) -> torch.Tensor:
    """EAP (``steps=None``) or EAP-IG (``steps`` interpolation points) scores per edge and prompt: ``[E, n]``."""
    delta = (corr.acts - clean.acts).float()  # [S, n, p, d]
    if steps is None:
        grads, _ = receiver_gradients(model, edges, ids, metric, targets)
    else:
        e_clean, e_corr = clean.acts[0], corr.acts[0]
        alphas = [k / steps for k in range(steps)]
        if progress:
            from tqdm.auto import tqdm

            alphas = tqdm(alphas, desc="EAP-IG: interpolation steps", leave=False)
        grads = {}
        for a in alphas:
            g, _ = receiver_gradients(model, edges, ids, metric, targets, embed=e_corr + a * (e_clean - e_corr))
            grads = g if not grads else {l: grads[l] + g[l] for l in grads}
        grads = {l: v / steps for l, v in grads.items()}
    n = ids.shape[0]
    out = torch.zeros(len(edges), n)
    rec_layer = [r.layer for r in edges.receivers]
    first = {l: rec_layer.index(l) for l in grads}
    for l, gl in grads.items():
        idx = [e for e, (_, r) in enumerate(edges.edges) if rec_layer[r] == l]
        if not idx:
            continue
        s_idx = torch.tensor([edges.edges[e][0] for e in idx])
        r_idx = torch.tensor([edges.edges[e][1] - first[l] for e in idx])
        smax = int(s_idx.max()) + 1
        full = torch.einsum("snpd,rnpd->srn", delta[:smax], gl.float())  # [S_l, R_l, n]
        out[idx] = full[s_idx, r_idx].cpu()
    return out
