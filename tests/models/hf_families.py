"""Tiny random Hugging Face models of every family circuitry supports, and a plain-torch reference for them.

``build(family)`` makes a 2-layer model from a Hugging Face config (random init, no download): GPT-2,
GPT-NeoX/Pythia (parallel residual, partial rotary), Llama-3 (grouped-query attention, ``llama3`` rope
scaling), Qwen-2 (q/k/v biases, grouped-query attention) and Gemma-2 (pre- and post-norms, logit and
attention soft-capping, GeGLU, alternating sliding/full attention with a 4-token window, grouped-query
attention, ``query_pre_attn_scalar``).

The reference is written with forward hooks on the Hugging Face modules only (its own table of module
names below, no circuitry code): each sender's output, a receiver reading ``x + shift``, a head's ``z``
patched, and Wang et al.'s path patching. Tests compare circuitry's numbers with it
(``tests/models/test_families.py``, ``tests/discovery/test_families.py``).
"""

from __future__ import annotations

import torch
import transformers as tf

V, NL, H, HK, DH = 100, 2, 4, 2, 8
D = H * DH
FAMILIES = ["gpt2", "gpt_neox", "llama3", "qwen2", "gemma2"]
KV_HEADS = {"gpt2": H, "gpt_neox": H, "llama3": HK, "qwen2": HK, "gemma2": HK}


def config(family: str):
    """The Hugging Face config of ``family``'s tiny model."""
    common = {"vocab_size": V, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
    sizes = {"num_hidden_layers": NL, "num_attention_heads": H, "hidden_size": D, "intermediate_size": 2 * D,
             "max_position_embeddings": 64}
    if family == "gpt2":
        return tf.GPT2Config(n_layer=NL, n_head=H, n_embd=D, n_positions=64, **common)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(**sizes, use_parallel_residual=True, **common,
                                rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                 "partial_rotary_factor": 0.5})
    if family == "llama3":
        return tf.LlamaConfig(**sizes, num_key_value_heads=HK, tie_word_embeddings=False, **common,
                              rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 16})
    if family == "qwen2":
        return tf.Qwen2Config(**sizes, num_key_value_heads=HK, tie_word_embeddings=False, **common)
    if family == "gemma2":
        return tf.Gemma2Config(**sizes, num_key_value_heads=HK, head_dim=DH, query_pre_attn_scalar=16,
                               sliding_window=4, attn_logit_softcapping=4.0, final_logit_softcapping=6.0,
                               layer_types=["sliding_attention", "full_attention"], **common)
    raise ValueError(family)


def build(family: str, *, seed: int = 0, std: float = 0.3) -> torch.nn.Module:
    """``family``'s tiny model, weights ~ N(0, std) (larger than the default init, so heads differ visibly)."""
    torch.manual_seed(seed)
    cfg = config(family)
    model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and family == "gemma2":
                p.normal_(0, 0.1)  # Gemma norms store gain - 1
            elif "norm" in name or "ln" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
            else:
                p.normal_(0, std)
    return model


# ----------------------------------------------------------------- the plain-torch reference
# module names per family, written out independently of circuitry.models.families
_NAMES = {
    "gpt2": {"layers": "transformer.h", "ln1": "ln_1", "o": "attn.c_proj", "ln2": "ln_2",
             "final": "transformer.ln_f", "mlp": "mlp", "proj": "attn.c_attn"},
    "gpt_neox": {"layers": "gpt_neox.layers", "ln1": "input_layernorm", "o": "attention.dense",
                 "ln2": "post_attention_layernorm", "final": "gpt_neox.final_layer_norm", "mlp": "mlp",
                 "proj": "attention.query_key_value"},
    "llama": {"layers": "model.layers", "ln1": "input_layernorm", "o": "self_attn.o_proj",
              "ln2": "post_attention_layernorm", "final": "model.norm", "mlp": "mlp", "proj": "self_attn.{}_proj"},
    "gemma2": {"layers": "model.layers", "ln1": "input_layernorm", "o": "self_attn.o_proj",
               "ln2": "pre_feedforward_layernorm", "final": "model.norm", "mlp": "post_feedforward_layernorm",
               "proj": "self_attn.{}_proj", "post": "post_attention_layernorm"},
}


