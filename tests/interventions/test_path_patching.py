"""Path patching against an independent plain-torch implementation of Wang et al.'s Algorithm 1 (the hook
reference of ``tests/models/hf_families.py``, shared with the per-family tests)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from circuitry.errors import InputError
from circuitry.interventions.path_patching import path_patch
from circuitry.metrics import Targets, logit_diff
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from tests.models import hf_families as plain

V, NL, NH, DH = 40, 3, 4, 8
D = NH * DH


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(5)
    m = GPT2LMHeadModel(GPT2Config(n_layer=NL, n_head=NH, n_embd=D, vocab_size=V, n_positions=32,
                                   bos_token_id=0, eos_token_id=0)).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.2)
    data = induction_pairs(5, block_len=5, vocab_size=V, seed=9)
    return m, load_model(m), data


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_path_patching_matches_plain_torch_algorithm_1(gpt2, kind):
    m, model, data = gpt2
    pos, ans, foil = data.targets()
    t = Targets(pos, ans, foil)
    res = path_patch(model, data, senders=["L0H1", "L1H2"], kinds=(kind,), direction="noising", progress=False)
    checked = 0
    for (s, r, kd), raw in zip(res.paths, res.metric_mean):
        if kd == "out":
            continue
        with torch.no_grad():
            ref = logit_diff(plain.path_patch_reference(m, data.clean_ids(), data.corrupted_ids(), s, r, kd), t)
        assert raw == pytest.approx(ref.mean().item(), abs=1e-4), (s, r, kd)
        checked += 1
    assert checked == NH * 2 + NH  # L0H1 -> layers 1, 2; L1H2 -> layer 2
    assert max(res.metric_mean) - min(res.metric_mean) > 1e-3  # paths differ


def test_logits_receiver_is_the_frozen_run(gpt2):
    m, model, data = gpt2
    pos, ans, foil = data.targets()
    t = Targets(pos, ans, foil)
    res = path_patch(model, data, senders=["L2H0"], kinds=("k",), progress=False)
    assert res.paths == [("L2H0", "logits", "out")]
    # last-layer sender: freezing changes nothing else, so the path to the logits == patching the head
    z = {}
    with torch.no_grad():
        plain.forward(m, data.corrupted_ids(), plain.z_hooks(m, 2, lambda v: z.setdefault("z", v.clone())))

        def fn(v):
            v = v.clone()
            v[..., 0:DH] = z["z"][..., 0:DH]
            return v

        ref = logit_diff(plain.forward(m, data.clean_ids(), plain.z_hooks(m, 2, fn)), t).mean().item()
    assert res.metric_mean[0] == pytest.approx(ref, abs=1e-4)


def test_embed_sender_and_receiver_sets(gpt2):
    _, model, data = gpt2
    res = path_patch(model, data, senders=["embed"], receivers=[("L1H0", "q"), ("L2H3", "v")], progress=False)
    assert [p[:2] for p in res.paths] == [("embed", "L1H0"), ("embed", "L2H3"), ("embed", "logits")]
    assert type(res).model_validate_json(res.model_dump_json()) == res


def test_bad_paths_rejected(gpt2):
    _, model, data = gpt2
    with pytest.raises(InputError, match="L9H0"):
        path_patch(model, data, senders=["L9H0"], progress=False)
    with pytest.raises(InputError, match="kinds"):
        path_patch(model, data, kinds=("x",), progress=False)
