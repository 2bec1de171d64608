"""The natural-text zoo: the KJV tokenizer, the text tasks, the missing-corpus error and the shipped text models."""

import json
import re
import shutil

import pytest

from circuitry.errors import InputError
from circuitry.zoo.text_corpus import (
    KJV_TEXT_SHA256,
    kjv_chapters,
    kjv_verses,
    load_tokenizer,
    split_text,
    tokenizer_dir,
)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(tokenizer_dir())


def test_tokenizer_round_trips_text(tok):
    for text in ["In the beginning God created the heaven and the earth.\n",
                 " And Moses said unto Aaron, Take thy rod; café 1611 — naïve {json: [1, 2]}",
                 "zzqx Ünïcödé 😀\ttabs  and  spaces"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text  # byte-level: lossless on any string, even far from the corpus
    assert len(tok) == 4096 and tok.bos_token_id == 0 and tok.convert_ids_to_tokens(0) == "<|endoftext|>"
    words = tok(" And the LORD spake unto Moses, saying", add_special_tokens=False)["input_ids"]
    assert len(words) == 8  # frequent corpus words are single tokens: the BPE learned the corpus


def test_tokenizer_files_are_standard_hf(tok):
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(str(tokenizer_dir()), local_files_only=True)
    assert again("Joshua the son of Nun")["input_ids"] == tok("Joshua the son of Nun")["input_ids"]
    assert (tokenizer_dir() / "heldout.txt").read_text(encoding="utf-8").startswith("Now after the death of Moses")


def test_missing_corpus_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `bible` program
    with pytest.raises(InputError, match=r"apt-get install bible-kjv"):
        kjv_verses()


def test_verse_parsing_and_heldout_split():
    verses = ["Ge1:1 In the beginning.", "Ge1:2 And the earth.", "Josh1:1 Now after.", "Acts28:31 Preaching."]
    chapters = kjv_chapters(verses)
    assert chapters == [("Ge", "In the beginning. And the earth."), ("Josh", "Now after."), ("Acts", "Preaching.")]
    assert split_text(chapters) == ("In the beginning. And the earth.\n", "Now after.\nPreaching.\n")


@pytest.mark.skipif(shutil.which("bible") is None, reason="needs Debian's bible-kjv (apt-get install bible-kjv)")
def test_installed_corpus_is_the_pinned_text():
    import hashlib

    from circuitry.zoo.text_corpus import kjv_text

    text = kjv_text(kjv_chapters(kjv_verses()))
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == KJV_TEXT_SHA256


@pytest.mark.parametrize("task", ["kjv-induction", "kjv-ioi", "kjv-prose"])
def test_text_tasks_build_and_pass_the_checks(task, tmp_path, tok):
    from circuitry.models import ModelAdapter
    from circuitry.prompts import make_task
    from circuitry.prompts.text_tasks import write_text_task
    from circuitry.zoo.arch import ZooConfig, ZooTransformer

    path = write_text_task(task, tmp_path / f"{task}.jsonl", n=8, seed=1)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["header"]["task"] == task and len(lines) == 9
    model = ZooTransformer(ZooConfig(n_layers=1, n_heads=2, d_model=16, d_head=8, d_vocab=4096, n_ctx=512))
    data = make_task(str(path), ModelAdapter(model, model_id="tiny", tokenizer=tok),
                     metric="loss" if task == "kjv-prose" else "logit_diff")
    assert len(data) == 8
    pair = data.pairs[0]
    if task == "kjv-ioi":  # answer = the name said once, foil = the repeated one; corrupted swaps the repeat
        io, s = (tok.decode([t]).strip() for t in (pair.answers[0], pair.foils[0]))
        words = lambda text: re.findall(r"\w+", text)
        assert words(pair.clean_text).count(io) == 1 and words(pair.clean_text).count(s) == 2
        assert words(pair.corrupted_text).count(s) == 1
    elif task == "kjv-induction":  # " A A": each target's answer is the next token of the sentence's first copy
        L = (len(pair.clean) - 1) // 2
        assert pair.clean[1:L + 1] == pair.clean[L + 1:] and pair.answers == tuple(pair.clean[p + 1] for p in pair.positions)
    else:
        assert len(pair.clean) == 512 and pair.answers == tuple(pair.clean[1:])


RUNS = ["kjv-attn-only-2l", "kjv-gpt2-2l"]  # their manifests (training curves) are in examples/text/runs/


@pytest.mark.parametrize("name", RUNS)
def test_a_trained_text_model_loads_from_its_folder_with_the_tokenizer(name, tmp_path):
    """The loading path a user's text model takes: a kind=text manifest, weights checked by sha256, the shipped
    tokenizer attached (here with freshly initialized weights under the measured run's manifest)."""
    from circuitry.models import ModelAdapter
    from circuitry.zoo import load_zoo
    from circuitry.zoo.text_corpus import zoo_tokenizer
    from circuitry.zoo.text_train import TextZooManifest, weights_as
    from circuitry.zoo.train import build_model, sha256_bytes
    from tests.docs.runs import REPO

    man = TextZooManifest.model_validate_json((REPO / "examples" / "text" / "runs" / f"{name}.json").read_text())
    assert man.recipe.corpus.text_sha256 == KJV_TEXT_SHA256
    assert man.recipe.corpus.tokenizer_sha256 == sha256_bytes((tokenizer_dir() / "tokenizer.json").read_bytes())
    data = weights_as(build_model(man.recipe), man.recipe.weights_dtype)
    (tmp_path / man.weights_file).write_bytes(data)
    (tmp_path / f"{name}.json").write_text(man.model_copy(update={"weights_sha256": sha256_bytes(data),
                                                                  "checkpoints": []}).model_dump_json())
    module, loaded = load_zoo(name, root=tmp_path)
    assert loaded.kind == "text" and loaded.final_icl == man.final_icl
    model = ModelAdapter(module, model_id=name, manifest=loaded, tokenizer=zoo_tokenizer(loaded))
    assert model.info.n_ctx == 512 and model.info.d_vocab == 4096 and model.info.bos_token_id == 0
    (tmp_path / man.weights_file).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    from circuitry.errors import ChecksumError

    with pytest.raises(ChecksumError):
        load_zoo(name, root=tmp_path)


@pytest.mark.parametrize("task,n", [("kjv-induction", 32), ("kjv-ioi", 32), ("kjv-prose", 16)])
def test_example_text_task_files_are_what_the_builder_writes(task, n, tmp_path):
    from circuitry.prompts.text_tasks import write_text_task
    from tests.docs.runs import REPO

    shipped = REPO / "examples" / "text" / f"{task.replace('-', '_')}.jsonl"
    assert write_text_task(task, tmp_path / "t.jsonl", n=n, seed=0).read_bytes() == shipped.read_bytes()


def test_retraining_without_the_corpus_package_stops_with_the_fix(monkeypatch, tmp_path, capsys):
    from circuitry.zoo.text_train import main

    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["model", "kjv-attn-only-2l", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bible-kjv" in err and "apt-get install bible-kjv" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing was written


def test_a_text_model_in_the_zoo_is_listed_loaded_and_scored_on_prose(tmp_path, monkeypatch, capsys):
    """With a text model in the checkpoints folder: `zoo list` names its corpus and licence, `zoo:NAME` loads with
    the tokenizer, and `circuitry dynamics` takes its held-out sequences from the held-out prose."""
    import circuitry.zoo.registry as registry
    from circuitry.cli import main
    from circuitry.dynamics.measure import heldout_tokens
    from circuitry.models import load_model
    from circuitry.zoo.text_train import TextZooManifest, weights_as
    from circuitry.zoo.train import build_model, sha256_bytes
    from tests.docs.runs import REPO

    man = TextZooManifest.model_validate_json((REPO / "examples" / "text" / "runs" / "kjv-gpt2-2l.json").read_text())
    data = weights_as(build_model(man.recipe), "float32")
    (tmp_path / man.weights_file).write_bytes(data)
    (tmp_path / "kjv-gpt2-2l.json").write_text(man.model_copy(update={"weights_sha256": sha256_bytes(data),
                                                                      "checkpoints": []}).model_dump_json())
    (tmp_path / "kjv-bpe-4096").symlink_to(tokenizer_dir(), target_is_directory=True)
    monkeypatch.setattr(registry, "CHECKPOINT_DIR", tmp_path)
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "kjv-gpt2-2l" in out and "King James Bible (Debian bible-kjv-text 4.38, bible-kjv 4.38; public domain" in out
    model = load_model("zoo:kjv-gpt2-2l")
    assert model.tokenizer.decode(model.tokenizer(" And Moses said")["input_ids"]) == " And Moses said"
    toks, source = heldout_tokens(model, n=3)
    assert tuple(toks.shape) == (3, 512) and (toks[:, 0] == 0).all() and source["kind"].startswith("held-out prose")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bible") is None, reason="needs Debian's bible-kjv (apt-get install bible-kjv)")
def test_retraining_reproduces_the_measured_curve(tmp_path):
    """The recipe reproduces the run behind examples/text/runs/ (50 steps; same torch version and CPU type)."""
    import torch

    from circuitry.zoo.text_train import TextZooManifest, train_text
    from tests.docs.runs import REPO

    run = TextZooManifest.model_validate_json((REPO / "examples" / "text" / "runs" / "kjv-gpt2-2l.json").read_text())
    if torch.__version__ != run.torch_version:
        pytest.skip(f"measured with torch {run.torch_version}, running {torch.__version__}")
    new = train_text(run.recipe, tmp_path, stop_step=50, progress=False)
    assert new.curve[0] == run.curve[0]  # loss, lr, every head's probes, the ICL score on held-out prose
