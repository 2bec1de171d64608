"""The command line: instant help, no heavy imports, clear errors."""

from __future__ import annotations

import resource
import subprocess
import sys


def test_help_is_fast_and_imports_no_torch():
    code = ("import sys, time; t = time.process_time(); from circuitry.cli import build_parser; "
            "build_parser().format_help(); print(time.process_time() - t, 'torch' in sys.modules, "
            "'nnsight' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 2.0
    assert out[1:] == ["False", "False"]


def test_help_process_under_two_cpu_seconds():
    # CPU time, not wall-clock: on a loaded machine (taskset -c 0 beside another busy process) the wall clock
    # doubles while the work --help does stays the same
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run([sys.executable, "-m", "circuitry.cli", "--help"], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert res.returncode == 0 and "patch" in res.stdout
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) < 2.0


def test_unknown_model_is_a_clear_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "circuitry.cli", "patch", "--model", "zoo:nope", "--out",
                          str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "nope" in res.stderr and "attn-only-2l" in res.stderr


def test_bad_inputs_are_refused_in_under_a_cpu_second_without_torch(tmp_path):
    # issue 27's P9: an unknown zoo model, a missing task file and a bad claim field answer before torch,
    # transformers or scipy load (CPU seconds, so the bound holds on a loaded machine)
    bad_claims = tmp_path / "bad.yaml"
    bad_claims.write_text("version: 1\nmodel: zoo:attn-only-2l\nclaims:\n  - id: x\n    type: nope\n")
    cases = [(["analyze", "--model", "zoo:nope"], "nope"),
             (["discover", "--task", str(tmp_path / "missing.jsonl")], "does not exist"),
             (["validate", str(bad_claims)], "not a claim type")]
    for argv, words in cases:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = subprocess.run([sys.executable, "-m", "circuitry.cli", *argv, "--out", str(tmp_path / "out")],
                             capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert res.returncode == 2 and words in res.stderr, (argv, res.stderr[-500:])
        assert "Traceback" not in res.stderr
        assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) < 1.0, argv
