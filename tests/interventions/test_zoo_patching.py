"""Noising on the shipped attn-only-2l: the induction circuit's heads are necessary, most heads are not."""

from __future__ import annotations

import numpy as np
import pytest

from circuitry.interventions import ablate_heads, activation_patch
from circuitry.metrics import Targets, logit_diff, normalized_effect
from circuitry.models import load_model
from circuitry.prompts import make_task
from circuitry.scores import score_heads


@pytest.fixture(scope="module")
def zoo():
    model = load_model("zoo:attn-only-2l")
    data = make_task("induction", model, n_prompts=24, seed=0)
    res = activation_patch(model, data, site="z", direction="noising", progress=False)
    sc = score_heads(model, ["previous_token", "induction"], block_len=15, n_samples=5, n_resamples=200)
    return model, data, res, sc


def test_noising_the_previous_token_head_destroys_the_repeat_advantage(zoo):
    _, _, res, sc = zoo
    eff = res.effect.numpy()  # 1 = like clean, 0 = like corrupted
    P = int(sc["previous_token"].numpy()[0].argmax())
    print(f"noising L0H{P}: {eff[0, P]:.3f}; all heads: {np.round(eff, 2).tolist()}")
    assert res.clean_mean - res.corrupted_mean > 2.0  # the repeat is worth a lot of logit difference
    assert eff[0, P] < 0.3


def test_noising_the_induction_heads_destroys_it_each_one_dents_it(zoo):
    model, data, res, sc = zoo
    eff = res.effect.numpy()
    ind = sc["induction"].numpy()[1]
    I = [int(h) for h in np.flatnonzero(ind >= 0.5)]
    assert 2 <= len(I) <= 4
    assert all(eff[1, h] < 0.95 for h in I)  # each induction head alone: a clear dent (they are redundant)
    # all of them at once, patched from the corrupted run in one forward pass
    corr = model.run(data.corrupted_ids(), reads=[("z", 1)])[("z", 1)]
    pos, ans, foil = data.targets()
    t = Targets(pos, ans, foil)
    joint = ablate_heads(model, data.clean_ids(), [[f"L1H{h}" for h in I]], t, metric=logit_diff,
                         values={0: 0.0, 1: corr})
    joint_eff = float(normalized_effect(joint.mean(), res.clean_mean, res.corrupted_mean))
    print(f"noising L1 induction heads {I} together: {joint_eff:.3f}")
    assert joint_eff < 0.3


def test_noising_most_other_heads_leaves_it_intact(zoo):
    _, _, res, sc = zoo
    eff = res.effect.numpy()
    P = int(sc["previous_token"].numpy()[0].argmax())
    I = set(np.flatnonzero(sc["induction"].numpy()[1] >= 0.5).tolist())
    others = [eff[l, h] for l in range(2) for h in range(eff.shape[1]) if not ((l == 0 and h == P) or (l == 1 and h in I))]
    assert np.mean(np.array(others) > 0.8) >= 0.6
