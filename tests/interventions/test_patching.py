"""Activation patching and ablation against a plain-torch-hooks reference."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from circuitry.errors import InputError
from circuitry.interventions import ablate_heads, activation_patch
from circuitry.metrics import Targets, logit_diff, loss
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from circuitry.zoo.arch import ZooConfig, ZooTransformer

V = 40


def _gpt2():
    torch.manual_seed(1)
    m = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=V, n_positions=32,
                                   bos_token_id=0, eos_token_id=0))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return m.eval()


def _zoo():
    torch.manual_seed(2)
    m = ZooTransformer(ZooConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, d_vocab=V, n_ctx=32))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return m.eval()


def _proj(module, layer):
    if hasattr(module, "blocks"):
        return module.blocks[layer].attn.o_proj
    return module.transformer.h[layer].attn.c_proj


def _logits(module, ids, hooks=()):
    handles = [proj.register_forward_pre_hook(fn) for proj, fn in hooks]
    try:
        with torch.no_grad():
            out = module(ids)
    finally:
        for h in handles:
            h.remove()
    return out.logits if hasattr(out, "logits") else out


def _reference_head_patch(module, base, src, n_layers, n_heads, dh, metric, positions=None):
    """Plain torch: for every (layer, head[, position]) run ``base`` with that head's z from ``src``."""
    cache = {}
    hooks = [(_proj(module, l), (lambda l: lambda mod, a: cache.__setitem__(l, a[0].clone()))(l))
             for l in range(n_layers)]
    _logits(module, src, hooks)
    out = {}
    for l in range(n_layers):
        for h in range(n_heads):
            for p in positions or [None]:
                def fn(mod, a, l=l, h=h, p=p):
                    z = a[0].clone()
                    sl = slice(None) if p is None else slice(p, p + 1)
                    z[:, sl, h * dh:(h + 1) * dh] = cache[l][:, sl, h * dh:(h + 1) * dh]
                    return (z,)
                out[(l, h, p)] = metric(_logits(module, base, [(_proj(module, l), fn)]))
    return out


def _shipped():
    from circuitry.zoo import load_zoo

    return load_zoo("attn-only-2l")[0]


@pytest.fixture(scope="module", params=["gpt2", "zoo", "shipped"])
def setup(request):
    module = {"gpt2": _gpt2, "zoo": _zoo, "shipped": _shipped}[request.param]()
    model = load_model(module)
    data = induction_pairs(6, block_len=5, vocab_size=model.info.d_vocab, seed=3)
    pos, ans, foil = data.targets()
    return module, model, data, Targets(pos, ans, foil)


@pytest.mark.parametrize("direction", ["noising", "denoising"])
def test_per_head_patching_matches_reference(setup, direction):
    module, model, data, t = setup
    res = activation_patch(model, data, site="z", direction=direction, progress=False)
    base, src = (data.clean_ids(), data.corrupted_ids())
    if direction == "denoising":
        base, src = src, base
    i = model.info
    ref = _reference_head_patch(module, base, src, i.n_layers, i.n_heads, i.d_head,
                                lambda lg: logit_diff(lg, t).mean().item())
    got = res.metric_mean.numpy()
    assert res.effect.axes == ("layer", "head")
    for (l, h, _), v in ref.items():
        assert got[l, h] == pytest.approx(v, abs=1e-4)
    assert abs(got - got.mean()).max() > 1e-3  # heads differ: the comparison is not vacuous


def test_per_position_patching_matches_reference(setup):
    module, model, data, t = setup
    res = activation_patch(model, data, site="head_out", direction="noising", per_position=True, progress=False)
    positions = [2, 7, 9]
    i = model.info
    ref = _reference_head_patch(module, data.clean_ids(), data.corrupted_ids(), i.n_layers, i.n_heads, i.d_head,
                                lambda lg: loss(lg, t).mean().item(), positions=positions)
    res_loss = activation_patch(model, data, site="z", direction="noising", per_position=True, metric="loss",
                                progress=False).metric_mean.numpy()
    assert res.effect.axes == ("layer", "head", "position")
    for (l, h, p), v in ref.items():
        assert res_loss[l, h, p] == pytest.approx(v, abs=1e-4)


