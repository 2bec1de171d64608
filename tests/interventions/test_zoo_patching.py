"""Noising on the shipped attn-only-2l: the induction circuit's heads are necessary, most heads are not."""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.interventions import activation_patch
from circuitry.models import load_model
from circuitry.prompts import make_task
from circuitry.scores import score_heads


@pytest.fixture(scope="module")
def zoo():
    model = load_model("zoo:attn-only-2l")
    data = make_task("induction", model, n_prompts=24, seed=0)
    res = activation_patch(model, data, site="z", direction="noising", progress=False)
    sc = score_heads(model, ["previous_token", "induction"], block_len=15, n_samples=5, n_resamples=200)
    return model, res, sc


def test_noising_circuit_heads_destroys_the_repeat_advantage(zoo):
    model, res, sc = zoo
    eff = res.effect.numpy()  # 1 = like clean, 0 = like corrupted
    prev = sc["previous_token"].numpy()
    ind = sc["induction"].numpy()
    P = int(prev[0].argmax())
    I = int(ind[1].argmax())
    print(f"noising L0H{P}: {eff[0, P]:.3f}, L1H{I}: {eff[1, I]:.3f}; all: {np.round(eff, 2).tolist()}")
    assert res.clean_mean - res.corrupted_mean > 2.0  # the repeat is worth a lot of logit difference
    assert eff[0, P] < 0.5 and eff[1, I] < 0.5       # each destroys most of the advantage
    others = [eff[l, h] for l in range(2) for h in range(eff.shape[1]) if (l, h) not in ((0, P), (1, I))]
    assert np.mean(np.array(others) > 0.8) >= 0.6    # most other heads leave it mostly intact
