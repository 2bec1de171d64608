"""The induction-head phase change on the zoo (Olsson et al. 2022, argument 1) and the rule that finds it."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from circuitry.dynamics import (DynamicsResult, checkpoint_dirs, locate_phase_change, phase_change,
                                zoo_checkpoints)
from circuitry.errors import InputError


@pytest.fixture(scope="module")
def two_layer():
    torch.set_num_threads(1)
    return phase_change(zoo_checkpoints("attn-only-2l"), n_heldout=256, n_resamples=300, progress=False)


@pytest.fixture(scope="module")
def one_layer():
    return phase_change(zoo_checkpoints("attn-only-1l"), n_heldout=128, n_resamples=300, progress=False)


def test_two_layer_phase_change_where_icl_and_induction_jump_together(two_layer):
    pc = two_layer.phase_change
    assert pc.found, pc.describe()
    assert pc.window == (200, 400)  # the shipped checkpoints bracketing docs/zoo.md's jump (300-450)
    assert pc.induction.change_in_window > 0.4 and pc.icl.change_in_window > 0.4
    ind, icl = two_layer.curve("induction"), two_layer.curve("icl")
    assert ind[0, 0] < 0.15 and ind[1, 0] > 0.45 and ind[1, 1] > ind[0, 2]  # intervals separated
    assert icl[1, 2] < icl[0, 1] + 0.3 and icl[-1, 0] < -1.0
    # the dense training log locates it inside docs/zoo.md's 300-450
    log = two_layer.log_phase_change
    assert log.found and 300 <= log.window[0] < log.window[1] <= 450, log.describe()
    # the layer-0 previous-token head composes with the induction head through K only once it has formed
    assert two_layer.tracked_pair[0] == "L0H3" and two_layer.tracked_pair[1].startswith("L1")
    kc, base, sd = two_layer.tracked_k_composition, two_layer.k_baseline_mean, two_layer.k_baseline_std
    assert kc[0] < base + 3 * sd and kc[-1] > base + 10 * sd
    # the loss falls across the window
    assert two_layer.checkpoints[1].heldout_loss < two_layer.checkpoints[0].heldout_loss - 0.2


def test_one_layer_control_shows_neither(one_layer):
    pc = one_layer.phase_change
    assert not pc.found
    assert not pc.induction.jumps and pc.induction.net_change < 0.05
    assert not pc.icl.jumps and pc.icl.net_change < 0.3
    assert one_layer.curve("induction")[:, 0].max() < 0.15
    assert one_layer.tracked_pair is None and one_layer.tracked_k_composition is None
    assert not one_layer.log_phase_change.found and not one_layer.log_phase_change.induction.jumps


def test_result_round_trips_and_reports(two_layer, tmp_path):
    again = DynamicsResult.model_validate_json(two_layer.model_dump_json())
    assert again == two_layer
    assert two_layer.provenance.dataset_sha256 and two_layer.provenance.seed == 0
    assert len(set(two_layer.provenance.extra["weights_sha256_by_step"].values())) == 7
    md = two_layer.to_markdown()
    assert "between steps 200 and 400" in md and "| 1500 |" in md
    assert two_layer.plot(tmp_path / "p.png").stat().st_size > 10_000


def test_rule_rejects_gradual_and_misaligned_changes():
    steps = list(range(0, 1100, 100))
    lin = np.linspace(0, 1, 11)
    gradual = locate_phase_change(steps, -2 * lin, 0.8 * lin)
    assert not gradual.found and not gradual.induction.jumps and "gradual" in gradual.induction.reason
    step_fn = lambda at: (np.arange(11) >= at).astype(float)  # noqa: E731
    apart = locate_phase_change(steps, -2 * step_fn(3), 0.8 * step_fn(8))
    assert apart.induction.jumps and apart.icl.jumps and not apart.found and "do not overlap" in apart.induction.reason
    together = locate_phase_change(steps, -2 * step_fn(5), 0.8 * step_fn(5))
    assert together.found and together.window == (400, 500)
    with pytest.raises(InputError, match="steps"):
        locate_phase_change([0, 200, 100], [0, 1, 2], [0, 1, 2])


def test_user_checkpoint_directories(tmp_path):
    """A user's list of saved Hugging Face checkpoints (here the zoo Llama's, saved with save_pretrained)."""
    from circuitry.zoo import load_zoo

    dirs = []
    for step in (1000, 1500, 2000):
        module, _ = load_zoo("llama-2l-gqa", step=step)
        d = tmp_path / f"checkpoint-{step}"
        module.save_pretrained(d)
        dirs.append(d)
    series = checkpoint_dirs(dirs)
    assert [s for s, _ in series] == [1000, 1500, 2000]
    r = phase_change(series, n_heldout=16, n_samples=4, n_resamples=100, progress=False)
    assert r.steps == [1000, 1500, 2000] and r.training_log is None
    assert r.heldout_source["kind"].startswith("random blocks")
    # docs/zoo.md: this model's induction heads form between 1250 and 1500 steps
    ind = r.curve("induction")[:, 0]
    assert ind[0] < 0.2 and ind[1] > 0.35
    with pytest.raises(InputError, match="checkpoints"):
        checkpoint_dirs([tmp_path / "missing"])
    with pytest.raises(InputError, match="at least 3"):
        phase_change(series[:2])


def test_cli(tmp_path, capsys):
    from circuitry.dynamics.cli import add_parser
    from circuitry.errors import InputError

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dynamics", "--model", "zoo:attn-only-1l", "--out", str(tmp_path), "--quiet",
                              "--n-heldout", "32", "--n-samples", "4"])
    assert args.handler(args) == 0
    assert "no phase change" in capsys.readouterr().out
    assert {p.name for p in tmp_path.iterdir()} >= {"dynamics.json", "dynamics.md", "phase_change.png"}
    bad = parser.parse_args(["dynamics", "--model", "zoo:attn-only-2l@400", "--out", str(tmp_path)])
    with pytest.raises(InputError, match="--model"):
        bad.handler(bad)


def test_retrain_dense_checkpoints(tmp_path):
    """The shipped recipe's prefix, re-trained with a checkpoint every 25 steps (about 4 s on one thread)."""
    from circuitry.dynamics import retrain_zoo_checkpoints
    from circuitry.zoo.train import sha256_bytes

    series = retrain_zoo_checkpoints("attn-only-1l", tmp_path, every=25, until=50, progress=False)
    assert [s for s, _ in series] == [25, 50]
    m25, m50 = series[0][1], series[1][1]
    assert m25.weights_sha256 == sha256_bytes((tmp_path / "attn-only-1l" / "step_00025.safetensors").read_bytes())
    assert m50.model_id.endswith("attn-only-1l@50") and m25.weights_sha256 != m50.weights_sha256
    with pytest.raises(InputError, match="every/until"):
        retrain_zoo_checkpoints("attn-only-1l", tmp_path, every=50, until=5000)
