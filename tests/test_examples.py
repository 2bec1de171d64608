"""Every example script runs (the docs' code comes from them) and prints what it found.

Each runs as ``python examples/NAME.py out`` through ``tests/docs/runs.py``, the runner the docs checks use,
so a tutorial quoting an example's output (``tests/docs/test_tutorials.py``) reuses this run. No wall-clock
timeout: the suite must pass on a slow, loaded machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runs import run

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script):
    res = run(f"python examples/{script.name} out")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip(), "an example must print what it found"
