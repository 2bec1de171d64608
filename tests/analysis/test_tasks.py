"""``circuitry analyze`` on a researcher's own task and model: task files of ids and of text, the built-in
IOI-style and successor tasks, the 1-layer control and a random model; words true for the task."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from circuitry.analysis import AnalysisConfig, run_analysis
from circuitry.cli import main
from circuitry.models import load_model
from circuitry.prompts import induction_pairs
from tests.prompts.conftest import make_tiny_gpt2

FAST = dict(n_score_samples=3, n_baseline=200, n_resamples=999, n_draws=200)
INDUCTION_WORDS = ("repeated half", "induction heads", "previous-token head")


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:attn-only-2l")


def test_token_id_file_is_split_into_discovery_and_test_halves(tmp_path, zoo):
    f = induction_pairs(32, block_len=12, vocab_size=65, seed=11).to_jsonl(tmp_path / "mine.jsonl")
    cfg = AnalysisConfig(model="zoo:attn-only-2l", task=str(f), seed=0, **FAST)
    r = run_analysis(zoo, cfg, tmp_path / "out", quiet=True)
    assert r.task.source == "file" and r.task.n_discovery == 16 and r.task.n_test == 16
    assert r.patching.n_prompts == 16 and r.gap.resolved
    # circuit heads come from significant patching shares, never from induction scores on a file task
    assert r.circuit_heads and "picked by activation patching" in r.circuit_source
    sig = {e.site for e in r.head_effects if e.pvalue_adjusted <= cfg.alpha and e.share >= 0.05}
    assert set(r.circuit_heads) <= sig
    md = (tmp_path / "out" / "report.md").read_text()
    assert "the other half of the task file" in md and "fresh prompt pairs" not in md
    assert not any(w in md for w in INDUCTION_WORDS)
    # the drawing holds only the supported paths; the data formats hold every path
    dot = (tmp_path / "out" / "graph.dot").read_text()
    G = nx.read_graphml(tmp_path / "out" / "graph.graphml")
    supported = [e for e in r.edges if e.pvalue_adjusted <= cfg.alpha and e.effect >= 0.05]
    assert 0 < len(supported) < len(r.edges) and G.number_of_edges() > dot.count("->")


def test_edited_task_file_does_not_reuse_stale_stages(tmp_path, zoo):
    path = tmp_path / "t.jsonl"
    induction_pairs(8, block_len=8, vocab_size=65, seed=1).to_jsonl(path)
    cfg = AnalysisConfig(model="zoo:attn-only-2l", task=str(path), seed=0, **FAST)
    first = run_analysis(zoo, cfg, tmp_path / "out", quiet=True)
    induction_pairs(8, block_len=8, vocab_size=65, seed=2).to_jsonl(path)
    again = run_analysis(zoo, cfg, tmp_path / "out", quiet=True)
    assert again.timings["patching"] > 0 and again.patching.clean != first.patching.clean
    assert "the same 8 pairs the circuit was chosen on" in again.task.test_prompts


@pytest.mark.parametrize("task,words", [("ioi", "indirect object A minus subject B"),
                                        ("successor", "the clean token's successor")])
def test_builtin_tasks_are_worded_for_their_task(tmp_path, zoo, task, words):
    cfg = AnalysisConfig(model="zoo:attn-only-2l", task=task, n_prompts=16, seed=0, **FAST)
    r = run_analysis(zoo, cfg, tmp_path, quiet=True)
    md = (tmp_path / "report.md").read_text()
    assert words in md and not any(w in md for w in INDUCTION_WORDS)
    assert r.findings[0].holds == r.gap.resolved
    if not r.gap.resolved:  # an honest stop: no paths, no circuit, a figure that says why
        assert r.path_patching is None and not r.circuit_heads and "no gap to explain" in md


def test_one_layer_control_reports_no_induction_circuit(tmp_path):
    model = load_model("zoo:attn-only-1l")
    cfg = AnalysisConfig(model="zoo:attn-only-1l", task="induction", n_prompts=16, seed=0, **FAST)
    r = run_analysis(model, cfg, tmp_path, quiet=True)
    claims = [f.claim for f in r.findings]
    assert any(c.startswith("No induction circuit") for c in claims)
    assert (tmp_path / "figures" / "circuit.png").exists()


def test_random_model_reports_no_circuit_and_draws_no_edge(tmp_path):
    make_tiny_gpt2(tmp_path / "m", seed=1)
    pairs = tmp_path / "p.jsonl"
    induction_pairs(16, block_len=6, vocab_size=18, seed=0, bos=0).to_jsonl(pairs)
    rc = main(["analyze", "--model", str(tmp_path / "m"), "--task", str(pairs), "--draws", "200", "--out",
               str(tmp_path / "out"), "--quiet"])
    r = json.loads((tmp_path / "out" / "report.json").read_text())
    supported = [e for e in r["edges"] if e["pvalue_adjusted"] <= 0.01 and e["effect"] >= 0.05]
    assert not supported and not r["circuit_heads"]
    assert rc == (0 if r["gap"]["resolved"] else 1)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "No path is drawn" in md or "no gap to explain" in md


def test_text_task_on_a_hugging_face_directory_through_patch_and_analyze(tmp_path, capsys):
    d = make_tiny_gpt2(tmp_path / "m", seed=0)
    lines = []
    for a, b, c in [("Mary", "John", "Anna"), ("John", "Mary", "Bob"), ("Anna", "Bob", "Mary"), ("Bob", "Anna", "John")]:
        lines.append({"clean": f"When {a} and {b} went out , {b} gave it to",
                      "corrupted": f"When {a} and {b} went out , {c} gave it to", "answer": a, "foil": b})
    f = tmp_path / "ioi_text.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    rc = main(["patch", "--model", str(d), "--task", str(f), "--out", str(tmp_path / "p"), "--quiet"])
    out = capsys.readouterr().out
    assert rc in (0, 1) and "4 prompt pairs" in out and (tmp_path / "p" / "patching.csv").exists()
    assert ("not resolved" in out) == (rc == 1)
    rc = main(["analyze", "--model", str(d), "--task", str(f), "--draws", "200", "--out", str(tmp_path / "a"),
               "--quiet"])
    r = json.loads((tmp_path / "a" / "report.json").read_text())
    assert r["task"]["source"] == "file" and r["task"]["n_test"] == 4  # too few to split: said, not hidden
    assert "optimistic" in r["task"]["test_prompts"]
    assert rc == (0 if r["gap"]["resolved"] else 1)
