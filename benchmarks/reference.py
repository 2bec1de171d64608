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
