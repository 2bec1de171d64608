"""Edge scores: exact = path patching, EAP = an independent autograd computation, sign convention,
ROC AUC against the reference induction circuit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuitry.discovery import roc_auc, score_edges
from circuitry.errors import InputError
from circuitry.interventions import path_patch
from circuitry.metrics import Targets, logit_diff
from circuitry.prompts import PairDataset, PromptPair


def test_exact_equals_path_patching(zoo, induction, scored):
    ex = scored["exact"]
    pp = path_patch(zoo, induction, senders=["embed", "L0H3", "L1H5"], direction="noising", progress=False)
    clean = float(np.mean(ex.clean))
    checked = 0
    for (s, r, k), mean in zip(pp.paths, pp.metric_mean):
        name = f"{s}->{r}<{k}>" if k != "out" else f"{s}->{r}"
        assert ex.score[ex.edges.index(name)] == pytest.approx(mean - clean, abs=2e-4)
        checked += 1
    assert checked == 24 + 24 + 24 + 3  # embed into both layers, L0H3 into layer 1, three logits paths


def _plain_eap(module, data, edges):
    """EAP scores of ``edges`` with plain torch hooks on the zoo module: d m / d eps at eps = 0, where the
    receiver's input is ``x + eps * (a_u(corrupted) - a_u(clean))``."""
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    blocks, dh = module.blocks, module.cfg.d_head

    def sender_outputs(x):
        z = {}
        hs = [b.attn.o_proj.register_forward_pre_hook(lambda m, a, l=l: z.__setitem__(l, a[0].detach()))
              for l, b in enumerate(blocks)]
        with torch.no_grad():
            module(x)
        for h in hs:
            h.remove()
        out = {"embed": module.embed(x).detach()}
        for l, b in enumerate(blocks):
            W = b.attn.o_proj.weight
            for h in range(module.cfg.n_heads):
                out[f"L{l}H{h}"] = z[l][..., h * dh:(h + 1) * dh] @ W[:, h * dh:(h + 1) * dh].T
        return out

    a_clean, a_corr = sender_outputs(ids), sender_outputs(cids)
    pos = module.pos_embed(torch.arange(ids.shape[1]))
    scores = []
    for src, dst, kind in edges:
        delta = a_corr[src] - a_clean[src]
        eps = torch.zeros((), requires_grad=True)
        hooks = []
        if dst == "logits":
            hooks.append(module.ln_final.register_forward_pre_hook(lambda m, a: (a[0] + eps * delta,)))
        else:
            l, h = int(dst[1]), int(dst[3])
            blk = blocks[l]
            x_in = {}
            hooks.append(blk.register_forward_pre_hook(lambda m, a: x_in.__setitem__("x", a[0])))
            proj = getattr(blk.attn, f"{kind}_proj")

            def replace(m, a, o, proj=proj, h=h, kind=kind, blk=blk):
                y = blk.ln1(x_in["x"] + eps * delta)
                new = torch.nn.functional.linear(y + pos if kind in "qk" else y, proj.weight, proj.bias)
                o = o.clone()
                o[..., h * dh:(h + 1) * dh] = new[..., h * dh:(h + 1) * dh]
                return o
            hooks.append(proj.register_forward_hook(replace))
        m = logit_diff(module(ids), t).mean()
        (g,) = torch.autograd.grad(m, eps)
        for hk in hooks:
            hk.remove()
        scores.append(float(g))
    return scores


def test_eap_equals_plain_autograd_and_sign(zoo, induction, scored):
    edges = [("L1H0", "logits", "out"), ("L0H3", "L1H0", "k"), ("embed", "L1H2", "q"), ("embed", "L0H3", "v"),
             ("L0H1", "L1H5", "v"), ("embed", "logits", "out")]
    ref = _plain_eap(zoo.module, induction, edges)
    eap = scored["eap"]
    got = [eap.score[eap.edges.index(f"{s}->{d}<{k}>" if k != "out" else f"{s}->{d}")] for s, d, k in edges]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-5)
    # sign convention: score ~ m(edge from corrupted) - m(clean); an induction head's logits edge lowers the
    # logit difference when corrupted, so exact, EAP and EAP-IG all score it negative
    for m in ("exact", "eap", "eap-ig"):
        s = scored[m]
        assert s.score[s.edges.index("L1H0->logits")] < -0.5
        assert s.share[s.edges.index("L1H0->logits")] > 0  # share of the gap: positive = carries the behaviour


@pytest.mark.parametrize("method", ["exact", "eap-ig"])
def test_roc_auc_against_reference_circuit(scored, reference, method):
    assert roc_auc(scored[method], reference) >= 0.9


def test_eap_ranks_well_but_is_less_faithful_than_eap_ig(scored, reference):
    # measured for docs/discovery.md: EAP's ranking reaches a high AUC, but its linear approximation puts
    # wrong-signed embed->K edges near the top (see the faithfulness test)
    assert roc_auc(scored["eap"], reference) >= 0.85
    eap = scored["eap"]
    assert eap.score[eap.edges.index("embed->L1H0<k>")] > 0
    ex = scored["exact"]
    assert ex.score[ex.edges.index("embed->L1H0<k>")] < 0


def test_eap_ig_with_many_steps_approaches_exact_on_logit_edges(zoo, induction, prepared, scored):
    # integrated gradients along the input path: closer to the exact number than one gradient
    ig = score_edges(zoo, induction, method="eap-ig", steps=20, prepared=prepared, progress=False)
    i = ig.edges.index("L1H0->logits")
    ex, eap = scored["exact"].score[i], scored["eap"].score[i]
    assert abs(ig.score[i] - ex) < abs(eap - ex)


def test_unequal_lengths_and_bad_options_rejected_up_front(zoo, induction):
    with pytest.raises(InputError, match="tokenize to 4 and 5 tokens"):
        PairDataset(task="t", pairs=(PromptPair(clean=(0, 1, 2, 3), corrupted=(0, 1, 2, 3, 4), positions=(2,),
                                                answers=(3,), foils=(4,)),))
    bad = PairDataset.model_construct(task="t", pairs=(PromptPair.model_construct(
        clean=(0, 1, 2, 3), corrupted=(0, 1, 2), positions=(2,), answers=(3,), foils=(4,)),), params={})
    with pytest.raises(InputError, match="pair 0: clean and corrupted prompts tokenize to 4 and 3"):
        score_edges(zoo, bad, method="eap", progress=False)
    with pytest.raises(InputError, match="method='eap2'"):
        score_edges(zoo, induction, method="eap2")
    with pytest.raises(InputError, match="steps=0"):
        score_edges(zoo, induction, method="eap-ig", steps=0)
    with pytest.raises(InputError, match="tau=-1"):
        score_edges(zoo, induction, method="acdc", tau=-1)
