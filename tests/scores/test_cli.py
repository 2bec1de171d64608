"""``circuitry scores`` end to end on a tiny GPT-2 saved to disk (no download)."""

from __future__ import annotations

import argparse
import json

import pytest

from circuitry.scores.cli import add_parser


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("gpt2")
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=120, n_positions=96,
                                               bos_token_id=0, eos_token_id=0)).save_pretrained(d)
    return d


def test_cli_writes_scores_and_figures(gpt2_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(["scores", "--model", str(gpt2_dir), "--out", str(out), "--n-samples", "3",
                              "--block-len", "10", "--repeats", "3", "--n-baseline", "50"])
    assert args.handler(args) == 0
    report = json.loads((out / "scores.json").read_text())
    assert set(report["head_scores"]) == {"previous_token", "induction", "duplicate_token", "copying",
                                          "retrieval", "attention_sink", "streaming", "ngram_induction",
                                          "successor", "copy_suppression", "negative_copying", "ablation_loss",
                                          "ov_positivity"}
    # a random-init GPT-2: every detector tested against its null, no head labelled
    assert all(report["head_scores"][d]["significance"]["significant"] == [] for d in report["head_scores"]
               if d != "ov_positivity")
    assert "| head | labels |" in (out / "catalogue.md").read_text()
    assert report["head_scores"]["induction"]["values"]["shape"] == [2, 4]
    assert report["composition"]["K"]["raw"]["axes"] == ["src_layer", "src_head", "dst_layer", "dst_head"]
    assert report["icl"]["n_samples"] == 3
    assert report["provenance"]["model_id"] == str(gpt2_dir)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 16 and "composition_K.png" in pngs
    assert "K-composition top" in capsys.readouterr().out


def test_cli_rejects_unknown_detector(gpt2_dir, tmp_path):
    from circuitry.errors import InputError

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scores", "--model", str(gpt2_dir), "--out", str(tmp_path), "--detectors", "x"])
    with pytest.raises(InputError, match="detector='x'"):
        args.handler(args)
