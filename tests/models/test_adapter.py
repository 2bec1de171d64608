"""The adapter against plain-torch references, for every supported family (random init, no hub)."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import (GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig,
                          LlamaForCausalLM)

from circuitry.errors import InputError, UnsupportedError
from circuitry.models import Edit, load_model
from circuitry.zoo.arch import ZooConfig, ZooTransformer

V, L, H, D = 50, 2, 4, 32


def _build(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if family in ("llama3", "qwen2", "gemma2"):  # the per-family models of tests/models/hf_families.py
        from tests.models.hf_families import build

        return build(family)
    if family == "zoo":
        m = ZooTransformer(ZooConfig(n_layers=L, n_heads=H, d_model=D, d_head=8, d_vocab=V, n_ctx=32, d_mlp=64))
        for p in m.parameters():  # larger than the 0.02 init so heads differ visibly
            torch.nn.init.normal_(p, std=0.3)
        return m
    if family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_layer=L, n_head=H, n_embd=D, vocab_size=V, n_positions=32,
                                          bos_token_id=0, eos_token_id=0))
    if family == "gpt_neox":
        return GPTNeoXForCausalLM(GPTNeoXConfig(num_hidden_layers=L, num_attention_heads=H, hidden_size=D,
                                                intermediate_size=64, vocab_size=V, max_position_embeddings=32,
                                                bos_token_id=0, eos_token_id=0))
    return LlamaForCausalLM(LlamaConfig(num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=2,
                                        hidden_size=D, intermediate_size=64, vocab_size=V,
                                        max_position_embeddings=32, bos_token_id=0, eos_token_id=0))


FAMILIES = ["zoo", "gpt2", "gpt_neox", "llama", "llama3", "qwen2", "gemma2"]
ADAPTER_FAMILY = {"llama3": "llama", "qwen2": "llama"}  # Llama-layout models share the llama row


@pytest.fixture(scope="module", params=FAMILIES)
def fam(request):
    module = _build(request.param)
    return request.param, module, load_model(module)


def _logits(module, ids):
    with torch.no_grad():
        out = module(ids)
    return out.logits if hasattr(out, "logits") else out


def _o_proj(module, family, layer):
    return {"zoo": lambda: module.blocks[layer].attn.o_proj,
            "gpt2": lambda: module.transformer.h[layer].attn.c_proj,
            "gpt_neox": lambda: module.gpt_neox.layers[layer].attention.dense,
            }.get(family, lambda: module.model.layers[layer].self_attn.o_proj)()


def test_family_and_shapes(fam):
    family, module, m = fam
    assert m.info.family == ADAPTER_FAMILY.get(family, family)
    assert (m.info.n_layers, m.info.n_heads, m.info.d_model) == (L, H, D)
    assert m.info.n_kv_heads == (H if family in ("zoo", "gpt2", "gpt_neox") else 2)


def test_logits_match_module(fam):
    _, module, m = fam
    ids = torch.randint(1, V, (3, 9))
    torch.testing.assert_close(m.logits(ids), _logits(module, ids), rtol=0, atol=1e-6)


def test_rewriting_head_outputs_reproduces_logits(fam):
    _, module, m = fam
    ids = torch.randint(1, V, (3, 9))
    r = m.run(ids, reads=[("head_out", l) for l in range(L)])
    # write back each head's output, perturbed and then restored by a second 'add' edit
    edits = []
    for l in range(L):
        edits += [Edit("head_out", l, r[("head_out", l)] + 1.0), Edit("head_out", l, -1.0, op="add")]
    out = m.run(ids, edits=edits)
    torch.testing.assert_close(out.logits, _logits(module, ids), rtol=0, atol=1e-5)


def test_head_patch_matches_plain_torch_hooks(fam):
    family, module, m = fam
    a, b = torch.randint(1, V, (2, 9)), torch.randint(1, V, (2, 9))
    src = m.run(b, reads=[("z", 0)])[("z", 0)]
    mask = m.mask("z", batch=2, seq=9, heads=[1], positions=[3, 4, 5])
    got = m.run(a, edits=[Edit("z", 0, src, mask)]).logits
    # plain-torch reference: forward pre-hook on the output projection swaps head 1's slice of z
    saved = {}
    proj = _o_proj(module, family, 0)
    h1 = proj.register_forward_pre_hook(lambda mod, args: saved.setdefault("z", args[0].clone()))
    _logits(module, b)
    h1.remove()
    dh = m.info.d_head

    def swap(mod, args):
        z = args[0].clone()
        z[:, 3:6, dh:2 * dh] = saved["z"][:, 3:6, dh:2 * dh]
        return (z,)

    h2 = proj.register_forward_pre_hook(swap)
    try:
        ref = _logits(module, a)
    finally:
        h2.remove()
    assert (ref - _logits(module, a)).abs().max() > 1e-4  # the patch does something
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)


def test_pickled_adapter_runs_the_same_edits(fam):
    """An adapter ships to a worker process: its unpickled copy has its own module and nnsight envoy and
    gives the same edited run; the original is untouched."""
    import pickle

    _, _, m = fam
    ids = torch.randint(1, V, (3, 9))
    edit = [Edit("z", 1, 0.0, m.mask("z", batch=3, seq=9, heads=[1]))]
    again = pickle.loads(pickle.dumps(m))
    assert again.module is not m.module and again.info == m.info and again.weights_sha256 == m.weights_sha256
    patched = m.run(ids, edits=edit, reads=[("z", 1)])
    copy = again.run(ids, edits=edit, reads=[("z", 1)])
    torch.testing.assert_close(copy.logits, patched.logits, rtol=0, atol=0)
    assert float(copy[("z", 1)][:, :, 1].abs().max()) == 0.0
    assert not torch.equal(patched.logits, m.logits(ids))  # the edit did something


def _layer(module, family, layer):
    return {"zoo": lambda: module.blocks[layer], "gpt2": lambda: module.transformer.h[layer],
            "gpt_neox": lambda: module.gpt_neox.layers[layer]}.get(family, lambda: module.model.layers[layer])()


def test_last_layer_runs_at_the_read_positions_only(fam):
    """With a logit slice, the last layer's output projection and MLP run at the sliced positions only:
    torch's FLOP counter finds exactly their matmuls at the other positions missing. The logits there
    equal the full run's, with edits at every layer's ``z``; reading the last layer's ``resid_post``
    turns the trim off."""
    from torch.utils.flop_counter import FlopCounterMode

    from circuitry.models.adapter import LogitSlice

    family, module, m = fam
    b, seq, pos = 3, 9, torch.tensor([2, 8])
    ids = torch.randint(1, V, (b, seq))
    edits = [Edit("z", l, 0.0, m.mask("z", batch=b, seq=seq, heads=[1])) for l in range(L)]

    def run(**kw):
        with FlopCounterMode(display=False) as counter:
            out = m.run(ids, edits=edits, **kw)
        return out, counter.get_total_flops()

    full, _ = run()
    (cut, trimmed), (read, untrimmed) = run(logits_at=LogitSlice(pos)), run(
        logits_at=LogitSlice(pos), reads=[("resid_post", L - 1)])
    torch.testing.assert_close(cut.logits, full.logits[:, pos], rtol=0, atol=1e-5)
    torch.testing.assert_close(read.logits, full.logits[:, pos], rtol=0, atol=1e-5)
    assert read[("resid_post", L - 1)].shape[1] == seq
    last = _layer(module, family, L - 1)
    weights = _o_proj(module, family, L - 1).weight.numel() + sum(
        mod.weight.numel() for name, mod in last.named_modules() if name.startswith("mlp") and hasattr(mod, "weight"))
    assert untrimmed - trimmed == 2 * b * (seq - len(pos)) * weights  # 2 FLOPs per weight, row and skipped position


def _qkv_weights(module, family, layer) -> int:
    lay = _layer(module, family, layer)
    mods = {"zoo": ["attn.q_proj", "attn.k_proj", "attn.v_proj"], "gpt2": ["attn.c_attn"],
            "gpt_neox": ["attention.query_key_value"]}.get(family, ["self_attn.q_proj", "self_attn.k_proj",
                                                                   "self_attn.v_proj"])
    return sum(lay.get_submodule(m).weight.numel() for m in mods)


def test_projections_given_whole_are_not_computed(fam):
    """Setting q, k and v whole (the unedited run's values) then patching one head's query gives the run
    that only patches the query, without computing the q/k/v projections: the FLOP counter finds exactly
    their matmuls missing."""
    from torch.utils.flop_counter import FlopCounterMode

    family, module, m = fam
    b, seq = 3, 9
    ids = torch.randint(1, V, (b, seq))
    base = m.run(ids, reads=[(s, 1) for s in "qkv"])
    patch = Edit("q", 1, torch.randn(m.site_shape("q", b, seq)), m.mask("q", batch=b, seq=seq, heads=[2]))
    whole = [Edit(s, 1, base[(s, 1)].clone()) for s in "qkv"]

    def run(edits):
        with FlopCounterMode(display=False) as counter:
            out = m.run(ids, edits=edits, reads=[("q", 1), ("z", 1)])
        return out, counter.get_total_flops()

    (ref, flops_ref), (out, flops) = run([patch]), run(whole + [patch])
    torch.testing.assert_close(out.logits, ref.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[("q", 1)], ref[("q", 1)], rtol=0, atol=1e-6)
    assert not torch.allclose(ref.logits, base.logits, atol=1e-4)  # the patch did something
    assert flops_ref - flops == 2 * b * seq * _qkv_weights(module, family, 1)


def test_tensor_parallel_adapter_refuses_to_pickle(fam):
    import copy
    import pickle

    _, _, m = fam
    sharded = copy.copy(m)
    sharded.tensor_parallel = True
    with pytest.raises(InputError, match="tensor-parallel model cannot be pickled"):
        pickle.dumps(sharded)


def test_head_out_sums_to_attn_out(fam):
    _, _, m = fam
    ids = torch.randint(1, V, (2, 7))
    r = m.run(ids, reads=[("head_out", 1), ("attn_out", 1)])
    W = m.weights(fold_ln=False)
    torch.testing.assert_close(r[("head_out", 1)].sum(2) + W.b_O[1], r[("attn_out", 1)], rtol=0, atol=1e-5)


def _rotate(family, module, q, k, seq):
    """Apply the model's own rotary embedding to ``[b, h, p, dh]`` queries and keys."""
    if family == "zoo" or family == "gpt2":
        return q, k
    inner = module.gpt_neox if family == "gpt_neox" else module.model
    pos = torch.arange(seq)[None]
    cos, sin = inner.rotary_emb(q, position_ids=pos)
    if family == "gpt_neox":
        from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb
    elif family == "gemma2":
        from transformers.models.gemma2.modeling_gemma2 import apply_rotary_pos_emb
    else:
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    return apply_rotary_pos_emb(q, k, cos, sin)


def test_head_weights_recompute_attention_scores(fam):
    family, module, m = fam
    seq = 8
    ids = torch.randint(1, V, (2, seq))
    reads = [("attn_in", l) for l in range(L)] + [("pattern", l) for l in range(L)]
    r = m.run(ids, reads=reads)
    W = m.weights(fold_ln=False)
    for l in range(L):
        x = r[("attn_in", l)]
        xq = x
        if family == "zoo":  # shortformer: positions join the query/key inputs
            xq = x + W.W_pos[:seq]
        q = torch.einsum("bpd,hde->bhpe", xq, W.W_Q[l]) + W.b_Q[l][None, :, None]
        k = torch.einsum("bpd,hde->bhpe", xq, W.W_K[l]) + W.b_K[l][None, :, None]
        q, k = _rotate(family, module, q, k, seq)
        cfg = getattr(module, "config", None)
        scale = getattr(cfg, "query_pre_attn_scalar", None) or m.info.d_head  # Gemma-2 scales by its own scalar
        scores = q @ k.transpose(-1, -2) / math.sqrt(scale)
        if getattr(cfg, "attn_logit_softcapping", None):  # Gemma-2: c * tanh(scores / c)
            scores = torch.tanh(scores / cfg.attn_logit_softcapping) * cfg.attn_logit_softcapping
        mask = torch.ones(seq, seq, dtype=torch.bool).triu(1)
        if family == "gemma2" and cfg.layer_types[l] == "sliding_attention":  # a query sees its last 4 keys only
            mask |= torch.ones(seq, seq, dtype=torch.bool).tril(-cfg.sliding_window)
        scores = scores.masked_fill(mask, float("-inf"))
        torch.testing.assert_close(scores.softmax(-1), r[("pattern", l)], rtol=0, atol=1e-5)


def test_model_restored_after_error(fam):
    _, module, m = fam
    ids = torch.randint(1, V, (2, 6))
    clean = _logits(module, ids)
    with pytest.raises(Exception):
        m.run(ids, edits=[Edit("z", 0, torch.zeros(5, 5, 5))])  # wrong shape: raises mid-trace
    torch.testing.assert_close(m.logits(ids), clean, rtol=0, atol=0)


def test_bad_site_and_layer_rejected_before_running(fam):
    family, _, m = fam
    ids = torch.randint(1, V, (1, 4))
    with pytest.raises(InputError, match="layer=7"):
        m.run(ids, reads=[("z", 7)])
    with pytest.raises(InputError, match="site='nope'"):
        m.run(ids, reads=[("nope", 0)])
    if family != "zoo":
        with pytest.raises(UnsupportedError, match="pattern"):
            m.run(ids, edits=[Edit("pattern", 0, 0.0)])


def test_gqa_kv_heads_expand_per_query_head():
    m = load_model(_build("llama"))
    W = m.weights(fold_ln=False)
    assert W.W_K.shape == (L, H, D, 8)
    torch.testing.assert_close(W.W_K[0, 0], W.W_K[0, 1])  # heads 0 and 1 share kv head 0
    assert not torch.equal(W.W_K[0, 1], W.W_K[0, 2])
    assert m.info.kv_head(3) == 1


def test_gelu_new_runs_as_the_same_function():
    """GPT-2's Python-composed gelu_new is swapped for the sigmoid form of the tanh GELU: same logits to
    float rounding."""
    import copy

    from transformers.activations import NewGELUActivation

    from circuitry.models.activations import TanhGELU

    original = _build("gpt2").eval()
    for p in original.parameters():  # wide weights so the MLPs matter for the logits
        torch.nn.init.normal_(p, std=0.3)
    m = load_model(copy.deepcopy(original))
    acts = [type(b.mlp.act) for b in m.module.transformer.h]
    assert acts == [TanhGELU] * L and type(original.transformer.h[0].mlp.act) is NewGELUActivation
    ids = torch.randint(1, V, (3, 9))
    ref = _logits(original, ids)
    assert ref.abs().max() > 1.0
    torch.testing.assert_close(m.logits(ids), ref, rtol=0, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize("name", ["NewGELUActivation", "GELUTanh", "FastGELUActivation"])
def test_tanh_gelu_equals_every_hugging_face_form(name):
    import transformers.activations as hf

    from circuitry.models.activations import TANH_GELU_CLASSES, gelu_tanh

    assert name in TANH_GELU_CLASSES
    x = torch.cat([torch.randn(4096) * 3, torch.tensor([0.0, -0.0, 1e-30, 40.0, -40.0, 1e20, -1e20, float("inf"),
                                                        float("-inf")])])
    want = getattr(hf, name)()(x)
    got = gelu_tanh(x)
    torch.testing.assert_close(got, want, rtol=2e-6, atol=5e-7, equal_nan=True)
    # the limits as Hugging Face's: x at +inf, -0 far below, NaN at -inf (where its tanh form gives NaN too)
    assert got[-2] == float("inf") and str(got[-3].item()) == "-0.0" and got[-1].isnan() and want[-1].isnan()
    # under autograd the exact derivative of torch's kernel runs, nothing in place
    g = x[:4096].clone().requires_grad_(True)
    gelu_tanh(g).sum().backward()
    torch.testing.assert_close(g.grad, torch.autograd.grad(torch.nn.functional.gelu(g, approximate="tanh").sum(), g)[0])