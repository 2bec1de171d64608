"""Backup heads on a hand-built model where one head takes over when another is zero-ablated.

Layout of the model and prompts: tests/discovery/handmade.py (dim 11 is the flag). L0H0 (main) attends
to the value, copies it and writes the flag; L1H0 (backup) attends to the value when the flag is off and
to BOS (writing nothing) when it is on. So
with L0H0 intact L1H0 does nothing, and with L0H0 zero-ablated L1H0 copies the value: L0H0's ablation
alone costs ~0 (self-repair) and L1H0's alone ~0, together the whole logit difference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch


def _backup_model():
    from circuitry.models import load_model
    from tests.discovery.handmade import blank_model, copy_values

    m = blank_model()
    with torch.no_grad():
        for layer in (0, 1):  # head 0 of each layer copies; head 1 is small noise (never a backup)
            a = m.blocks[layer].attn
            copy_values(a, slice(0, 8))
            a.k_proj.weight[0, 8] = 1.0  # key 0: "is a value"
            a.k_proj.weight[1, 9] = 1.0  # key 1: "is BOS"
            a.q_proj.weight[8:16].normal_(0, 0.05)
            a.k_proj.weight[8:16].normal_(0, 0.05)
            a.v_proj.weight[8:16].normal_(0, 0.05)
            a.o_proj.weight[:8, 8:16].normal_(0, 0.05)
        A, B = m.blocks[0].attn, m.blocks[1].attn
        A.q_proj.weight[0, 10] = 20.0  # always looks for the value
        A.v_proj.weight[6, 10] = 1.0  # ... and writes the flag
        A.o_proj.weight[11, 6] = 1.0
        B.q_proj.weight[0, 10], B.q_proj.weight[0, 11] = 20.0, -20.0  # the value, unless the flag is on
        B.q_proj.weight[1, 11] = 20.0  # flag on: BOS
    return load_model(m)


def _pairs():
    from tests.discovery.handmade import pairs

    return pairs("copy-with-backup")


@pytest.fixture(scope="module")
def backup_model():
    torch.set_num_threads(1)
    return _backup_model(), _pairs()


def test_backup_head_found_by_conditional_coablation(backup_model):
    from circuitry.discovery.backup import backup_heads

    model, data = backup_model
    rep = backup_heads(model, data, ["L0H0"], ablation="zero", n_resamples=500)
    roles = {h.head: h for h in rep.heads}
    assert rep.backups == ["L1H0"]
    b = roles["L1H0"]
    assert abs(b.alone) < 0.01 and b.given_main > 1.0  # idle while L0H0 works, the whole answer without it
    assert b.pvalue_adjusted < 1e-6 and b.share > 0.3
    assert roles["L0H1"].role == roles["L1H1"].role == "neither"
    assert rep.decisions.correction == "holm" and rep.decisions.level == "head"
    # self-repair: L0H0's own ablation costs almost nothing ...
    assert abs(rep.main_damage) < 0.01
    # ... and L0H0 + L1H0 together cost the whole logit difference: super-additive, interval above 0
    sa = rep.with_backups
    assert sa is not None and sa.heads == ["L0H0", "L1H0"]
    assert sa.difference > 1.0 and sa.ci_low > 0.9 and sa.pvalue < 1e-6
    assert "backup" in rep.summary()


def test_no_backup_under_mean_ablation(backup_model):
    """Mean ablation keeps L0H0's constant flag, so L1H0 never takes over: the backup is specific to the
    ablation (a falsifiable contrast to the zero-ablation test above)."""
    from circuitry.discovery.backup import backup_heads

    model, data = backup_model
    rep = backup_heads(model, data, ["L0H0"], ablation="mean", n_resamples=500)
    assert rep.backups == [] and rep.with_backups is None
    assert rep.main_damage > 0.5  # the mean of a copied value is no answer


def test_super_additivity_on_arrays():
    from circuitry.discovery.backup import super_additivity

    rng = np.random.default_rng(0)
    singles = rng.normal(0.1, 0.05, (2, 20))
    additive = super_additivity(singles.sum(0) + rng.normal(0, 0.05, 20), singles, ["a", "b"], n_resamples=500)
    assert additive.ci_low < 0 < additive.ci_high and additive.pvalue > 0.05
    superadd = super_additivity(singles.sum(0) + 0.5 + rng.normal(0, 0.05, 20), singles, ["a", "b"], n_resamples=500)
    assert superadd.ci_low > 0.4 and superadd.pvalue < 1e-6
