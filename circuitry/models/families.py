"""Per-family table: where each canonical site lives in a model's module tree.

This is the only place that knows module paths. The adapter reads this table; analyses never branch
on a model's class. To add an architecture, add one :class:`FamilySpec` row (see ``docs/adapter.md``).

Canonical sites and their shapes (``b`` batch, ``p`` position, ``h`` head, ``d`` d_model):

==============  =================  ==========================================================
site            shape              meaning
==============  =================  ==========================================================
``resid_pre``   ``[b, p, d]``      residual stream entering layer ``l`` (``l = 0``: embeddings)
``attn_in``     ``[b, p, d]``      normalized residual stream fed to attention (``ln1`` output)
``mlp_in``      ``[b, p, d]``      residual stream the MLP's norm reads (``ln2`` input; parallel residual: resid_pre)
``q``           ``[b, p, h, dh]``  queries, before rotary (per query head)
``k``, ``v``    ``[b, p, hk, dh]`` keys / values, before rotary (per key/value head; GQA: hk < h)
``pattern``     ``[b, h, q, k]``   attention pattern (post-softmax)
``z``           ``[b, p, h, dh]``  per-head attention-weighted values (input of the output proj.)
``head_out``    ``[b, p, h, d]``   each head's contribution to the residual stream, ``z_h W_O^h`` (*)
``attn_out``    ``[b, p, d]``      what attention adds to the residual stream (sum of head outputs plus ``b_O``)
``mlp_out``     ``[b, p, d]``      what the MLP adds to the residual stream
``resid_post``  ``[b, p, d]``      residual stream leaving layer ``l``
``logits``      ``[b, p, vocab]``  unembedding output
==============  =================  ==========================================================

(*) Behind a norm on the attention output (Gemma-2's ``attn_post``), a head's share of it,
``z_h W_O^h * g / rms(o)`` with ``o`` the whole projection output (:func:`circuitry.models.weights.head_share`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Site = Literal["resid_pre", "attn_in", "q", "k", "v", "pattern", "z", "head_out", "attn_out", "mlp_in", "mlp_out",
               "resid_post", "logits"]
SITES: tuple[str, ...] = Site.__args__  # type: ignore[attr-defined]
HEAD_SITES = ("q", "k", "v", "z", "head_out", "pattern")
QKVLayout = Literal["separate", "gpt2_fused", "neox_fused"]


@dataclass(frozen=True)
class FamilySpec:
    """Module paths of one architecture family.

    Paths of per-layer modules are relative to the layer module ``{layers}.{l}``; ``None`` means the
    family has no such module. ``ln2`` is the norm the MLP reads through (its input is the ``mlp_in``
    site). ``attn_post`` / ``mlp_post`` are norms applied to the attention / MLP output before it joins the
    residual stream (Gemma-2's "sandwich" norms): ``attn_out``, ``head_out`` and ``mlp_out`` are then read
    and written after them. ``norm_offset`` is added to every norm's stored weight to give its gain (Gemma:
    ``x_normed * (1 + weight)``).
    """

    name: str
    layers: str
    ln1: str
    attn: str
    qkv_layout: QKVLayout
    q: str | None
    k: str | None
    v: str | None
    qkv: str | None
    o: str
    pattern: str | None  # an identity hook module; None: read from the attention module's output[1]
    mlp: str | None
    ln_final: str
    unembed: str
    embed: str
    pos_embed: str | None
    normalization: Literal["layernorm", "rmsnorm", "none"]
    positional: Literal["shortformer", "absolute", "rotary"]
    ln2: str | None = None
    attn_post: str | None = None
    mlp_post: str | None = None
    norm_offset: float = 0.0


FAMILIES: dict[str, FamilySpec] = {
    "zoo": FamilySpec(
        name="zoo", layers="blocks", ln1="ln1", attn="attn", qkv_layout="separate",
        q="attn.q_proj", k="attn.k_proj", v="attn.v_proj", qkv=None, o="attn.o_proj",
        pattern="attn.hook_pattern", mlp="mlp", ln_final="ln_final", unembed="unembed",
        embed="embed", pos_embed="pos_embed", normalization="layernorm", positional="shortformer", ln2="ln2",
    ),
    "gpt2": FamilySpec(
        name="gpt2", layers="transformer.h", ln1="ln_1", attn="attn", qkv_layout="gpt2_fused",
        q=None, k=None, v=None, qkv="attn.c_attn", o="attn.c_proj", pattern=None, mlp="mlp",
        ln_final="transformer.ln_f", unembed="lm_head", embed="transformer.wte", pos_embed="transformer.wpe",
        normalization="layernorm", positional="absolute", ln2="ln_2",
    ),
    "gpt_neox": FamilySpec(
        name="gpt_neox", layers="gpt_neox.layers", ln1="input_layernorm", attn="attention",
        qkv_layout="neox_fused", q=None, k=None, v=None, qkv="attention.query_key_value", o="attention.dense",
        pattern=None, mlp="mlp", ln_final="gpt_neox.final_layer_norm", unembed="lm_head",
        embed="gpt_neox.embed_in", pos_embed=None, normalization="layernorm", positional="rotary",
        ln2="post_attention_layernorm",
    ),
    "llama": FamilySpec(
        name="llama", layers="model.layers", ln1="input_layernorm", attn="self_attn", qkv_layout="separate",
        q="self_attn.q_proj", k="self_attn.k_proj", v="self_attn.v_proj", qkv=None, o="self_attn.o_proj",
        pattern=None, mlp="mlp", ln_final="model.norm", unembed="lm_head", embed="model.embed_tokens",
        pos_embed=None, normalization="rmsnorm", positional="rotary", ln2="post_attention_layernorm",
    ),
    "gemma2": FamilySpec(
        name="gemma2", layers="model.layers", ln1="input_layernorm", attn="self_attn", qkv_layout="separate",
        q="self_attn.q_proj", k="self_attn.k_proj", v="self_attn.v_proj", qkv=None, o="self_attn.o_proj",
        pattern=None, mlp="mlp", ln_final="model.norm", unembed="lm_head", embed="model.embed_tokens",
        pos_embed=None, normalization="rmsnorm", positional="rotary", ln2="pre_feedforward_layernorm",
        attn_post="post_attention_layernorm", mlp_post="post_feedforward_layernorm", norm_offset=1.0,
    ),
}

# Hugging Face ``config.model_type`` -> family. Llama-layout models (Mistral, Qwen-2 with its q/k/v biases)
# share the "llama" row.
HF_MODEL_TYPES = {"gpt2": "gpt2", "gpt_neox": "gpt_neox", "llama": "llama", "mistral": "llama", "qwen2": "llama",
                  "gemma2": "gemma2"}


def get_path(root, path: str):
    """Follow a dotted module path (``"model.layers"``) from ``root`` (a module or an nnsight envoy)."""
    obj = root
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj
