"""Every family against TransformerLens 4.3's ``TransformerBridge`` (the ``dev`` extra) on the same weights.

The tiny random models of ``tests/models/hf_families.py`` (GPT-2, GPT-NeoX/Pythia with a parallel residual,
Llama-3, Qwen-2, Gemma-2) are saved to a folder and booted into the bridge from it, offline. Compared, on
induction pairs, with the metric written by plain indexing (``_tl_logit_diff``):

* head activation patching: circuitry's denoising sweep of ``z`` against
  ``transformer_lens.patching.get_act_patch_attn_head_out_all_pos``;
* exact edge patching, EAP (autograd through the bridge's hooks) and path patching (Wang et al.'s
  Algorithm 1 on the bridge's ``hook_z`` / ``hook_q|k|v``) for head, key/value-group, MLP and logit
  receivers. The bridge's ``hook_k``/``hook_v`` are per key/value head, as circuitry's ``L{l}G{g}``.

The senders' outputs come from the bridge's cache: ``hook_resid_pre`` of layer 0, ``hook_z`` times the head's
rows of ``W_O`` (Gemma-2: divided by ``ln1_post.hook_scale`` and times the norm's gain, the head's share of
the post-attention norm) and ``hook_mlp_out``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from circuitry.discovery import score_edges
from circuitry.interventions import activation_patch
from circuitry.interventions.path_patching import path_patch
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from tests.dev.test_transformer_lens import _tl_logit_diff, _tokenizer
from tests.models import hf_families as ref

pytestmark = pytest.mark.dev
TOL = 1e-4


@pytest.fixture(scope="module", params=ref.FAMILIES)
def fam(request, tmp_path_factory):
    pytest.importorskip("transformer_lens")
    from transformer_lens.model_bridge import TransformerBridge

    torch.set_num_threads(1)
    hf = ref.build(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(folder)
    bridge = TransformerBridge.boot_transformers(str(folder), hf_model=copy.deepcopy(hf),
                                                 tokenizer=_tokenizer(folder), device="cpu")
    data = induction_pairs(4, block_len=4, vocab_size=ref.V, bos=0, seed=1)
    return request.param, hf, bridge, load_model(copy.deepcopy(hf)), data


def test_head_patching_matches_transformer_lens(fam):
    from transformer_lens.patching import get_act_patch_attn_head_out_all_pos

    family, _, bridge, model, data = fam
    ours = activation_patch(model, data, site="z", direction="denoising", progress=False)
    metric = _tl_logit_diff(*data.targets())
    with torch.no_grad():
        _, cache = bridge.run_with_cache(data.clean_ids())
        theirs = get_act_patch_attn_head_out_all_pos(bridge, data.corrupted_ids(), cache, metric, reduce="none",
                                                     baseline=True)
    diff = np.abs(ours.per_prompt.numpy() - theirs.values.numpy()).max()
    assert diff < TOL and np.ptp(theirs.values.numpy().mean(-1)) > 0.05
    print(f"\n{family}: head patching vs TransformerLens max |diff| {diff:.1e}")


def _senders(bridge, hf, ids) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        _, cache = bridge.run_with_cache(ids)
    out = {"embed": cache["blocks.0.hook_resid_pre"]}
    for l in range(ref.NL):
        for h in range(ref.H):
            part = cache[f"blocks.{l}.attn.hook_z"][:, :, h] @ ref._w_o(hf, l, h)
            if f"blocks.{l}.ln1_post.hook_scale" in cache:
                gain = 1 + ref._layer(hf, l).post_attention_layernorm.weight
                part = part / cache[f"blocks.{l}.ln1_post.hook_scale"] * gain
            out[f"L{l}H{h}"] = part
        out[f"MLP{l}"] = cache[f"blocks.{l}.hook_mlp_out"]
    return out


def _with_receiver_shift(bridge, ids, receiver: str, kind: str, shift):
    """Logits of ``ids`` with one receiver reading ``x + shift`` (bridge hooks only)."""
    def add(x, hook):
        return x + shift

    if receiver == "logits":
        return bridge.run_with_hooks(ids, fwd_hooks=[("ln_final.hook_in", add)])
    if receiver.startswith("MLP"):
        return bridge.run_with_hooks(ids, fwd_hooks=[(f"blocks.{receiver[3:]}.ln2.hook_in", add)])
    l, i = int(receiver[1]), int(receiver[3:])
    name, got = f"blocks.{l}.attn.hook_{kind}", {}
    bridge.run_with_hooks(ids, fwd_hooks=[(f"blocks.{l}.ln1.hook_in", add),
                                          (name, lambda x, hook: got.setdefault("x", x[:, :, i]) is None or x)])

    def put(x, hook):
        x = x.clone()
        x[:, :, i] = got["x"]
        return x

    return bridge.run_with_hooks(ids, fwd_hooks=[(name, put)])


def _kv(family: str, g: int, layer: int = 1) -> str:
    return f"L{layer}G{g}" if ref.KV_HEADS[family] < ref.H else f"L{layer}H{g}"


def test_edges_and_paths_match_transformer_lens(fam):
    family, hf, bridge, model, data = fam
    ids, cids = data.clean_ids(), data.corrupted_ids()
    metric = _tl_logit_diff(*data.targets())
    a_clean, a_corr = _senders(bridge, hf, ids), _senders(bridge, hf, cids)
    exact = score_edges(model, data, method="exact", progress=False)
    eap = score_edges(model, data, method="eap", progress=False)
    with torch.no_grad():
        base = float(metric(bridge(ids)).mean())
    edges = [("embed", "MLP0", "out"), ("MLP0", "L1H1", "q"), ("L0H0", _kv(family, 0), "k"),
             ("L0H3", _kv(family, 1), "v"), ("L0H1", "MLP1", "out"), ("MLP1", "logits", "out"),
             ("L1H2", "logits", "out")]
    worst = [0.0, 0.0]
    for s, r, kind in edges:
        delta = a_corr[s] - a_clean[s]
        with torch.no_grad():
            want = float(metric(_with_receiver_shift(bridge, ids, r, kind, delta)).mean()) - base
        eps = torch.zeros((), requires_grad=True)
        (grad,) = torch.autograd.grad(metric(_with_receiver_shift(bridge, ids, r, kind, eps * delta)).mean(), eps)
        name = f"{s}->{r}<{kind}>" if kind != "out" else f"{s}->{r}"
        i = exact.edges.index(name)
        worst = [max(worst[0], abs(exact.score[i] - want)), max(worst[1], abs(eap.score[i] - float(grad)))]
        assert exact.score[i] == pytest.approx(want, abs=TOL), name
        assert eap.score[i] == pytest.approx(float(grad), abs=TOL, rel=TOL), name
    assert np.abs(exact.score).max() > 0.05

    # path patching, Algorithm 1 on the bridge: every head frozen to its clean z but the sender's
    res = path_patch(model, data, senders=["L0H1"], receivers=[("L1H2", "q"), (_kv(family, 1), "k")], progress=False)
    with torch.no_grad():
        _, c_clean = bridge.run_with_cache(ids)
        _, c_corr = bridge.run_with_cache(cids)
    for (s, r, kind), got in zip(res.paths, res.metric_mean):
        l, i = (int(r[1]), int(r[3:])) if r != "logits" else (None, None)

        def freeze(x, hook):
            layer = int(hook.name.split(".")[1])
            new = c_clean[hook.name].clone()
            if layer == 0:
                new[:, :, 1] = c_corr[hook.name][:, :, 1]
            return new

        hooks, rec = [(f"blocks.{k}.attn.hook_z", freeze) for k in range(ref.NL)], {}
        if r != "logits":
            hooks.append((f"blocks.{l}.attn.hook_{kind}", lambda x, hook, i=i, rec=rec:
                          rec.setdefault("x", x[:, :, i].clone()) is None or x))
        with torch.no_grad():
            logits = bridge.run_with_hooks(ids, fwd_hooks=hooks)
            if r != "logits":
                def put(x, hook, i=i, rec=rec):
                    x = x.clone()
                    x[:, :, i] = rec["x"]
                    return x
                logits = bridge.run_with_hooks(ids, fwd_hooks=[(f"blocks.{l}.attn.hook_{kind}", put)])
        want = float(metric(logits).mean())
        worst.append(abs(got - want))
        assert got == pytest.approx(want, abs=TOL), (s, r, kind)
    print(f"\n{family}: vs TransformerLens: exact {worst[0]:.1e}, EAP {worst[1]:.1e}, path patching {max(worst[2:]):.1e}")
