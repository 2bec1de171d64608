"""Task files (JSONL of token ids or of text) and built-in tasks: parsed, checked before any work, and
every malformed case answered with a clear error (exit code 2 on the command line)."""

from __future__ import annotations

import json

import pytest

from circuitry.cli import main
from circuitry.errors import InputError
from circuitry.models import load_model
from circuitry.prompts import make_task, task_spec

IDS = {"clean": [0, 5, 9, 5, 9], "corrupted": [0, 7, 9, 7, 9], "answers": [9], "foils": [2]}


def write(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:attn-only-2l")


def test_token_id_file_defaults_last_position_and_records_its_source(tmp_path, zoo):
    f = write(tmp_path / "t.jsonl", [IDS, {**IDS, "answers": [5], "foils": [7]}])
    data = make_task(f, zoo)
    assert len(data) == 2 and data.pairs[0].positions == (4,) and data.pairs[1].answers == (5,)
    assert data.source == f and not data.can_generate and task_spec(data) is None


def test_text_file_is_tokenized_with_the_model_tokenizer_and_bos(tmp_path, tiny_gpt2_dir):
    model = load_model(str(tiny_gpt2_dir))
    f = write(tmp_path / "ioi.jsonl", [
        {"clean": "When Mary and John went out , John gave it to", "corrupted":
         "When Mary and John went out , Anna gave it to", "answer": " Mary", "foil": " John"},
        {"clean": "When John and Mary went out , Mary gave it to", "corrupted":
         "When John and Mary went out , Bob gave it to", "answer": "John", "foil": "Mary"}])
    data = make_task(f, model)
    p = data.pairs[0]
    assert p.clean[0] == 0 and p.clean[1:4] == (1, 2, 3) and len(p.clean) == 12  # BOS + 11 words
    assert p.positions == (11,) and p.answers == (2,) and p.foils == (4,)
    assert p.corrupted[8] == 11 and p.clean_text.startswith("When Mary")
    # --bos none: no BOS prepended
    data = make_task(f, load_model(str(tiny_gpt2_dir), bos="none"))
    assert data.pairs[0].clean[0] == 1 and data.pairs[0].positions == (10,)


BAD = [
    ("empty", [], "holds no prompt pairs"),
    ("not json", [IDS, "{oops"], r"bad.jsonl:2: not valid JSON"),
    ("not an object", [IDS, "[1, 2]"], r"bad.jsonl:2: expected a JSON object"),
    ("missing corrupted", [IDS, {"clean": [0, 1]}], r"bad.jsonl:2: missing field\(s\) \['corrupted'\]"),
    ("negative id", [IDS, {**IDS, "clean": [0, -5, 9, 5, 9]}], r"bad.jsonl:2: 'clean' holds negative"),
    ("unequal lengths", [IDS, {**IDS, "corrupted": [0, 7, 9]}], r"bad.jsonl:2: .*length"),
    ("unknown field", [{**IDS, "answr": [3]}], r"unknown field\(s\) \['answr'\]"),
    ("one pair", [IDS], "holds 1 prompt pair"),
    ("id outside vocabulary", [IDS, {**IDS, "clean": [0, 500, 9, 5, 9]}], r"bad.jsonl:2: clean token id\(s\) \[500\] at index\(es\) \[1\]"),
    ("answer outside vocabulary", [IDS, {**IDS, "answers": [65]}], r"answers token id\(s\) \[65\]"),
    ("no answers for logit_diff", [{"clean": [0, 1, 2], "corrupted": [0, 3, 2]}] * 2,
     r"metric='logit_diff' needs answers in every pair; .*bad.jsonl:1, .*bad.jsonl:2 have none"),
    ("answer equals foil", [{**IDS, "foils": [9]}] * 2, "every answer equals its foil"),
    ("clean equals corrupted", [{**IDS, "corrupted": IDS["clean"]}] * 2, "every corrupted prompt equals"),
    ("longer than the context", [{"clean": [1] * 70, "corrupted": [2] * 70, "answers": [1], "foils": [2]}] * 2,
     "n_ctx=64"),
    ("text without a tokenizer", [{"clean": "a b", "corrupted": "a c", "answer": "b", "foil": "c"}] * 2,
     "needs the model's tokenizer"),
]


@pytest.mark.parametrize("name,lines,message", BAD, ids=[b[0] for b in BAD])
def test_malformed_task_files_fail_before_any_work(tmp_path, zoo, name, lines, message):
    f = write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(InputError, match=message):
        make_task(f, zoo)


@pytest.mark.parametrize("name,lines,message", [BAD[1], BAD[8], BAD[10]], ids=["json", "vocab", "answers"])
def test_malformed_task_files_exit_2_on_the_command_line(tmp_path, capsys, name, lines, message):
    f = write(tmp_path / "bad.jsonl", lines)
    for cmd in (["patch", "--task", f, "--out", str(tmp_path / "o")], ["analyze", "--task", f, "--out",
                                                                        str(tmp_path / "o"), "--quiet"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "error:" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_text_answers_must_be_single_tokens(tmp_path, tiny_gpt2_dir):
    model = load_model(str(tiny_gpt2_dir))
    f = write(tmp_path / "t.jsonl", [{"clean": "When Mary", "corrupted": "When John", "answer": "went out",
                                      "foil": "and"}] * 2)
    with pytest.raises(InputError, match=r"answer 0 'went out' is 2 tokens"):
        make_task(f, model)


def test_n_prompts_and_block_len_are_refused_for_a_file(tmp_path, zoo):
    f = write(tmp_path / "t.jsonl", [IDS] * 3)
    with pytest.raises(InputError, match="n_prompts=8 applies to built-in tasks"):
        make_task(f, zoo, n_prompts=8)
    assert main(["analyze", "--task", f, "--n-prompts", "8", "--out", str(tmp_path / "o"), "--quiet"]) == 2


@pytest.mark.parametrize("task", ["induction", "ioi", "successor"])
def test_builtin_tasks_are_reproducible_and_well_formed(zoo, task):
    a, b = make_task(task, zoo, n_prompts=6, seed=3), make_task(task, zoo, n_prompts=6, seed=3)
    c = make_task(task, zoo, n_prompts=6, seed=4)
    assert a == b and a.sha256() != c.sha256()
    assert a.can_generate and task_spec(a).name == task
    for p in a.pairs:
        assert len(p.clean) == len(p.corrupted) and p.clean != p.corrupted
        assert all(x != y for x, y in zip(p.answers, p.foils))
        assert 0 not in p.clean[1:]  # BOS only first


def test_ioi_pairs_follow_the_template():
    from circuitry.prompts import ioi_pairs

    d = ioi_pairs(20, vocab_size=65, seed=0)
    orders = {p.meta["order"] for p in d.pairs}
    assert orders == {"ABBA", "BABA"}
    for p in d.pairs:
        a, b = p.answers[0], p.foils[0]
        names = [t for t in p.clean[1:] if t in (a, b)]
        assert sorted(names[:2]) == sorted([a, b]) and names[2] == b  # A and B introduced, then S = B
        assert p.corrupted[-2] not in (a, b) and p.clean[-2] == b


def test_successor_pairs_answer_the_next_token():
    from circuitry.prompts import successor_pairs

    d = successor_pairs(10, vocab_size=65, run_len=5, seed=1)
    for p in d.pairs:
        run = p.clean[1:]
        assert all(y == x + 1 for x, y in zip(run, run[1:]))
        assert p.answers == tuple(t + 1 for t in run[1:])
        assert p.foils == tuple(t + 1 for t in p.corrupted[2:])


def test_bos_option_is_checked(tiny_gpt2_dir):
    with pytest.raises(InputError, match="bos=99 is invalid"):
        load_model(str(tiny_gpt2_dir), bos=99)
    assert load_model(str(tiny_gpt2_dir), bos="3").info.bos_token_id == 3
