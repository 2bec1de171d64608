"""Models with MLPs (a random GPT-2 with 2 heads of 8 dimensions): exact edge patching and EAP into MLP,
head and logit receivers against the plain-torch hook reference of ``tests/models/hf_families.py``. Every
other family, including GPT-NeoX's parallel residual, is checked the same way in ``test_families.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from circuitry.discovery import score_edges
from circuitry.metrics import Targets, logit_diff
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from tests.models import hf_families as ref

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


def _metric_with(hf, ids, t, edge, shift):
    """logit_diff (mean) with the receiver of ``edge`` reading ``x + shift``."""
    return logit_diff(ref.forward(hf, ids, ref.receiver_hooks(hf, edge[1], edge[2], shift)), t).mean()


def test_exact_and_eap_with_mlps_match_plain_torch(gpt2):
    hf, model, data = gpt2
    ids, cids = data.clean_ids(), data.corrupted_ids()
    t = Targets(*data.targets())
    a_clean, a_corr = ref.senders(hf, ids), ref.senders(hf, cids)
    exact = score_edges(model, data, method="exact", progress=False)
    eap = score_edges(model, data, method="eap", progress=False)
    for edge in EDGES:
        delta = a_corr[edge[0]] - a_clean[edge[0]]
        with torch.no_grad():
            ref_exact = float(_metric_with(hf, ids, t, edge, delta) - _metric_with(hf, ids, t, edge, 0 * delta))
        eps = torch.zeros((), requires_grad=True)
        (g,) = torch.autograd.grad(_metric_with(hf, ids, t, edge, eps * delta), eps)
        name = f"{edge[0]}->{edge[1]}<{edge[2]}>" if edge[2] != "out" else f"{edge[0]}->{edge[1]}"
        i = exact.edges.index(name)
        assert exact.score[i] == pytest.approx(ref_exact, abs=1e-4, rel=1e-4), name
        assert eap.score[i] == pytest.approx(float(g), abs=1e-4, rel=1e-3), name
    assert np.abs(exact.score).max() > 0.01  # the random model does react to the corruption (scores ~1e-2)
