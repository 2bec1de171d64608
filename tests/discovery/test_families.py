"""Every discovery method, path patching and activation patching on a tiny random model of each family
(GPT-2, GPT-NeoX/Pythia with a parallel residual, Llama-3, Qwen-2, Gemma-2), against the plain-torch hook
reference of ``tests/models/hf_families.py`` (forward hooks on the Hugging Face module, no circuitry code):
exact edge patching, EAP and EAP-IG into head, MLP and logit receivers, path patching into query heads and
key/value groups, head activation patching, and the patched forward that ACDC and the faithfulness curves
use (every edge patched = the corrupted run, none = the clean run). The largest differences measured are
printed with ``-s`` and quoted in docs/adapter.md."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from circuitry.discovery import prepare, score_edges
from circuitry.discovery.faithfulness import faithfulness_curves
from circuitry.discovery.runs import evaluate_circuits
from circuitry.interventions import activation_patch
from circuitry.interventions.path_patching import path_patch
from circuitry.metrics import Targets, logit_diff
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from tests.models import hf_families as ref

TOL = 1e-4


@pytest.fixture(scope="module", params=ref.FAMILIES)
def fam(request):
    torch.set_num_threads(1)
    hf = ref.build(request.param)
    data = induction_pairs(4, block_len=4, vocab_size=ref.V, bos=0, seed=1)
    return request.param, hf, load_model(copy.deepcopy(hf)), data


def _kv(family: str, g: int, layer: int = 1) -> str:
    """Key/value receiver ``g`` of ``layer``: its group with grouped-query attention, else its head."""
    return f"L{layer}G{g}" if ref.KV_HEADS[family] < ref.H else f"L{layer}H{g}"


def _edges(family: str, parallel: bool) -> list[tuple[str, str, str]]:
    edges = [("embed", "MLP0", "out"), ("L0H1", "MLP1", "out"), ("MLP0", "L1H0", "q"), ("L0H0", _kv(family, 0), "k"),
             ("L0H2", _kv(family, 1), "v"), ("MLP1", "logits", "out"), ("embed", _kv(family, 1, 0), "v"),
             ("L1H3", "logits", "out"), ("MLP0", "MLP1", "out")]
    if not parallel:  # with a parallel residual a layer's MLP does not read that layer's heads: no such edge
        edges += [("L0H1", "MLP0", "out"), ("L1H2", "MLP1", "out")]
    return edges


def _name(e):
    return f"{e[0]}->{e[1]}<{e[2]}>" if e[2] != "out" else f"{e[0]}->{e[1]}"


def _metric(hf, ids, t, hooks):
    return logit_diff(ref.forward(hf, ids, hooks), t).mean()


def test_exact_and_eap_match_plain_torch(fam):
    family, hf, model, data = fam
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    a_clean, a_corr = ref.senders(hf, ids), ref.senders(hf, cids)
    exact = score_edges(model, data, method="exact", progress=False)
    eap = score_edges(model, data, method="eap", progress=False)
    with torch.no_grad():
        base = float(_metric(hf, ids, t, []))
    worst_exact = worst_eap = 0.0
    for edge in _edges(family, model.info.parallel_residual):
        delta = a_corr[edge[0]] - a_clean[edge[0]]
        with torch.no_grad():
            want = float(_metric(hf, ids, t, ref.receiver_hooks(hf, edge[1], edge[2], delta))) - base
        eps = torch.zeros((), requires_grad=True)
        (grad,) = torch.autograd.grad(_metric(hf, ids, t, ref.receiver_hooks(hf, edge[1], edge[2], eps * delta)), eps)
        i = exact.edges.index(_name(edge))
        worst_exact = max(worst_exact, abs(exact.score[i] - want))
        worst_eap = max(worst_eap, abs(eap.score[i] - float(grad)) / max(1.0, abs(float(grad))))
        assert exact.score[i] == pytest.approx(want, abs=TOL), _name(edge)
        assert eap.score[i] == pytest.approx(float(grad), abs=TOL, rel=TOL), _name(edge)
    assert np.abs(exact.score).max() > 0.05  # the random model reacts to the corruption
    print(f"\n{family}: exact max |diff| {worst_exact:.1e}, EAP max rel diff {worst_eap:.1e}")


def test_eap_ig_matches_plain_torch(fam):
    """EAP-IG (2 steps): the receiver gradient averaged over the first layer's input set to
    ``e_corr + a (e_clean - e_corr)``, ``a`` in {0, 1/2}, with plain hooks."""
    family, hf, model, data = fam
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    a_clean, a_corr = ref.senders(hf, ids), ref.senders(hf, cids)
    ig = score_edges(model, data, method="eap-ig", steps=2, progress=False)
    wants = []
    for edge in [("L0H1", "MLP1", "out"), ("embed", _kv(family, 1), "k"), ("MLP0", "logits", "out")]:
        delta = a_corr[edge[0]] - a_clean[edge[0]]
        want = 0.0
        for a in (0.0, 0.5):
            emb = a_corr["embed"] + a * (a_clean["embed"] - a_corr["embed"])
            eps = torch.zeros((), requires_grad=True)
            hooks = ref.receiver_hooks(hf, edge[1], edge[2], eps * delta) + ref.first_layer_input(hf, emb)
            (grad,) = torch.autograd.grad(_metric(hf, ids, t, hooks), eps)
            want += float(grad) / 2
        assert ig.score[ig.edges.index(_name(edge))] == pytest.approx(want, abs=TOL, rel=TOL), _name(edge)
        wants.append(abs(want))
    assert max(wants) > 0.01


def test_parallel_residual_edges(fam):
    """A parallel-residual MLP reads the layer's input, as its heads do: no edge from a same-layer head."""
    family, _, model, _ = fam
    from circuitry.discovery import edge_set

    es = edge_set(model)
    same_layer = [n for n in es.names if n.startswith("L0H") and n.endswith("->MLP0")]
    assert model.info.parallel_residual == (family == "gpt_neox")
    assert len(same_layer) == (0 if family == "gpt_neox" else ref.H)


