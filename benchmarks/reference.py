"""Plain-torch references that do the least work the exact answer allows (no nnsight, no circuitry).

A :class:`RefModel` runs a GPT-2 or a zoo model layer by layer from the module's own weights, so that a pass
can start at any layer from a cached residual stream, replace any head's ``z`` or ``q``/``k``/``v``, and
unembed only the metric's positions (and, for the logit difference, only ``W_U[answer] - W_U[foil]``).
The workloads use it as the speed floor: the same algorithm as circuitry's, without framework overhead.
"""

from __future__ import annotations

import math

import torch

from circuitry.models.activations import gelu_tanh  # tested against Hugging Face's forms


class RefModel:
    """Layer-by-layer forward of a Hugging Face GPT-2 (``GPT2LMHeadModel``) or a circuitry zoo model."""

    def __init__(self, module: torch.nn.Module):
        self.m = module
        self.gpt2 = hasattr(module, "transformer")
        blocks = module.transformer.h if self.gpt2 else module.blocks
        self.blocks = list(blocks)
        self.L = len(self.blocks)
        if self.gpt2:
            self.H = module.config.n_head
            self.D = module.config.n_embd
            self.ln_f, self.W_U, self.b_U = module.transformer.ln_f, module.lm_head.weight, None
        else:
            self.H, self.D = module.cfg.n_heads, module.cfg.d_model
            self.ln_f, self.W_U, self.b_U = module.ln_final, module.unembed.weight, module.unembed.bias
        self.dh = self.D // self.H if self.gpt2 else module.cfg.d_head

    def embed(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Residual stream entering layer 0, and the zoo's positional term added to q/k (or None)."""
        p = torch.arange(ids.shape[1])
        if self.gpt2:
            return self.m.transformer.wte(ids) + self.m.transformer.wpe(p), None
        pos = self.m.pos_embed(p)
        if self.m.cfg.positional == "absolute":
            return self.m.embed(ids) + pos, None
        return self.m.embed(ids), pos

    def qkv(self, l: int, x: torch.Tensor, pos) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-head q, k, v ``[b, p, h, dh]`` of layer ``l`` from its input ``x``."""
        b, p, _ = x.shape
        blk = self.blocks[l]
        if self.gpt2:
            q, k, v = blk.attn.c_attn(blk.ln_1(x)).split(self.D, dim=-1)
        else:
            h = blk.ln1(x)
            qk = h if pos is None else h + pos
            q, k, v = blk.attn.q_proj(qk), blk.attn.k_proj(qk), blk.attn.v_proj(h)
        return tuple(t.view(b, p, self.H, self.dh) for t in (q, k, v))

    def attend(self, q, k, v) -> torch.Tensor:
        """``z [b, p, h, dh]`` from causal softmax attention."""
        p = q.shape[1]
        s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.dh)
        s = s.masked_fill(torch.ones(p, p, dtype=torch.bool).triu(1), float("-inf"))
        return torch.einsum("bhqk,bkhd->bqhd", s.softmax(-1), v)

    def finish(self, l: int, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Residual stream leaving layer ``l`` given its input ``x`` and its heads' ``z``."""
        blk = self.blocks[l]
        b, p = z.shape[:2]
        proj = blk.attn.c_proj if self.gpt2 else blk.attn.o_proj
        x = x + proj(z.reshape(b, p, self.H * self.dh))
        if self.gpt2:  # GPT-2's gelu_new in its fastest exact form, x * sigmoid(2u), as circuitry runs it
            return x + blk.mlp.c_proj(gelu_tanh(blk.mlp.c_fc(blk.ln_2(x))))
        return x if blk.mlp is None else x + blk.mlp(blk.ln2(x))

    def layer(self, l, x, pos, *, z_edit=None, qkv_edit=None, record=None):
        """One layer; ``qkv_edit(q, k, v)`` and ``z_edit(z)`` may replace activations; ``record`` collects
        ``(q, k, v)`` by layer."""
        q, k, v = self.qkv(l, x, pos)
        if qkv_edit is not None:
            q, k, v = qkv_edit(q, k, v)
        if record is not None:
            record[l] = (q, k, v)
        z = self.attend(q, k, v)
        if z_edit is not None:
            z = z_edit(z)
        return self.finish(l, x, z), z

    def cache(self, ids: torch.Tensor) -> tuple[list, list, torch.Tensor | None]:
        """``resid_pre`` and ``z`` of every layer of an unpatched run, and the positional term."""
        x, pos = self.embed(ids)
        resid, zs = [], []
        for l in range(self.L):
            resid.append(x)
            x, z = self.layer(l, x, pos)
            zs.append(z)
        resid.append(x)
        return resid, zs, pos

    def logit_diff(self, x: torch.Tensor, positions, answers, foils) -> torch.Tensor:
        """Mean over target positions of ``logit[answer] - logit[foil]``, unembedding only those: ``[b]``."""
        rows = torch.arange(x.shape[0])[:, None]
        h = self.ln_f(x[rows, positions])  # [b, k, d]
        dw = self.W_U[answers] - self.W_U[foils]  # [b, k, d]
        out = (h * dw).sum(-1)
        if self.b_U is not None:
            out = out + self.b_U[answers] - self.b_U[foils]
        return out.mean(-1)

    def loss(self, x: torch.Tensor, positions, answers) -> torch.Tensor:
        """Mean cross-entropy of the answers at the target positions: ``[b]``."""
        rows = torch.arange(x.shape[0])[:, None]
        lg = torch.nn.functional.linear(self.ln_f(x[rows, positions]), self.W_U, self.b_U)
        return -lg.log_softmax(-1).gather(-1, answers[..., None])[..., 0].mean(-1)


@torch.no_grad()
def head_patching(ref: RefModel, base_ids, src_ids, positions, answers, foils) -> torch.Tensor:
    """Per-head ``z`` patching, all positions (source run's ``z`` into the base run): ``[L, H, n]``; all
    heads of a layer in one batch, each pass starting at its layer from the cached residual stream."""
    n, H = base_ids.shape[0], ref.H
    resid, _, pos = ref.cache(base_ids)
    _, z_src, _ = ref.cache(src_ids)
    out = torch.empty(ref.L, H, n)
    rep = lambda t: t.repeat(H, *[1] * (t.ndim - 1))  # noqa: E731
    for l in range(ref.L):
        def z_edit(z, l=l):
            z = z.clone()
            for h in range(H):
                z[h * n:(h + 1) * n, :, h] = z_src[l][:, :, h]
            return z
        x, _ = ref.layer(l, rep(resid[l]), pos, z_edit=z_edit)
        for j in range(l + 1, ref.L):
            x, _ = ref.layer(j, x, pos)
        out[l] = ref.logit_diff(x, rep(positions), rep(answers), rep(foils)).view(H, n)
    return out


@torch.no_grad()
def path_patching(ref: RefModel, orig_ids, new_ids, positions, answers, foils) -> dict:
    """Every head -> every later head's q/k/v (Algorithm 1): ``{(sender, receiver, kind): [n]}``."""
    n, H, L = orig_ids.shape[0], ref.H, ref.L
    resid, z_orig, pos = ref.cache(orig_ids)
    _, z_new, _ = ref.cache(new_ids)
    out = {}
    for sl in range(L - 1):
        for sh in range(H):
            x, rec = resid[sl], {}
            for l in range(sl, L):  # frozen pass: every head at its x_orig z except the sender
                def freeze(z, l=l):
                    z = z_orig[l].clone()
                    if l == sl:
                        z[:, :, sh] = z_new[l][:, :, sh]
                    return z
                x, _ = ref.layer(l, x, pos, z_edit=freeze, record=rec)
            for l2 in range(sl + 1, L):  # receiver pass: all heads and kinds of layer l2 in one batch
                units = [(h2, kd) for h2 in range(H) for kd in range(3)]
                U = len(units)
                rep = lambda t: t.repeat(U, *[1] * (t.ndim - 1))  # noqa: E731

                def patch(q, k, v, l2=l2, units=units):
                    qkv = [q.clone(), k.clone(), v.clone()]
                    for u, (h2, kd) in enumerate(units):
                        qkv[kd][u * n:(u + 1) * n, :, h2] = rec[l2][kd][:, :, h2]
                    return tuple(qkv)
                y, _ = ref.layer(l2, rep(resid[l2]), pos, qkv_edit=patch)
                for j in range(l2 + 1, L):
                    y, _ = ref.layer(j, y, pos)
                vals = ref.logit_diff(y, rep(positions), rep(answers), rep(foils)).view(U, n)
                for u, (h2, kd) in enumerate(units):
                    out[(f"L{sl}H{sh}", f"L{l2}H{h2}", "qkv"[kd])] = vals[u]
    return out


@torch.no_grad()
def mean_ablation_effects(ref: RefModel, ids, positions, answers, head_sets, *, chunk: int = 16) -> torch.Tensor:
    """Mean rise in loss when each head set's ``z`` is replaced by its per-position mean over the prompts."""
    n = ids.shape[0]
    resid, zs, pos = ref.cache(ids)
    base = ref.loss(resid[-1], positions, answers)
    means = [z.mean(0, keepdim=True) for z in zs]
    out = []
    for c in range(0, len(head_sets), chunk):
        sets = head_sets[c:c + chunk]
        k = len(sets)
        rep = lambda t: t.repeat(k, *[1] * (t.ndim - 1))  # noqa: E731
        x = rep(resid[0])
        for l in range(ref.L):
            rows = [(u, h) for u, s in enumerate(sets) for (sl, h) in s if sl == l]

            def ablate(z, rows=rows, l=l):
                z = z.clone()
                for u, h in rows:
                    z[u * n:(u + 1) * n, :, h] = means[l][:, :, h]
                return z
            x, _ = ref.layer(l, x, pos, z_edit=ablate if rows else None)
        out.append((ref.loss(x, rep(positions), rep(answers)).view(k, n) - base).mean(1))
    return torch.cat(out)


# ------------------------------------------------------------------------------------------- EAP-IG
def _gpt2_senders(ref: RefModel, ids: torch.Tensor) -> torch.Tensor:
    """Every sender's output on ``ids``, ``[S, n, p, d]``: the embedding, then per layer each head's
    ``z_h W_O[h]`` (without the output bias, which no head owns) and the MLP."""
    x, _ = ref.embed(ids)
    out = [x]
    n, p, H, dh = *ids.shape, ref.H, ref.dh
    for l, blk in enumerate(ref.blocks):
        q, k, v = ref.qkv(l, x, None)
        z = ref.attend(q, k, v)
        out += list(torch.einsum("bphe,hed->hbpd", z, blk.attn.c_proj.weight.view(H, dh, ref.D)).unbind(0))
        mid = x + blk.attn.c_proj(z.reshape(n, p, ref.D))
        mlp = blk.mlp.c_proj(gelu_tanh(blk.mlp.c_fc(blk.ln_2(mid))))
        out.append(mlp)
        x = mid + mlp
    return torch.stack(out)


def _gpt2_receiver_grads(ref: RefModel, emb: torch.Tensor, positions, answers, foils) -> list[torch.Tensor]:
    """``d m / d x_v`` per receiver (``m`` the summed logit difference) on one run whose first-layer input is
    ``emb``: every query, key and value of layer ``l`` reads its own copy ``x + e_v`` of the residual stream
    (a zero leaf ``e_v`` per receiver, its own layer norm), the MLP reads ``mid + e_mlp``, the logits
    ``x + e_out``; autograd gives each ``d m / d e_v``. Per layer ``[3H + 1, n, p, d]``, then the logits'."""
    n, p, d = emb.shape
    H, dh = ref.H, ref.dh
    x, leaves = emb, []
    for blk in ref.blocks:
        e = torch.zeros(3 * H, n, p, d, requires_grad=True)
        hs = blk.ln_1(x.unsqueeze(0) + e).view(3, H, n, p, d)
        W = blk.attn.c_attn.weight.view(d, 3, H, dh)
        b = blk.attn.c_attn.bias.view(3, H, dh)
        q, k, v = (torch.einsum("hnpd,dhe->nphe", hs[i], W[:, i]) + b[i] for i in range(3))
        mid = x + blk.attn.c_proj(ref.attend(q, k, v).reshape(n, p, d))
        e_mlp = torch.zeros(n, p, d, requires_grad=True)
        x = mid + blk.mlp.c_proj(gelu_tanh(blk.mlp.c_fc(blk.ln_2(mid + e_mlp))))
        leaves += [e, e_mlp]
    e_out = torch.zeros(n, p, d, requires_grad=True)
    m = ref.logit_diff(x + e_out, positions, answers, foils).sum()
    grads = torch.autograd.grad(m, leaves + [e_out])
    per_layer = [torch.cat([grads[2 * l], grads[2 * l + 1][None]]) for l in range(ref.L)]
    return per_layer + [grads[-1][None]]


def eap_ig(ref: RefModel, clean_ids, corr_ids, positions, answers, foils, *, steps: int,
           chunk: int = 8) -> dict[str, torch.Tensor]:
    """EAP-IG (Hanna et al. 2024) over every edge of a GPT-2, in plain torch: ``{edge name: [n]}``, the
    score ``(a_u(corrupted) - a_u(clean)) . mean_k d m / d x_v`` at the first-layer input
    ``x_corr + (k / steps)(x_clean - x_corr)``, ``k = 0 .. steps - 1``, per prompt (``chunk`` prompts at a
    time). Names as circuitry's edges: ``"L0H3->L1H5<k>"``, ``"embed->MLP0"``, ``"MLP11->logits"``."""
    H, L = ref.H, ref.L
    senders = ["embed"] + [s for l in range(L) for s in [f"L{l}H{h}" for h in range(H)] + [f"MLP{l}"]]
    receivers = [(l, f"L{l}H{h}", kind) for l in range(L) for kind in "qkv" for h in range(H)]
    receivers = [r for l in range(L) for r in [x for x in receivers if x[0] == l] + [(l + 0.5, f"MLP{l}", "out")]]
    receivers.append((L, "logits", "out"))
    s_layer = [-1.0] + [float(l) + (0.5 if s.startswith("MLP") else 0.0) for l in range(L) for s in
                        [f"L{l}H{h}" for h in range(H)] + [f"MLP{l}"]]
    n = clean_ids.shape[0]
    out = {}
    for i in range(0, n, chunk):
        rows = slice(i, i + chunk)
        with torch.no_grad():
            delta = _gpt2_senders(ref, corr_ids[rows]) - _gpt2_senders(ref, clean_ids[rows])  # [S, c, p, d]
            e_clean, _ = ref.embed(clean_ids[rows])
            e_corr, _ = ref.embed(corr_ids[rows])
        grads = None
        for k in range(steps):
            g = _gpt2_receiver_grads(ref, e_corr + (k / steps) * (e_clean - e_corr), positions[rows], answers[rows],
                                     foils[rows])
            grads = g if grads is None else [a + b for a, b in zip(grads, g)]
        g_all = torch.cat(grads) / steps  # [R, c, p, d]
        score = torch.einsum("snpd,rnpd->srn", delta, g_all)
        for r, (rl, node, kind) in enumerate(receivers):
            limit = float("inf") if node == "logits" else rl - 0.25  # senders written before v reads
            for s, sl in enumerate(s_layer):
                if sl < limit:
                    name = f"{senders[s]}->{node}<{kind}>" if kind != "out" else f"{senders[s]}->{node}"
                    out.setdefault(name, []).append(score[s, r])
    return {k: torch.cat(v) for k, v in out.items()}


def eap_ig_floor(module: torch.nn.Module, clean_ids, corr_ids, positions, answers, foils, *, steps: int) -> None:
    """The passes EAP-IG must make, in plain torch on the Hugging Face GPT-2, computing no scores: the clean
    and the corrupted forward pass (the metric of each), then ``steps`` forward passes from interpolated
    embeddings, each with a backward pass to its input (activation gradients through every layer, no
    weight gradients). Every pass unembeds only ``W_U[answer] - W_U[foil]`` at the target positions."""
    tr, W_U = module.transformer, module.lm_head.weight
    rows = torch.arange(clean_ids.shape[0])[:, None]
    dw = W_U[answers] - W_U[foils]  # [n, k, d]

    def metric(h):
        return (h[rows, positions] * dw).sum(-1).mean(-1)

    with torch.no_grad():
        metric(tr(input_ids=clean_ids).last_hidden_state)
        metric(tr(input_ids=corr_ids).last_hidden_state)
        e_clean, e_corr = tr.wte(clean_ids), tr.wte(corr_ids)
    for k in range(steps):
        emb = (e_corr + (k / steps) * (e_clean - e_corr)).requires_grad_(True)
        torch.autograd.grad(metric(tr(inputs_embeds=emb).last_hidden_state).sum(), emb)


# ------------------------------------------------------------------------------------------ circuits
@torch.no_grad()
def patched_circuit(ref: RefModel, clean_ids, corr_ids, patched: dict[str, bool], positions, answers,
                    foils) -> torch.Tensor:
    """The logit difference per prompt of a GPT-2 run on ``clean_ids`` in which every edge named in
    ``patched`` (circuitry's names: ``"L0H3->L1H5<k>"``, ``"embed->MLP0"``, ``"MLP11->logits"``) is fed from
    the corrupted run: each query, key and value of head ``h`` reads ``x + sum over patched senders s of
    (a_s(corrupted) - a_s(current))`` through its own layer norm, as does each MLP and the logits. Every
    receiver's input is one matmul of the patch matrix with the senders' differences; no circuitry code."""
    H, L, dh, D = ref.H, ref.L, ref.dh, ref.D
    corr = _gpt2_senders(ref, corr_ids)  # [S, n, p, d]
    names = ["embed"] + [s for l in range(L) for s in [f"L{l}H{h}" for h in range(H)] + [f"MLP{l}"]]

    def P(receivers: list[str], upto: int) -> torch.Tensor:
        return torch.tensor([[float(patched.get(f"{names[s]}->{r}", False)) for s in range(upto)]
                             for r in receivers])

    x, _ = ref.embed(clean_ids)
    cur = [x]
    n, p, _ = x.shape
    for l, blk in enumerate(ref.blocks):
        S = len(cur)
        diff = torch.stack(cur) - corr[:S]  # current - corrupted, [S, n, p, d]
        recs = [f"L{l}H{h}<{k}>" for k in "qkv" for h in range(H)]
        inp = x.unsqueeze(0) - torch.einsum("rs,snpd->rnpd", P(recs, S), diff)  # [3H, n, p, d]
        hs = blk.ln_1(inp).view(3, H, n, p, D)
        W = blk.attn.c_attn.weight.view(D, 3, H, dh)
        b = blk.attn.c_attn.bias.view(3, H, dh)
        q, k, v = (torch.einsum("hnpd,dhe->nphe", hs[i], W[:, i]) + b[i] for i in range(3))
        z = ref.attend(q, k, v)
        cur += list(torch.einsum("bphe,hed->hbpd", z, blk.attn.c_proj.weight.view(H, dh, D)).unbind(0))
        mid = x + blk.attn.c_proj(z.reshape(n, p, D))
        S = len(cur)
        m_in = mid - torch.einsum("s,snpd->npd", P([f"MLP{l}"], S)[0], torch.stack(cur) - corr[:S])
        mlp = blk.mlp.c_proj(gelu_tanh(blk.mlp.c_fc(blk.ln_2(m_in))))
        cur.append(mlp)
        x = mid + mlp
    out = x - torch.einsum("s,snpd->npd", P(["logits"], len(cur))[0], torch.stack(cur) - corr)
    return ref.logit_diff(out, positions, answers, foils)
