"""Every command on a random-init model of each family saved with ``save_pretrained``, as a user following
the README's "your model" runs them: ``circuitry COMMAND --model DIR --task FILE.jsonl --out DIR``.

``analyze`` and ``discover`` (all four methods, faithfulness, stability) run to the end on every family with a
token-id task a random model with tied embeddings does show a gap on (the last token repeated: ``answer`` =
the clean prompt's last token, ``foil`` the corrupted one's; weights ~ N(0, 0.05), Gemma-2's N(0, 0.3), so
the direct path dominates); on the induction task a random model shows no gap and both exit 1 saying so
(Gemma-2 and Pythia). ``scores``, ``patch``, ``validate``, ``dynamics`` (on three saved checkpoints) and
``decodability`` run on all five families. A
folder without tokenizer files given a text task is told it has no tokenizer."""

from __future__ import annotations

import json
import random

import pytest
import torch

from circuitry.cli import main
from tests.models import hf_families as ref


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``{family: model dir}``, ``{family: [3 checkpoint dirs]}``, the echo and induction task files."""
    root = tmp_path_factory.mktemp("families")
    models, checkpoints = {}, {}
    for fam in ref.FAMILIES:
        hf = ref.build(fam, std=0.3 if fam == "gemma2" else 0.05)
        with torch.no_grad():  # tie the unembedding to the embedding: the direct path echoes the last token
            hf.get_output_embeddings().weight.copy_(hf.get_input_embeddings().weight)
        models[fam] = root / fam
        hf.save_pretrained(models[fam])
        checkpoints[fam] = []
        for step in (0, 100, 200):
            d = root / f"{fam}-ckpt" / f"checkpoint-{step}"
            ref.build(fam, seed=step + 1).save_pretrained(d)
            checkpoints[fam].append(str(d))
    rng = random.Random(0)
    echo = root / "echo.jsonl"
    lines = [{"header": {"task": "echo", "metric": "logit_diff"}}]
    for _ in range(16):
        body = [rng.randrange(1, ref.V) for _ in range(6)]
        a, b = rng.sample(range(1, ref.V), 2)
        lines.append({"clean": [0, *body, a], "corrupted": [0, *body, b], "answers": [a], "foils": [b]})
    echo.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    from circuitry.prompts import induction_pairs

    induction = induction_pairs(16, block_len=6, vocab_size=ref.V, bos=0, seed=0).to_jsonl(root / "induction.jsonl")
    return models, checkpoints, str(echo), str(induction), root


def _run(args, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.mark.parametrize("family", ref.FAMILIES)
def test_analyze_and_discover_run_to_the_end(family, folders, capsys, tmp_path):
    models, _, echo, _, _ = folders
    rc, text = _run(["analyze", "--model", models[family], "--task", echo, "--out", tmp_path / "a", "--quiet",
                     "--draws", 200], capsys)
    assert rc == 0, text
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert "embed->logits" in (tmp_path / "a" / "report.md").read_text() and report
    rc, text = _run(["discover", "--model", models[family], "--task", echo, "--out", tmp_path / "d", "--quiet",
                     "--method", "exact,eap,eap-ig,acdc", "--n-random", 19, "--n-resamples", 200,
                     "--stability-splits", 4, "--acdc-splits", 0], capsys)
    assert rc == 0, text
    found = json.loads((tmp_path / "d" / "discovery.json").read_text())
    assert sorted(s["method"] for s in found["scores"]) == ["acdc", "eap", "eap-ig", "exact"]


def test_no_gap_exits_1_with_the_reason(folders, capsys, tmp_path):
    models, _, _, induction, _ = folders
    rc, text = _run(["analyze", "--model", models["gemma2"], "--task", induction, "--out", tmp_path / "a",
                     "--quiet"], capsys)
    assert rc == 1 and "no clean-corrupted gap" in text
    rc, text = _run(["discover", "--model", models["gpt_neox"], "--task", induction, "--out", tmp_path / "d",
                     "--quiet"], capsys)
    assert rc == 1 and "gap is not resolved" in text


@pytest.mark.parametrize("family", ref.FAMILIES)
def test_every_other_command(family, folders, capsys, tmp_path):
    models, checkpoints, echo, _, _ = folders
    m = models[family]
    rc, text = _run(["scores", "--model", m, "--out", tmp_path / "s", "--n-samples", 4, "--n-baseline", 50], capsys)
    assert rc == 0, text
    rc, text = _run(["patch", "--model", m, "--task", echo, "--site", "z", "--out", tmp_path / "p", "--quiet"], capsys)
    assert rc == 0 and (tmp_path / "p" / "patching.json").exists(), text
    claims = tmp_path / "claims.yaml"
    claims.write_text(f"version: 1\nmodel: {m}\ntask: {echo}\nalpha: 0.05\ndraws: 20\nn_resamples: 100\nclaims:\n"
                      "  - {id: heads, type: ablation_vs_random, statement: s, heads: [L0H1, L1H2]}\n"
                      "  - {id: path, type: path_share, statement: s, sender: embed, receiver: L1H0, kind: q}\n")
    rc, text = _run(["validate", claims, "--out", tmp_path / "v", "--quiet"], capsys)
    assert rc in (0, 1) and len(json.loads((tmp_path / "v" / "verdicts.json").read_text())["results"]) == 2, text
    rc, text = _run(["dynamics", "--checkpoints", *checkpoints[family], "--out", tmp_path / "dy", "--quiet",
                     "--n-heldout", 8, "--n-samples", 4], capsys)
    assert rc == 0, text
    rc, text = _run(["decodability", "--model", m, "--out", tmp_path / "de", "--quiet", "--n-prompts", 16,
                     "--n-examples", "0,4", "--n-permutations", 20], capsys)
    assert rc == 0, text


def test_a_folder_without_tokenizer_files_has_no_tokenizer(folders, capsys, tmp_path):
    """transformers 5 returns an empty tokenizer for such a folder (every text -> no tokens); circuitry treats
    it as none, so a text task is refused for the missing tokenizer before any work."""
    from circuitry.models import load_model

    models, *_ = folders
    assert load_model(str(models["gemma2"])).tokenizer is None
    task = tmp_path / "text.jsonl"
    task.write_text(json.dumps({"clean": "When Mary and John", "corrupted": "When Anna and John", "answer": " Mary",
                                "foil": " Anna"}) + "\n")
    rc, text = _run(["analyze", "--model", models["gemma2"], "--task", task, "--out", tmp_path / "a", "--quiet"],
                    capsys)
    assert rc == 2 and "this model has no tokenizer; give token ids or add tokenizer files" in text
    assert "empty" not in text