def test_stacked_and_single_patches_agree(setup):
    _, model, data, _ = setup
    a = activation_patch(model, data, site="q", direction="noising", progress=False)
    b = activation_patch(model, data, site="q", direction="noising", progress=False, max_rows=len(data))
    assert abs(a.metric_mean.numpy() - b.metric_mean.numpy()).max() <= 1e-5


def test_patching_the_whole_residual_stream_gives_the_source_run(setup):
    _, model, data, _ = setup
    den = activation_patch(model, data, site="resid_pre", direction="denoising", layers=[0], progress=False)
    noi = activation_patch(model, data, site="resid_pre", direction="noising", layers=[0], progress=False)
    assert den.effect.numpy()[0] == pytest.approx(1.0, abs=1e-5)
    assert noi.effect.numpy()[0] == pytest.approx(0.0, abs=1e-5)
    assert den.clean_mean != pytest.approx(den.corrupted_mean, abs=1e-3)


def test_result_round_trips_json(setup):
    _, model, data, _ = setup
    res = activation_patch(model, data, site="attn_out", direction="noising", progress=False)
    again = type(res).model_validate_json(res.model_dump_json())
    assert again == res
    assert res.provenance.dataset_sha256 == data.sha256()


def test_zero_ablation_matches_reference(setup):
    module, model, data, t = setup
    ids = data.clean_ids()
    sets = [["L0H1"], ["L0H1", "L1H3"], ["L1H0", "L1H2"]]
    got = ablate_heads(model, ids, sets, t, method="zero", metric="loss")
    dh = model.info.d_head

    def zero(heads):
        def make(l):
            def fn(mod, a):
                z = a[0].clone()
                for hl, h in heads:
                    if hl == l:
                        z[..., h * dh:(h + 1) * dh] = 0
                return (z,)
            return fn
        return [(_proj(module, l), make(l)) for l in range(2)]

    for i, hs in enumerate([[(0, 1)], [(0, 1), (1, 3)], [(1, 0), (1, 2)]]):
        torch.testing.assert_close(got[i], loss(_logits(module, ids, zero(hs)), t), rtol=0, atol=1e-5)


def test_mean_and_resample_ablation_use_reference(setup):
    _, model, data, t = setup
    ids = data.clean_ids()
    ref = ids[:1]  # a single reference prompt: mean ablation == resampling from it == patching from it
    m = ablate_heads(model, ids, [["L1H2"]], t, method="mean", reference_ids=ref)
    r = ablate_heads(model, ids, [["L1H2"]], t, method="resample", reference_ids=ref)
    torch.testing.assert_close(m, r, rtol=0, atol=1e-5)
    z = ablate_heads(model, ids, [["L1H2"]], t, method="zero")
    assert (m - z).abs().max() > 1e-4


def test_bad_inputs_rejected(setup):
    _, model, data, t = setup
    with pytest.raises(InputError, match="site='logits'"):
        activation_patch(model, data, site="logits")
    with pytest.raises(InputError, match="direction='both'"):
        activation_patch(model, data, site="z", direction="both")
    with pytest.raises(InputError, match="L5H0"):
        ablate_heads(model, data.clean_ids(), [["L5H0"]], t)


@pytest.mark.parametrize("site", ["z", "k", "attn_out"])
def test_skipping_earlier_layers_gives_the_same_result(setup, site):
    _, model, data, _ = setup
    a = activation_patch(model, data, site=site, direction="denoising", progress=False, skip_layers=True,
                         max_rows=2 * len(data))
    b = activation_patch(model, data, site=site, direction="denoising", progress=False, skip_layers=False)
    assert abs(a.metric_mean.numpy() - b.metric_mean.numpy()).max() <= 1e-5
    assert abs(a.per_prompt.numpy() - b.per_prompt.numpy()).max() <= 1e-5


def test_start_rejects_edits_before_the_start_layer(setup):
    _, model, data, _ = setup
    ids = data.clean_ids()
    resid = model.run(ids, reads=[("resid_pre", 1)])[("resid_pre", 1)]
    with pytest.raises(InputError, match="start layer 1"):
        model.run(ids, reads=[("z", 0)], start=(1, resid))
    torch.testing.assert_close(model.run(ids, start=(1, resid)).logits, model.logits(ids), rtol=0, atol=1e-5)
