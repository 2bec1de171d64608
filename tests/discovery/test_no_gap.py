"""``circuitry discover`` on a model that does not do the task: it says so, draws nothing and exits 1."""

from __future__ import annotations

import json

from circuitry.cli import main
from circuitry.prompts import induction_pairs
from tests.prompts.conftest import make_tiny_gpt2


def test_random_model_has_no_circuit_to_search_for(tmp_path, capsys):
    d = make_tiny_gpt2(tmp_path / "m", seed=1)
    pairs = tmp_path / "p.jsonl"
    induction_pairs(16, block_len=6, vocab_size=18, seed=0, bos=0).to_jsonl(pairs)
    rc = main(["discover", "--method", "eap", "--model", str(d), "--task", str(pairs), "--out", str(tmp_path / "o"),
               "--quiet"])
    rep = json.loads((tmp_path / "o" / "discovery.json").read_text())
    if rep["gap"]["resolved"]:  # a random model may separate the prompts by chance; then it searches
        assert rc == 0 and rep["scores"]
    else:
        assert rc == 1 and rep["scores"] == [] and "no circuit to search for" in capsys.readouterr().out
        assert not list((tmp_path / "o").rglob("circuit.*"))
