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