def test_path_patching_matches_plain_torch(fam):
    family, hf, model, data = fam
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    receivers = [("L1H2", "q"), (_kv(family, 0), "k"), (_kv(family, 1), "v")]
    res = path_patch(model, data, senders=["embed", "L0H1"], receivers=receivers, progress=False)
    worst = 0.0
    for (s, r, kind), got in zip(res.paths, res.metric_mean):
        want = float(logit_diff(ref.path_patch_reference(hf, ids, cids, s, r, kind), t).mean())
        worst = max(worst, abs(got - want))
        assert got == pytest.approx(want, abs=TOL), (s, r, kind)
    assert len(res.paths) == 2 * 4  # 3 receivers + the logits, per sender
    assert max(abs(m - float(np.mean(res.clean))) for m in res.metric_mean) > 0.05  # the paths do something
    print(f"\n{family}: path patching max |diff| {worst:.1e}")


def test_head_activation_patching_matches_plain_torch(fam):
    family, hf, model, data = fam
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    res = activation_patch(model, data, site="z", direction="denoising", progress=False)
    got = res.metric_mean.numpy()
    z = {}
    with torch.no_grad():
        ref.forward(hf, ids, [h for l in range(ref.NL) for h in ref.z_hooks(hf, l, lambda v, l=l: z.setdefault(l, v))])
        want = np.zeros((ref.NL, ref.H))
        for l in range(ref.NL):
            for h in range(ref.H):
                def swap(v, l=l, h=h):
                    v = v.clone()
                    v[..., ref.head_slice(hf, h)] = z[l][..., ref.head_slice(hf, h)]
                    return v
                want[l, h] = float(_metric(hf, cids, t, ref.z_hooks(hf, l, swap)))
    assert np.abs(got - want).max() < TOL
    assert np.abs(got - np.mean(res.corrupted)).max() > 0.05  # the patches do something
    print(f"\n{family}: activation patching max |diff| {np.abs(got - want).max():.1e}")


def test_patched_forward_acdc_and_faithfulness_run(fam):
    """The patched forward of ACDC and the faithfulness curves: no edge kept = the corrupted run, all kept =
    the clean run (to 1e-4); ACDC and the curves then run on every family, none refused."""
    _, _, model, data = fam
    prep = prepare(model, data)
    E = len(prep.edges)
    vals = evaluate_circuits(model, prep.edges, prep.ids, prep.clean, prep.corr,
                             np.array([np.zeros(E, bool), np.ones(E, bool)]), prep.metric, prep.targets)
    torch.testing.assert_close(vals[0], prep.metric_of(prep.corr), rtol=0, atol=TOL)
    torch.testing.assert_close(vals[1], prep.metric_of(prep.clean), rtol=0, atol=TOL)
    acdc = score_edges(model, data, method="acdc", tau=0.05, progress=False, prepared=prep)
    assert 0 < int(np.sum(acdc.in_circuit)) < E
    eap = score_edges(model, data, method="eap", progress=False, prepared=prep)
    fa = faithfulness_curves(model, data, [eap], n_random=3, n_resamples=50, progress=False, prepared=prep)
    curve = fa.curves[0]
    assert curve.faithfulness[-1] == pytest.approx(1.0, abs=1e-4)
