"""The edge set: counts, names (circuitry's and EAP-IG/MIB's), GQA groups, MLP receivers."""

from __future__ import annotations

import pytest
from transformers import GPT2Config, GPT2LMHeadModel

from circuitry.discovery import edge_set
from circuitry.discovery.acdc import acdc_order
from circuitry.errors import InputError
from circuitry.models import load_model


def test_zoo_edge_set_counts_and_names(zoo):
    es = edge_set(zoo)
    # layer 0: 24 q/k/v receivers read embed; layer 1: 24 receivers read embed + 8 heads; logits read all 17
    assert len(es) == 24 + 24 * 9 + 17 == 257
    assert es.names[es.lookup([("L0H3", "L1H5", "k")])[0]] == "L0H3->L1H5<k>"
    i = es.index["L0H3->L1H5<k>"]
    assert es.mib_names[i] == "a0.h3->a1.h5<k>"
    assert es.mib_names[es.index["embed->L0H1<q>"]] == "input->a0.h1<q>"
    assert es.mib_names[es.index["L1H5->logits"]] == "a1.h5->logits"
    assert len(set(es.names)) == len(es) == len(set(es.mib_names))


def test_gqa_key_value_receivers_are_per_group():
    m = load_model("zoo:llama-2l-gqa")
    es = edge_set(m)
    i = m.info
    assert i.n_kv_heads < i.n_heads
    per_layer = i.n_heads + 2 * i.n_kv_heads + int(i.has_mlp)
    assert len(es.receivers) == i.n_layers * per_layer + 1
    k_recv = [r for r in es.receivers if r.kind == "k" and r.layer == 1]
    assert [r.node for r in k_recv] == [f"L1G{g}" for g in range(i.n_kv_heads)]


def test_mlp_reads_its_own_layers_heads_and_logits_read_everything():
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=8, vocab_size=20, n_positions=16,
                                      bos_token_id=0, eos_token_id=0)).eval()
    es = edge_set(load_model(hf))
    assert "L0H1->MLP0" in es.index and "MLP0->L1H0<q>" in es.index and "MLP1->logits" in es.index
    assert "MLP0->MLP0" not in es.index and "L1H0->MLP0" not in es.index
    assert es.mib_names[es.index["MLP0->L1H1<v>"]] == "m0->a1.h1<v>"
    with pytest.raises(InputError, match="not an edge"):
        es.lookup(["L1H0->MLP0"])


def test_acdc_order_is_reverse_topological(zoo):
    es = edge_set(zoo)
    order = [es.names[e] for e in acdc_order(es)]
    assert sorted(order) == sorted(es.names)
    assert order[0] == "L1H7->logits" and order[16] == "embed->logits"
    assert order[-1] == "embed->L0H0<q>"
