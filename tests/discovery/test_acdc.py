"""ACDC: threshold extremes, the recorded order, AUC, and resuming a killed run (which also shows that two
runs give the identical circuit)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from circuitry.discovery import EdgeScores, prepare, roc_auc, score_edges
from circuitry.discovery.acdc import acdc_order
from circuitry.errors import InputError


@pytest.fixture(scope="module")
def small(zoo):
    from circuitry.prompts import make_task

    data = make_task("induction", zoo, n_prompts=8, seed=1)
    return data, prepare(zoo, data, metric="kl")


def test_tau_zero_keeps_every_edge_and_huge_tau_none(zoo, small):
    data, pr = small
    keep_all = score_edges(zoo, data, method="acdc", tau=0.0, prepared=pr, progress=False)
    assert all(keep_all.in_circuit) and keep_all.params["final_metric"] == pytest.approx(0.0, abs=1e-6)
    none = score_edges(zoo, data, method="acdc", tau=1e6, prepared=pr, progress=False)
    assert not any(none.in_circuit)
    # every edge removed: the circuit is the corrupted run, KL(clean || corrupted) > 0
    assert none.params["final_metric"] > 1.0
    assert none.order == [pr.edges.names[e] for e in acdc_order(pr.edges)]


@pytest.mark.slow
def test_acdc_finds_the_induction_circuit(zoo, induction, reference):
    pr = prepare(zoo, induction, metric="kl")
    a = score_edges(zoo, induction, method="acdc", tau=0.02, prepared=pr, progress=False)
    assert roc_auc(a, reference) >= 0.9
    kept = {e for e, k in zip(a.edges, a.in_circuit) if k}
    assert {"L0H3->L1H0<k>", "L1H0->logits", "embed->L1H0<q>"} <= kept
    assert 10 <= len(kept) <= 60


_SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from circuitry.models import load_model
    from circuitry.prompts import make_task
    from circuitry.discovery import score_edges
    m = load_model("zoo:attn-only-2l")
    d = make_task("induction", m, n_prompts=8, seed=1)
    r = score_edges(m, d, method="acdc", tau=0.05, checkpoint=sys.argv[1], progress=False)
    open(sys.argv[2], "w").write(r.model_dump_json())
""")


@pytest.mark.slow
def test_killed_run_resumes_to_the_identical_circuit(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    ckpt, out = tmp_path / "ckpt.json", tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt), str(out)], env=env)
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                done = json.loads(ckpt.read_text())["next"]
            except (ValueError, KeyError):
                done = 0
            if done >= 20:
                break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and 20 <= json.loads(ckpt.read_text())["next"] < 257
    subprocess.run([sys.executable, str(script), str(ckpt), str(out)], env=env, check=True)
    resumed = EdgeScores.model_validate_json(out.read_text())
    fresh_out = tmp_path / "fresh.json"
    subprocess.run([sys.executable, str(script), str(tmp_path / "other.json"), str(fresh_out)], env=env, check=True)
    fresh = EdgeScores.model_validate_json(fresh_out.read_text())
    assert resumed.in_circuit == fresh.in_circuit
    np.testing.assert_array_equal(resumed.score, fresh.score)
    assert resumed.order == fresh.order


def test_checkpoint_of_another_run_is_refused(zoo, small, tmp_path):
    data, pr = small
    ck = tmp_path / "ck.json"
    ck.write_text(json.dumps({"run_id": "something else", "next": 3, "current": 0.0, "keep": [], "delta": []}))
    with pytest.raises(InputError, match="belongs to another run"):
        score_edges(zoo, data, method="acdc", tau=0.05, prepared=pr, checkpoint=ck, progress=False)


@pytest.mark.slow
def test_tau_sweep_roc_endpoints(zoo, small, reference):
    from circuitry.discovery import acdc_tau_sweep

    data, pr = small
    sw = acdc_tau_sweep(zoo, data, reference, taus=[0.0, 1e6], prepared=pr, progress=False)
    assert sw.n_kept == [257, 0] and sw.tpr == [1.0, 0.0] and sw.fpr == [1.0, 0.0]
    assert sw.auc == pytest.approx(0.5)  # only the chance diagonal: the sweep needs informative thresholds
    with pytest.raises(InputError, match="taus"):
        acdc_tau_sweep(zoo, data, reference, taus=[-1.0], prepared=pr)
