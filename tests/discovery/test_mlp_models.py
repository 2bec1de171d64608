"""Models with MLPs (a random GPT-2): exact edge patching and EAP into MLP, head and logit receivers
against plain torch hooks on the Hugging Face module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from circuitry.discovery import score_edges
from circuitry.errors import UnsupportedError
from circuitry.metrics import Targets, logit_diff
from circuitry.models import load_model
from circuitry.prompts import induction_pairs

V, NL, NH, DH = 30, 2, 2, 8
D = NH * DH
EDGES = [("L0H1", "MLP0", "out"), ("embed", "MLP0", "out"), ("MLP0", "L1H0", "q"), ("L0H0", "L1H1", "k"),
         ("MLP0", "MLP1", "out"), ("MLP1", "logits", "out"), ("embed", "L0H1", "v")]


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(3)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=NL, n_head=NH, n_embd=D, vocab_size=V, n_positions=32,
                                    bos_token_id=0, eos_token_id=0)).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return hf, load_model(hf), induction_pairs(6, block_len=5, vocab_size=V, seed=2)


def _senders(hf, ids):
    """Every sender's output with plain hooks: embeddings, per-head outputs, MLP outputs."""
    got = {}
    hooks = [hf.transformer.h[0].register_forward_pre_hook(lambda m, a: got.__setitem__("embed", a[0].detach()))]
    for l, blk in enumerate(hf.transformer.h):
        hooks.append(blk.attn.c_proj.register_forward_pre_hook(lambda m, a, l=l: got.__setitem__(("z", l), a[0])))
        hooks.append(blk.mlp.register_forward_hook(lambda m, a, o, l=l: got.__setitem__(f"MLP{l}", o.detach())))
    with torch.no_grad():
        hf(ids)
    for h in hooks:
        h.remove()
    for l, blk in enumerate(hf.transformer.h):
        W = blk.attn.c_proj.weight  # Conv1D: [in, out]
        for h in range(NH):
            got[f"L{l}H{h}"] = got[("z", l)][..., h * DH:(h + 1) * DH] @ W[h * DH:(h + 1) * DH]
    return got


def _metric_with(hf, ids, t, edge, delta, eps):
    """logit_diff (mean) with the receiver of ``edge`` reading ``x + eps * delta``."""
    src, dst, kind = edge
    hooks = []
    if dst == "logits":
        hooks.append(hf.transformer.ln_f.register_forward_pre_hook(lambda m, a: (a[0] + eps * delta,)))
    elif dst.startswith("MLP"):
        hooks.append(hf.transformer.h[int(dst[3:])].ln_2.register_forward_pre_hook(lambda m, a: (a[0] + eps * delta,)))
    else:
        l, h = int(dst[1]), int(dst[3])
        blk = hf.transformer.h[l]
        x_in = {}
        hooks.append(blk.ln_1.register_forward_pre_hook(lambda m, a: x_in.__setitem__("x", a[0])))
        off = "qkv".index(kind) * D + h * DH

        def replace(m, a, o):
            new = blk.ln_1(x_in["x"] + eps * delta) @ m.weight + m.bias
            o = o.clone()
            o[..., off:off + DH] = new[..., off:off + DH]
            return o
        hooks.append(blk.attn.c_attn.register_forward_hook(replace))
    try:
        return logit_diff(hf(ids).logits, t).mean()
    finally:
        for hk in hooks:
            hk.remove()


def test_exact_and_eap_with_mlps_match_plain_torch(gpt2):
    hf, model, data = gpt2
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    a_clean, a_corr = _senders(hf, ids), _senders(hf, cids)
    exact = score_edges(model, data, method="exact", progress=False)
    eap = score_edges(model, data, method="eap", progress=False)
    for edge in EDGES:
        delta = a_corr[edge[0]] - a_clean[edge[0]]
        with torch.no_grad():
            ref_exact = float(_metric_with(hf, ids, t, edge, delta, 1.0) - _metric_with(hf, ids, t, edge, delta, 0.0))
        eps = torch.zeros((), requires_grad=True)
        (g,) = torch.autograd.grad(_metric_with(hf, ids, t, edge, delta, eps), eps)
        name = f"{edge[0]}->{edge[1]}<{edge[2]}>" if edge[2] != "out" else f"{edge[0]}->{edge[1]}"
        i = exact.edges.index(name)
        assert exact.score[i] == pytest.approx(ref_exact, abs=1e-4, rel=1e-4), name
        assert eap.score[i] == pytest.approx(float(g), abs=1e-4, rel=1e-3), name
    assert np.abs(exact.score).max() > 0.01  # the random model does react to the corruption (scores ~1e-2)


def test_parallel_residual_patching_is_refused_with_a_fix():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    hf = GPTNeoXForCausalLM(GPTNeoXConfig(num_hidden_layers=1, num_attention_heads=2, hidden_size=16,
                                          intermediate_size=32, vocab_size=30, max_position_embeddings=32,
                                          use_parallel_residual=True, bos_token_id=0, eos_token_id=0)).eval()
    model = load_model(hf)
    data = induction_pairs(4, block_len=4, vocab_size=30, seed=0)
    with pytest.raises(UnsupportedError, match="method='eap' or 'eap-ig'"):
        score_edges(model, data, method="exact", progress=False)
    assert len(score_edges(model, data, method="eap", progress=False).edges) > 0