def _names(hf) -> dict:
    t = hf.config.model_type
    return _NAMES["llama" if t in ("llama", "qwen2") else t]


def _dims(hf) -> tuple[int, int, int]:
    """``(heads, d_head, d_model)`` from the config."""
    c = hf.config
    h = getattr(c, "num_attention_heads", None) or c.n_head
    d = getattr(c, "hidden_size", None) or c.n_embd
    return h, getattr(c, "head_dim", None) or d // h, d


def _layer(hf, l):
    return hf.get_submodule(_names(hf)["layers"])[l]


def _w_o(hf, l, h):
    """Head ``h``'s rows of the output projection as ``[dh, d]``."""
    DH = _dims(hf)[1]
    o = _layer(hf, l).get_submodule(_names(hf)["o"])
    w = o.weight if hf.config.model_type == "gpt2" else o.weight.T  # GPT-2's Conv1D stores [in, out]
    return w[h * DH:(h + 1) * DH]


def _proj(hf, l, kind):
    """``(module, offset)``: the projection computing ``kind`` of layer ``l`` and where head/group ``i``'s
    slice starts (``offset(i)``)."""
    n, t = _names(hf), hf.config.model_type
    _, DH, D = _dims(hf)
    lay = _layer(hf, l)
    if t == "gpt2":
        return lay.get_submodule(n["proj"]), lambda i: "qkv".index(kind) * D + i * DH
    if t == "gpt_neox":  # fused, laid out [head, (q, k, v), dh]
        return lay.get_submodule(n["proj"]), lambda i: i * 3 * DH + "qkv".index(kind) * DH
    return lay.get_submodule(n["proj"].format(kind)), lambda i: i * DH


def forward(hf, ids, hooks=()):
    """Logits of ``hf`` on ``ids`` with ``hooks`` (``(module, kind, fn)``) attached: kind ``pre`` (forward
    pre-hook), ``prekw`` (one that also sees keyword arguments) or ``fwd`` (forward hook)."""
    handles = [m.register_forward_pre_hook(f, with_kwargs=k == "prekw") if k != "fwd" else m.register_forward_hook(f)
               for m, k, f in hooks]
    try:
        return hf(ids).logits
    finally:
        for h in handles:
            h.remove()


def senders(hf, ids) -> dict[str, torch.Tensor]:
    """Every sender's contribution to the residual stream: ``embed`` (the first layer's input), ``L{l}H{h}``
    (``z_h W_O^h``; behind Gemma-2's post-attention RMSNorm, that times the norm's gain over the RMS of the
    whole projection output) and ``MLP{l}``."""
    n = _names(hf)
    H, DH, _ = _dims(hf)
    NL = len(hf.get_submodule(n["layers"]))
    got, hooks = {}, []
    hooks.append((_layer(hf, 0), "prekw", lambda m, a, k: got.__setitem__("embed", a[0] if a else k["hidden_states"])))
    for l in range(NL):
        lay = _layer(hf, l)
        hooks.append((lay.get_submodule(n["o"]), "pre", lambda m, a, l=l: got.__setitem__(("z", l), a[0])))
        hooks.append((lay.get_submodule(n["o"]), "fwd", lambda m, a, o, l=l: got.__setitem__(("o", l), o)))
        hooks.append((lay.get_submodule(n["mlp"]), "fwd", lambda m, a, o, l=l: got.__setitem__(f"MLP{l}", o)))
    with torch.no_grad():
        forward(hf, ids, hooks)
    for l in range(NL):
        for h in range(H):
            part = got[("z", l)][..., h * DH:(h + 1) * DH] @ _w_o(hf, l, h)
            if "post" in n:
                norm = _layer(hf, l).get_submodule(n["post"])
                o = got[("o", l)]
                part = part * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + norm.eps) * (1 + norm.weight)
            got[f"L{l}H{h}"] = part
    return {k: v.detach() for k, v in got.items() if isinstance(k, str)}


