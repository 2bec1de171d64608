"""``circuitry validate`` on a researcher's own model and prompts: a tiny Hugging Face GPT-2 directory with a
token-id task file and a text task file (issue 9)."""

from __future__ import annotations

import json

from circuitry.cli import main
from tests.prompts.conftest import make_tiny_gpt2

TEXT = [("Mary", "John", "Anna"), ("John", "Mary", "Bob"), ("Anna", "Bob", "Mary"), ("Bob", "Anna", "John")] * 2


def _claims(model_dir, task, n):
    return (f"version: 1\nmodel: {model_dir}\ntask: {task}\nseed: 0\nalpha: 0.05\ndraws: 200\nclaims:\n"
            "  - id: l0h1-matters\n    type: ablation_effect\n    statement: ablating L0H1 raises the loss\n"
            "    heads: [L0H1]\n    ablation: mean\n    metric: loss\n    min_effect: 0.01\n")


def test_validate_runs_token_id_and_text_task_files_on_a_hf_directory(tmp_path, capsys):
    d = make_tiny_gpt2(tmp_path / "m", seed=0)
    ids = tmp_path / "ids.jsonl"
    ids.write_text("\n".join(json.dumps({"clean": [0, 1, 2, 3, 4, 5, 6, 7], "corrupted": [0, 1, 2, 3, 4, 5, 13, 7],
                                         "answers": [i % 17 + 1], "foils": [(i + 5) % 17 + 1]}) for i in range(10)))
    text = tmp_path / "text.jsonl"
    text.write_text("\n".join(json.dumps({"clean": f"When {a} and {b} went out , {b} gave it to",
                                          "corrupted": f"When {a} and {b} went out , {c} gave it to",
                                          "answer": a, "foil": b}) for a, b, c in TEXT))
    files = []
    for name, task, n in (("ids", ids, 10), ("text", text, 8)):
        f = tmp_path / f"{name}.yaml"
        f.write_text(_claims(d, task, n))
        files.append(str(f))
    code = main(["validate", *files, "--out", str(tmp_path / "v")])
    out = capsys.readouterr()
    assert code in (0, 1), out.err  # a verdict for every claim, not an invalid file
    written = sorted(p.name for p in (tmp_path / "v").rglob("*.json"))
    assert written, out.out
    text_all = " ".join(p.read_text() for p in (tmp_path / "v").rglob("*.json"))
    assert "l0h1-matters" in text_all and '"n_prompts": 10' in text_all and '"n_prompts": 8' in text_all
