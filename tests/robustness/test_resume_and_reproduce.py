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


@pytest.mark.slow
def test_analyze_killed_mid_run_resumes_to_identical_numbers(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cli("--out", str(ref), *ARGS), check=True, capture_output=True)
    proc = subprocess.Popen(_cli("--out", str(out), *ARGS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "stages" / "patching.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    killed_mid_run = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed_mid_run, "the run finished before it could be killed"
    assert (out / "stages" / "patching.json").exists() and not (out / "report.json").exists()
    again = subprocess.run(_cli("--out", str(out), *ARGS), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    a, b = (json.loads((d / "report.json").read_text()) for d in (ref, out))
    assert b["timings"]["patching"] == 0.0  # the finished stage was reused, not recomputed
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