def receiver_hooks(hf, receiver: str, kind: str, shift) -> list:
    """Hooks making one receiver read ``x + shift`` instead of the residual stream ``x``: ``"logits"``,
    ``"MLP{l}"`` (the MLP's norm input; with a parallel residual that is the layer's input) or a head's
    ``kind`` input (``"L1H2"`` for ``q``; ``"L1G0"`` or ``"L1H0"`` without grouped-query attention for
    ``k``/``v``)."""
    n = _names(hf)
    if receiver == "logits":
        return [(hf.get_submodule(n["final"]), "pre", lambda m, a: (a[0] + shift,))]
    if receiver.startswith("MLP"):
        return [(_layer(hf, int(receiver[3:])).get_submodule(n["ln2"]), "pre", lambda m, a: (a[0] + shift,))]
    l, i = int(receiver[1]), int(receiver[3:])
    DH = _dims(hf)[1]
    lay, x_in = _layer(hf, l), {}
    ln1 = lay.get_submodule(n["ln1"])
    proj, off = _proj(hf, l, kind)

    def replace(m, a, o):
        new = m.forward(ln1.forward(x_in["x"] + shift))  # .forward: no hooks
        o = o.clone()
        o[..., off(i):off(i) + DH] = new[..., off(i):off(i) + DH]
        return o

    return [(ln1, "pre", lambda m, a: x_in.__setitem__("x", a[0])), (proj, "fwd", replace)]


def first_layer_input(hf, value) -> list:
    """A pre-hook making the first layer read ``value`` (``[n, p, d]``) instead of the embeddings."""
    def fn(m, args, kwargs):
        if args:
            return (value, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": value}

    return [(_layer(hf, 0), "prekw", fn)]


def z_hooks(hf, l: int, fn) -> list:
    """A pre-hook on layer ``l``'s output projection replacing its input ``z`` by ``fn(z)``."""
    return [(_layer(hf, l).get_submodule(_names(hf)["o"]), "pre", lambda m, a: (fn(a[0]),))]


def head_slice(hf, h: int) -> slice:
    """Head ``h``'s entries of a concatenated ``z``."""
    DH = _dims(hf)[1]
    return slice(h * DH, (h + 1) * DH)


def path_patch_reference(hf, orig, new, sender: str, receiver: str, kind: str) -> torch.Tensor:
    """Wang et al.'s Algorithm 1 with hooks: logits of ``orig`` with ``receiver``'s ``kind`` input (a head,
    or a key/value group) set to what it reads when every head is frozen to its ``orig`` output except
    ``sender`` (``"L0H1"`` or ``"embed"``), patched to its ``new`` output."""
    DH = _dims(hf)[1]
    NL = len(hf.get_submodule(_names(hf)["layers"]))
    z = {"orig": {}, "new": {}}
    for name, ids in (("orig", orig), ("new", new)):
        with torch.no_grad():
            forward(hf, ids, [h for l in range(NL) for h in z_hooks(
                hf, l, lambda t, l=l, name=name: z[name].__setitem__(l, t.clone()) or t)])
    sl, sh = (-1, -1) if sender == "embed" else (int(sender[1]), int(sender[3:]))

    def freeze(l):
        def fn(t):
            v = z["orig"][l].clone()
            if l == sl:
                v[..., head_slice(hf, sh)] = z["new"][l][..., head_slice(hf, sh)]
            return v
        return fn

    hooks = [h for l in range(NL) for h in z_hooks(hf, l, freeze(l))]
    if sender == "embed":
        emb = hf.get_input_embeddings()
        hooks.append((emb, "fwd", lambda m, a, o: m.forward(new)))
    if receiver == "logits":
        with torch.no_grad():
            return forward(hf, orig, hooks)
    rl, ri = int(receiver[1]), int(receiver[3:])
    proj, off = _proj(hf, rl, kind)
    rec = {}
    hooks.append((proj, "fwd", lambda m, a, o: rec.__setitem__("x", o[..., off(ri):off(ri) + DH].clone())))
    with torch.no_grad():
        forward(hf, orig, hooks)

    def patch(m, a, o):
        o = o.clone()
        o[..., off(ri):off(ri) + DH] = rec["x"]
        return o

    with torch.no_grad():
        return forward(hf, orig, [(proj, "fwd", patch)])
