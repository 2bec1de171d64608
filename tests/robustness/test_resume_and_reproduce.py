"""Nothing lost and numbers that reproduce: a run killed with SIGKILL resumes to the same numbers; the
same command gives identical numbers across runs and thread counts; ``--reproduce`` says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from circuitry.analysis import AnalysisConfig, run_analysis
from circuitry.analysis.reproduce import differences
from circuitry.cli import main
from circuitry.models import load_model

ARGS = ["--n-prompts", "16", "--draws", "200", "--quiet"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "circuitry.cli", "analyze", *args]


def _staging(out):
    """Where a running ``analyze`` keeps its finished stages: the staging sibling of ``out``, which replaces
    ``out`` when the run completes (circuitry.io.StagedOutput)."""
    return out.parent / f".{out.name}.partial"


def _kill_when(out, stage: str) -> None:
    """Start ``analyze`` into ``out`` and SIGKILL it as soon as ``stages/STAGE.json`` is written (no wall-clock
    limit: on a slow machine the stage just takes longer)."""
    proc = subprocess.Popen(_cli("--out", str(out), *ARGS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (_staging(out) / "stages" / f"{stage}.json").exists() and proc.poll() is None:
        time.sleep(0.02)
    alive = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert alive, f"the run finished before it could be killed after {stage}"


@pytest.mark.slow
def test_analyze_killed_mid_run_resumes_to_identical_numbers(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cli("--out", str(ref), *ARGS), check=True, capture_output=True)
    # killed during path patching (the activation-patching sweep is done), then during the random-head
    # baseline of the circuit test (path patching is done): each restart keeps what was finished
    _kill_when(out, "patching")
    assert not (out / "report.json").exists() and not (_staging(out) / "stages" / "path_patching.json").exists()
    _kill_when(out, "path_patching")
    assert not (_staging(out) / "stages" / "circuit_test.json").exists() and not (out / "report.json").exists()
    again = subprocess.run(_cli("--out", str(out), *ARGS), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert not _staging(out).exists() and (out / "stages" / "circuit_test.json").exists()  # swapped in whole
    a, b = (json.loads((d / "report.json").read_text()) for d in (ref, out))
    assert b["timings"]["patching"] == 0.0 and b["timings"]["path_patching"] == 0.0  # reused, not recomputed
    assert b["timings"]["circuit_test"] > 0
    assert differences(a, b) == []


def test_same_numbers_on_one_and_two_threads(tmp_path):
    model = load_model("zoo:attn-only-2l")
    cfg = AnalysisConfig(model="zoo:attn-only-2l", task="induction", n_prompts=8, seed=3, n_draws=100,
                         n_resamples=499, n_baseline=100, n_score_samples=3)
    old = torch.get_num_threads()
    try:
        reports = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            reports.append(json.loads(run_analysis(model, cfg, tmp_path / str(threads), quiet=True).model_dump_json()))
    finally:
        torch.set_num_threads(old)
    assert reports[0]["provenance"]["threads"] == 1 and reports[1]["provenance"]["threads"] == 2
    assert differences(*reports) == []


def test_reproduce_flags_a_changed_number(tmp_path, capsys):
    model = load_model("zoo:attn-only-2l")
    cfg = AnalysisConfig(model="zoo:attn-only-2l", task="induction", n_prompts=8, seed=1, n_draws=100,
                         n_resamples=499, n_baseline=100, n_score_samples=3)
    run_analysis(model, cfg, tmp_path / "a", quiet=True)
    assert main(["analyze", "--reproduce", str(tmp_path / "a" / "report.json"), "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    assert "reproduced exactly" in capsys.readouterr().out
    data = json.loads((tmp_path / "a" / "report.json").read_text())
    data["edges"][0]["effect"] += 1e-9
    (tmp_path / "a" / "report.json").write_text(json.dumps(data))
    assert main(["analyze", "--reproduce", str(tmp_path / "a" / "report.json"), "--out", str(tmp_path / "c"),
                 "--quiet"]) == 1
    assert "/edges[0]/effect" in capsys.readouterr().out
    # an output folder holding finished stages would make the re-run reuse them: refused
    assert main(["analyze", "--reproduce", str(tmp_path / "a" / "report.json"), "--out", str(tmp_path / "b")]) == 2
