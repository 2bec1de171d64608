"""The benchmark suite runs end to end at shrunk sizes (a smoke test: no timing is asserted), and every
implementation's answer agrees with the plain-torch reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_benchmark_runs_and_answers_agree(tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    p = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(out),
                        "--cache", str(tmp_path / "cache")],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    res = json.loads(out.read_text())
    w = res["workloads"]
    assert set(w) == {"P1", "P2", "P2b", "P3", "P4", "P4b", "P5", "P6", "P7"}
    for key in ("P1", "P2", "P2b", "P3"):
        impls = w[key]["impls"]
        assert {"circuitry", "reference"} <= set(impls)
        assert w[key]["answer_range"] > 1e-3  # the answers vary: agreement is not vacuous
        for name, r in impls.items():
            assert r["agrees"] is True, (key, name, r)
            assert r["cpu_seconds"] > 0 and r["peak_mb"] is not None
    assert "circuitry, all logits (before)" in w["P1"]["impls"]
    p6 = w["P6"]  # EAP-IG beside its pass-count floor; scores checked against the plain-torch EAP-IG
    assert p6["baseline"] == "floor" and p6["checked_against"] == "reference" and p6["answer_range"] > 1e-3
    assert p6["impls"]["circuitry"]["agrees"] is True and p6["impls"]["floor"]["agrees"] is None
    p7 = w["P7"]  # patched circuits checked against plain torch; the greedy search timed beside P6's EAP-IG
    assert p7["checked_against"] == "reference: 4 patched circuits" and p7["answer_range"] > 1e-3
    assert p7["impls"]["circuitry: 4 patched circuits"]["agrees"] is True
    assert p7["impls"]["circuitry greedy (warm start included)"]["x_P6: EAP-IG (5 steps)"] > 0
    for key in ("P4", "P4b"):
        assert w[key]["impls"]["circuitry"]["exit"] in (0, 1) and w[key]["impls"]["circuitry"]["stages"]
    assert "skipped" in w["P5"] or "impls" in w["P5"]
    assert res["machine"]["torch"] and res["machine"]["nnsight"]
    assert "P1     circuitry" in p.stdout  # the table is printed
