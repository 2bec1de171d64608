"""The greedy search's default size: the full search on a small model, a bounded one on a large model (pruning
every edge of GPT-2 small would evaluate 520,000 patched circuits), and --greedy-edges to choose it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from circuitry.discovery import greedy
from circuitry.discovery.greedy import default_search_size, search_circuits


def test_default_search_is_full_on_small_models_and_bounded_on_large_ones():
    assert default_search_size("prune", 257) == 257 and default_search_size("forward", 257) == 128
    for direction in ("prune", "forward"):
        k = default_search_size(direction, 32491)  # GPT-2 small's edges
        assert search_circuits(direction, k, 16, 4) <= greedy.LARGE_MODEL_CIRCUITS
        assert search_circuits(direction, k + 1, 16, 4) > greedy.LARGE_MODEL_CIRCUITS
    assert default_search_size("prune", 32491) == 15 and search_circuits("prune", 32491, 16, 4) > 500_000


def test_greedy_scores_uses_the_bounded_default_and_refuses_a_bad_size(monkeypatch):
    from circuitry.errors import InputError
    from circuitry.models import load_model
    from circuitry.prompts import make_task

    m = load_model("zoo:attn-only-2l")
    d = make_task("induction", m, n_prompts=8)
    monkeypatch.setattr(greedy, "ALL_EDGES_UP_TO", 100)  # attn-only-2l's 257 edges count as a large model
    res = greedy.greedy_scores(m, d, progress=False)
    assert res.params["greedy_edges"] == 15 and res.params["circuits_evaluated"] <= greedy.LARGE_MODEL_CIRCUITS
    with pytest.raises(InputError, match="max_size"):
        greedy.greedy_scores(m, d, max_size=258, progress=False)


def test_cli_greedy_edges(tmp_path):
    base = [sys.executable, "-m", "circuitry.cli", "discover", "--model", "zoo:attn-only-2l", "--n-prompts", "8",
            "--n-random", "19", "--n-resamples", "100", "--stability-splits", "2", "--acdc-splits", "0", "--quiet"]
    bad = subprocess.run(base + ["--method", "eap-ig", "--greedy-edges", "5", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--greedy-edges" in bad.stderr and "--method greedy" in bad.stderr
    big = subprocess.run(base + ["--method", "greedy", "--greedy-edges", "300", "--out", str(tmp_path / "y")],
                         capture_output=True, text=True)
    assert big.returncode == 2 and "at most the model's 257 edges" in big.stderr
    ok = subprocess.run(base + ["--method", "greedy", "--greedy-edges", "6", "--out", str(tmp_path / "z")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    rep = json.loads((tmp_path / "z" / "discovery.json").read_text())
    (scores,) = rep["scores"]
    assert scores["params"]["greedy_edges"] == 6 and scores["params"]["circuits_evaluated"] == 1 + 2 + 3 + 4 + 5 + 6
