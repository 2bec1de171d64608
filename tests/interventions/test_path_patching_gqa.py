"""Path patching on grouped-query attention: one key/value measurement per (sender, key/value group),
checked against a plain-torch implementation of Wang et al.'s Algorithm 1 on a Llama model."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from circuitry.errors import InputError
from circuitry.interventions.path_patching import path_patch
from circuitry.labels import group_heads, parse_group, parse_head
from circuitry.metrics import Targets, logit_diff
from circuitry.models import load_model
from circuitry.prompts import induction_pairs

V, NL, NH, NKV, DH = 40, 3, 4, 2, 8
D = NH * DH
GS = NH // NKV


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(3)
    m = LlamaForCausalLM(LlamaConfig(num_hidden_layers=NL, num_attention_heads=NH, num_key_value_heads=NKV,
                                     hidden_size=D, intermediate_size=2 * D, vocab_size=V,
                                     max_position_embeddings=32, bos_token_id=0, eos_token_id=0)).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.2)
    data = induction_pairs(5, block_len=5, vocab_size=V, seed=9)
    return m, load_model(m), data


def _attn(m, l):
    return m.model.layers[l].self_attn


def _run(m, ids, pre=None, post=None):
    """Forward with o_proj pre-hooks ``pre[l]`` and projection forward hooks ``post[(l, "q"|"k"|"v")]``."""
    hs = [_attn(m, l).o_proj.register_forward_pre_hook(f) for l, f in (pre or {}).items()]
    hs += [getattr(_attn(m, l), f"{kd}_proj").register_forward_hook(f) for (l, kd), f in (post or {}).items()]
    try:
        with torch.no_grad():
            return m(ids).logits
    finally:
        for h in hs:
            h.remove()


def _reference(m, orig, new, sender, layer, index, kind, t):
    """Algorithm 1 in plain torch: sender head ``(l, h)`` -> the ``kind`` projection output of ``index``
    (a query head for q, a key/value head for k and v) in ``layer``."""
    z = {"orig": {}, "new": {}}
    for name, ids in (("orig", orig), ("new", new)):
        _run(m, ids, pre={l: (lambda l, name=name: lambda mod, a: z[name].__setitem__(l, a[0].clone()))(l)
                          for l in range(NL)})
    sl, sh = sender

    def freeze(l):
        def fn(mod, a):
            v = z["orig"][l].clone()
            if l == sl:
                v[..., sh * DH:(sh + 1) * DH] = z["new"][l][..., sh * DH:(sh + 1) * DH]
            return (v,)
        return fn

    rec = {}
    _run(m, orig, pre={l: freeze(l) for l in range(NL)},
         post={(layer, kind): lambda mod, a, o: rec.__setitem__("x", o.clone())})

    def patch(mod, a, o):
        o = o.clone()
        o[..., index * DH:(index + 1) * DH] = rec["x"][..., index * DH:(index + 1) * DH]
        return o

    return logit_diff(_run(m, orig, post={(layer, kind): patch}), t).mean().item()


def test_one_key_value_measurement_per_group_matches_plain_torch(llama):
    m, model, data = llama
    pos, ans, foil = data.targets()
    t = Targets(pos, ans, foil)
    res = path_patch(model, data, senders=["L0H1", "L1H2"], direction="noising", progress=False)
    heads = [p for p in res.paths if p[2] != "out"]
    # L0H1 -> layers 1, 2; L1H2 -> layer 2: per later layer NH query heads, NKV groups for k and for v
    assert len(heads) == (2 + 1) * (NH + 2 * NKV)
    assert len(set(res.paths)) == len(res.paths)
    assert {r for _, r, kd in heads if kd != "q"} == {f"L{l}G{g}" for l in (1, 2) for g in range(NKV)}
    assert all(parse_head(r) for _, r, kd in heads if kd == "q")
    assert res.groups == {f"L{l}G{g}": group_heads(f"L{l}G{g}", GS) for l in (1, 2) for g in range(NKV)}
    assert res.groups["L1G1"] == ["L1H2", "L1H3"]
    for (s, r, kd), raw in zip(res.paths, res.metric_mean):
        if kd == "out":
            continue
        layer, index = parse_head(r) if kd == "q" else parse_group(r)
        ref = _reference(m, data.clean_ids(), data.corrupted_ids(), parse_head(s), layer, index, kd, t)
        assert raw == pytest.approx(ref, abs=1e-4), (s, r, kd)
    k_vals = [v for (s, r, kd), v in zip(res.paths, res.metric_mean) if kd == "k" and s == "L0H1"]
    assert max(k_vals) - min(k_vals) > 1e-4  # the groups differ: not one number repeated


def test_query_head_receivers_name_their_group_once(llama):
    _, model, data = llama
    res = path_patch(model, data, senders=["embed"], progress=False,
                     receivers=[("L1H0", "k"), ("L1H1", "k"), ("L1G0", "k"), ("L1H3", "v"), ("L1H1", "q")])
    assert res.paths == [("embed", "L1G0", "k"), ("embed", "L1G1", "v"), ("embed", "L1H1", "q"),
                         ("embed", "logits", "out")]
    full = path_patch(model, data, senders=["embed"], progress=False)
    for p, v in zip(res.paths, res.metric_mean):
        assert v == pytest.approx(full.metric_mean[full.paths.index(p)], abs=1e-5)
    assert type(res).model_validate_json(res.model_dump_json()) == res
    with pytest.raises(InputError, match="per query head"):
        path_patch(model, data, senders=["embed"], receivers=[("L1G0", "q")], progress=False)
    with pytest.raises(InputError, match="L1G2"):
        path_patch(model, data, senders=["embed"], receivers=[("L1G2", "k")], progress=False)


@pytest.mark.slow
def test_zoo_gqa_paths_count_each_group_once():
    model = load_model("zoo:llama-2l-gqa")
    i = model.info
    assert (i.n_heads, i.n_kv_heads) == (8, 2)
    data = induction_pairs(4, block_len=8, vocab_size=i.d_vocab, seed=0)
    res = path_patch(model, data, progress=False)
    senders = 1 + i.n_layers * i.n_heads
    per_layer = i.n_heads + 2 * i.n_kv_heads  # q per query head, k and v per group
    # embed -> layers 0 and 1, the 8 layer-0 heads -> layer 1, every sender -> logits (was 257: 24 per layer)
    assert len(res.paths) == (2 + i.n_heads) * per_layer + senders == 137
    kv = [(s, r, kd) for s, r, kd in res.paths if kd in ("k", "v")]
    assert len(kv) == len(set(kv)) == (2 + i.n_heads) * 2 * i.n_kv_heads
    assert {r for _, r, _ in kv} == {"L0G0", "L0G1", "L1G0", "L1G1"}
    assert res.groups["L1G0"] == ["L1H0", "L1H1", "L1H2", "L1H3"]
    assert res.groups["L1G1"] == ["L1H4", "L1H5", "L1H6", "L1H7"]


def test_discovery_edges_name_key_value_groups_like_path_patching(llama):
    from circuitry.discovery import edge_set, induction_reference

    _, model, data = llama
    es = edge_set(model)
    res = path_patch(model, data, progress=False)
    head_triples = {t for t in es.triples if t[2] in ("q", "k", "v") and not t[0].startswith("MLP")}
    assert head_triples == {p for p in res.paths if p[2] != "out"}  # the same receivers, the same names
    assert len(es.triples) == len(set(es.triples))
    i = es.index["L0H1->L1G1<k>"]
    assert es.mib_names[i] == "a0.h1->a1.h2<k>"  # MIB names a group after its first query head
    assert es.lookup(["L0H1->L1H3<k>", ("L0H1", "L1H2", "k"), "L0H1->L1G1<k>"]) == [i, i, i]
    assert es.lookup(["L0H1->L1H3<q>"]) != [i]
    # the reference induction circuit on a GQA model: K into the groups of the induction heads, each once
    ref = es.mask(induction_reference("L0H1", ["L1H2", "L1H3"]))
    assert sum(ref[es.lookup([f"L0H1->L1G{g}<k>" for g in range(NKV)])]) == 1
    with pytest.raises(InputError, match="not an edge"):
        es.lookup(["L0H1->L1G2<k>"])


def test_models_without_gqa_keep_head_labels():
    model = load_model("zoo:attn-only-2l")
    i = model.info
    assert i.n_kv_heads == i.n_heads
    data = induction_pairs(4, block_len=8, vocab_size=i.d_vocab, seed=0)
    res = path_patch(model, data, senders=["L0H3"], progress=False)
    assert res.groups == {}
    # the order of every earlier release: head by head, q, k, v (statistics seed each path by its position)
    assert res.paths == [("L0H3", f"L1H{h}", kd) for h in range(i.n_heads) for kd in ("q", "k", "v")] + [
        ("L0H3", "logits", "out")]
    one = path_patch(model, data, senders=["L0H3"], receivers=[("L1H5", "k"), ("L1G5", "k")], progress=False)
    assert one.paths[:1] == [("L0H3", "L1H5", "k")] and len(one.paths) == 2  # a group is its one head
    assert one.metric_mean[0] == pytest.approx(res.metric_mean[res.paths.index(("L0H3", "L1H5", "k"))], abs=1e-5)
    assert res.effect_of("L0H3", "L1H5", "k") == res.effect[res.paths.index(("L0H3", "L1H5", "k"))]
