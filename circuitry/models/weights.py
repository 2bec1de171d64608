"""Per-head weight matrices in one convention, for every supported family.

Convention (TransformerLens's, stated because a transposed convention silently swaps Q- and
K-composition): **row vectors**. For a head ``h`` of layer ``l`` and a residual-stream row ``x``
(``[d_model]``), ``q = x @ W_Q[l, h] + b_Q[l, h]``, likewise ``k`` and ``v``, and the head writes
``z @ W_O[l, h]`` to the residual stream. Shapes: ``W_Q, W_K, W_V: [layer, head, d_model, d_head]``,
``W_O: [layer, head, d_head, d_model]``, ``W_E: [d_vocab, d_model]``, ``W_U: [d_model, d_vocab]``.
Keys and values are given per *query* head: with grouped-query attention each query head gets the
matrices of the key/value head it reads.

Layer norm: with ``fold_ln=True`` the norm's scale ``gamma`` of ``ln1`` is folded into ``W_Q``,
``W_K``, ``W_V`` (``diag(gamma) @ W``) and its shift ``beta`` into the biases (``b + beta @ W``);
the ``ln_final`` scale likewise into ``W_U``. For LayerNorm (not RMSNorm) the centering
``x - mean(x)`` is linear and is folded too: the folded reading weights have their mean over the
``d_model`` axis removed, so they ignore the all-ones direction that the norm removes anyway (exactly
as TransformerLens's ``fold_ln``). Only the division by the norm, which is nonlinear, is not folded:
composition scores treat it as a per-token scalar, as in Elhage et al. (2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from circuitry.models.families import FamilySpec, get_path
from circuitry.models.info import ArchInfo


@dataclass(frozen=True)
class HeadWeights:
    """Weights of every head, in the row-vector convention (see module docstring)."""

    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor
    b_Q: torch.Tensor
    b_K: torch.Tensor
    b_V: torch.Tensor
    b_O: torch.Tensor
    W_E: torch.Tensor
    W_U: torch.Tensor
    W_pos: torch.Tensor | None
    folded_ln: bool

    @property
    def W_QK(self) -> torch.Tensor:
        """``W_Q W_K^T``: ``[layer, head, d_model, d_model]``; ``score = x_q W_QK x_k^T``."""
        return self.W_Q @ self.W_K.transpose(-1, -2)

    @property
    def W_OV(self) -> torch.Tensor:
        """``W_V W_O``: ``[layer, head, d_model, d_model]``; a head maps ``x -> x W_OV``."""
        return self.W_V @ self.W_O


def _split(weight: torch.Tensor, n: int, dh: int) -> torch.Tensor:
    """``nn.Linear`` weight ``[n*dh, d]`` -> ``[n, d, dh]`` (row convention)."""
    return weight.T.reshape(weight.shape[1], n, dh).permute(1, 0, 2)


def _bias(bias: torch.Tensor | None, n: int, dh: int, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros(n, dh, dtype=like.dtype, device=like.device) if bias is None else bias.reshape(n, dh)


def qkv_weights(layer, spec: FamilySpec, info: ArchInfo):
    """``([W_Q, W_K, W_V], [b_Q, b_K, b_V])`` of one layer module, unfolded views in the row convention
    (``[heads or kv_heads, d, dh]`` and ``[heads or kv_heads, dh]``)."""
    h, hk, dh, d = info.n_heads, info.n_kv_heads, info.d_head, info.d_model
    if spec.qkv_layout == "separate":
        mods = [get_path(layer, p) for p in (spec.q, spec.k, spec.v)]
        ws = [_split(m.weight, n, dh) for m, n in zip(mods, (h, hk, hk))]
        bs = [_bias(m.bias, n, dh, ws[0]) for m, n in zip(mods, (h, hk, hk))]
        return ws, bs
    mod = get_path(layer, spec.qkv)
    if spec.qkv_layout == "gpt2_fused":  # Conv1D: x @ W, W is [d, 3*h*dh]
        w, b = mod.weight, mod.bias
        D = h * dh
        ws = [w[:, i * D:(i + 1) * D].reshape(d, h, dh).permute(1, 0, 2) for i in range(3)]
        bs = [b[i * D:(i + 1) * D].reshape(h, dh) for i in range(3)]
        return ws, bs
    # neox_fused: nn.Linear, output laid out [h, 3, dh]
    w = mod.weight.reshape(h, 3, dh, d)
    ws = [w[:, i].transpose(1, 2) for i in range(3)]
    b = mod.bias.reshape(h, 3, dh) if mod.bias is not None else torch.zeros(h, 3, dh, dtype=w.dtype)
    return ws, [b[:, i] for i in range(3)]


def _out(layer, spec: FamilySpec, info: ArchInfo):
    mod = get_path(layer, spec.o)
    h, dh, d = info.n_heads, info.d_head, info.d_model
    w = mod.weight if spec.qkv_layout == "gpt2_fused" else mod.weight.T  # -> [h*dh, d]
    b = mod.bias if mod.bias is not None else torch.zeros(d, dtype=w.dtype, device=w.device)
    return w.reshape(h, dh, d), b


def _norm_params(norm, d: int, like: torch.Tensor, offset: float = 0.0):
    """``(gain, shift)`` of a norm; ``offset`` is added to the stored weight (Gemma's ``1 + weight``)."""
    gamma = getattr(norm, "weight", None)
    beta = getattr(norm, "bias", None)
    gamma = torch.ones(d, dtype=like.dtype, device=like.device) if gamma is None else gamma + offset
    beta = torch.zeros(d, dtype=like.dtype, device=like.device) if beta is None else beta
    return gamma, beta


def layer_weights(module, spec: FamilySpec, info: ArchInfo, layer: int) -> tuple[torch.Tensor, ...]:
    """``(W_Q [heads, d, dh], W_K [kv_heads, d, dh], W_V [kv_heads, d, dh], W_O [heads, dh, d])`` of one layer,
    unfolded, as detached views of the module's weights (no copy: :func:`extract_weights` copies every layer, the
    embedding and the unembedding, which on a billion-parameter model is gigabytes)."""
    (wq, wk, wv), _ = qkv_weights(get_path(module, spec.layers)[layer], spec, info)
    wo = _out(get_path(module, spec.layers)[layer], spec, info)[0]
    return tuple(w.detach() for w in (wq, wk, wv, wo))


@torch.no_grad()
def extract_weights(module, spec: FamilySpec, info: ArchInfo, *, fold_ln: bool = True) -> HeadWeights:
    """Read every head's weights from ``module`` (see the module docstring for the convention)."""
    layers = get_path(module, spec.layers)
    Q, K, V, O, bQ, bK, bV, bO = ([] for _ in range(8))
    for layer in layers:
        (wq, wk, wv), (bq, bk, bv) = qkv_weights(layer, spec, info)
        if info.n_kv_heads != info.n_heads:
            g = info.group_size
            wk, wv, bk, bv = (t.repeat_interleave(g, dim=0) for t in (wk, wv, bk, bv))
        if fold_ln:
            gamma, beta = _norm_params(get_path(layer, spec.ln1), info.d_model, wq, spec.norm_offset)
            bq, bk, bv = (b + torch.einsum("d,hde->he", beta, w) for b, w in ((bq, wq), (bk, wk), (bv, wv)))
            wq, wk, wv = (gamma[None, :, None] * w for w in (wq, wk, wv))
            if info.normalization == "layernorm":  # fold the (linear) centering of LayerNorm
                wq, wk, wv = (w - w.mean(dim=1, keepdim=True) for w in (wq, wk, wv))
        wo, bo = _out(layer, spec, info)
        if fold_ln and spec.attn_post:  # the gain of the norm on the attention output is linear: fold it into W_O
            g_post, _ = _norm_params(get_path(layer, spec.attn_post), info.d_model, wo, spec.norm_offset)
            wo, bo = wo * g_post, bo * g_post
        for acc, t in zip((Q, K, V, O, bQ, bK, bV, bO), (wq, wk, wv, wo, bq, bk, bv, bo)):
            acc.append(t.detach().clone())
    embed = get_path(module, spec.embed)
    W_E = embed.weight.detach() * getattr(embed, "scalar_embed_scale", 1.0)  # Gemma scales by sqrt(d_model)
    unembed = get_path(module, spec.unembed)
    W_U = unembed.weight.detach().T.clone()
    if fold_ln:
        gamma, _ = _norm_params(get_path(module, spec.ln_final), info.d_model, W_U, spec.norm_offset)
        W_U = gamma[:, None] * W_U
        if info.normalization == "layernorm":
            W_U = W_U - W_U.mean(dim=0, keepdim=True)
    W_pos = get_path(module, spec.pos_embed).weight.detach().clone() if spec.pos_embed else None
    return HeadWeights(
        W_Q=torch.stack(Q), W_K=torch.stack(K), W_V=torch.stack(V), W_O=torch.stack(O),
        b_Q=torch.stack(bQ), b_K=torch.stack(bK), b_V=torch.stack(bV), b_O=torch.stack(bO),
        W_E=W_E, W_U=W_U, W_pos=W_pos, folded_ln=fold_ln,
    )


def head_share(parts: torch.Tensor, normed: torch.Tensor, layer, spec: FamilySpec) -> torch.Tensor:
    """Each head's share of an RMS-normed attention output (Gemma-2's ``post_attention_layernorm``).

    ``parts [b, p, h, d]`` are the heads' ``z_h W_O^h``, ``normed [b, p, d]`` their sum (the output
    projection's result) that the norm reads. The norm ``o * g / rms(o)`` is linear in ``o`` for a fixed
    ``rms(o)``: with the scale taken from the whole layer's output, head ``h`` contributes
    ``z_h W_O^h * g / rms(o)``, and the shares sum to the norm's output (to float rounding)."""
    norm = get_path(layer, spec.attn_post)
    eps = getattr(norm, "eps", None)
    eps = getattr(norm, "variance_epsilon", 1e-6) if eps is None else eps
    o = normed.float()
    scale = torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + eps).unsqueeze(2)  # [b, p, 1, 1]
    gain = norm.weight.float() + spec.norm_offset
    return (parts.float() * scale * gain).to(parts.dtype)
