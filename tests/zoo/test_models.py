"""The shipped models really have (or, for the control, really lack) the induction circuit.

Every score is measured here on held-out repeated random tokens drawn with a seed that neither
training nor the manifest's probes used.
"""

import pytest
import torch

from circuitry.zoo import load_zoo
from circuitry.zoo.train import ProbeSpec, run_probes

HELD_OUT = ProbeSpec(block_len=20, n_repeats=3, n_samples=32, seed=2024)


@pytest.fixture(scope="module")
def probes_2l(zoo_2l):
    return run_probes(zoo_2l, HELD_OUT, n_symbols=64)


def test_second_repeat_loss_far_below_first(probes_2l):
    first, second = probes_2l.loss_per_repeat[:2]
    print(f"attn-only-2l loss: first repeat {first:.3f}, second repeat {second:.3f} nats")
    assert first > 3.5  # random symbols: ln(64) = 4.16 is chance
    assert second < 0.25 * first


def test_layer0_has_a_previous_token_head(probes_2l):
    prev = probes_2l.prev_token[0]
    print("layer-0 prev-token scores:", [round(x, 2) for x in prev])
    assert max(prev) > 0.9
    assert sum(x > 0.9 for x in prev) <= 4  # a few previous-token heads, not all of layer 0


def test_layer1_has_an_induction_head(probes_2l):
    ind = probes_2l.induction[1]
    print("layer-1 prefix-matching scores:", [round(x, 2) for x in ind])
    assert max(ind) > 0.6


def test_some_layer1_heads_are_not_induction_heads(probes_2l):
    ind = probes_2l.induction[1]
    high = [x for x in ind if x > 0.5]
    low = [x for x in ind if x < 0.15]
    assert 1 <= len(high) <= 4, ind  # at most half of the heads are induction heads ...
    assert len(low) >= 4, ind  # ... coexisting with clearly non-induction heads


def test_one_layer_control_has_no_induction_head():
    model, _ = load_zoo("attn-only-1l")
    p = run_probes(model, HELD_OUT, n_symbols=64)
    print("attn-only-1l induction:", [round(x, 2) for x in p.induction[0]], "loss per repeat", p.loss_per_repeat)
    assert max(p.induction[0]) < 0.2
    assert p.loss_per_repeat[1] > 0.6 * p.loss_per_repeat[0]


def test_llama_loads_and_runs():
    model, manifest = load_zoo("llama-2l-gqa")
    cfg = model.config
    assert cfg.num_attention_heads == 8 and cfg.num_key_value_heads == 2 and cfg.num_hidden_layers == 2
    assert model.config._attn_implementation == "eager"
    tokens = torch.randint(1, 65, (2, 16))
    tokens[:, 0] = manifest.bos_token_id
    with torch.no_grad():
        logits = model(tokens).logits
    assert logits.shape == (2, 16, manifest.d_vocab) and torch.isfinite(logits).all()
    p = run_probes(model, HELD_OUT, n_symbols=64)
    print("llama-2l-gqa loss per repeat", p.loss_per_repeat, "induction", p.induction)
    # A weaker, later circuit than attn-only-2l (see docs/zoo.md), but a real one.
    assert p.loss_per_repeat[1] < 0.3 * p.loss_per_repeat[0]
    assert max(p.induction[1]) > 0.4 and max(p.induction[0]) < 0.15
