"""Prompt pairs: validation up front, JSONL round trip, the induction generator's guarantees."""

from __future__ import annotations

import json

import pytest
import torch

from circuitry.errors import InputError
from circuitry.models import load_model
from circuitry.prompts import PairDataset, PromptPair, induction_pairs, make_task, repeated_tokens


def test_unequal_lengths_rejected_naming_the_pair():
    good = PromptPair(clean=(0, 1, 2), corrupted=(0, 3, 4))
    bad = PromptPair(clean=(0, 1, 2), corrupted=(0, 3, 4, 5))
    with pytest.raises(InputError, match=r"pair 1: clean and corrupted prompts tokenize to 3 and 4 tokens"):
        PairDataset(task="t", pairs=(good, bad))


def test_jsonl_round_trip_and_bad_line(tmp_path):
    d = induction_pairs(4, block_len=5, vocab_size=30, seed=3)
    path = d.to_jsonl(tmp_path / "pairs.jsonl")
    again = PairDataset.from_jsonl(path)
    assert again.source == str(path)  # a file task knows it cannot draw fresh prompts
    assert not again.can_generate and d.can_generate
    assert again.model_copy(update={"source": None}) == d and again.sha256() == d.sha256()
    lines = path.read_text().splitlines()
    lines[2] = json.dumps({"clean": [1, 2], "corrupted": "oops"})
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match=r"pairs.jsonl:3"):
        PairDataset.from_jsonl(path)


@pytest.mark.parametrize("corrupt", ["both", "first", "second"])
def test_induction_pairs_repeat_only_in_clean(corrupt):
    L = 6
    d = induction_pairs(20, block_len=L, vocab_size=30, seed=1, corrupt=corrupt)
    c, k = d.clean_ids(), d.corrupted_ids()
    assert c.shape == k.shape == (20, 1 + 2 * L)
    assert torch.equal(c[:, 1:1 + L], c[:, 1 + L:])                  # clean: A A
    assert (k[:, 1:1 + L] != k[:, 1 + L:]).all()                     # corrupted: no position repeats
    pos, ans, foil = d.targets()
    assert (ans != foil).all()
    assert torch.equal(ans, c.gather(1, pos + 1))
    if corrupt == "second":
        assert torch.equal(k[:, :1 + L], c[:, :1 + L])
    if corrupt == "first":
        assert torch.equal(k[:, 1 + L:], c[:, 1 + L:])
    assert (c[:, 0] == 0).all() and (c[:, 1:] != 0).all()            # BOS first, never inside
    assert induction_pairs(20, block_len=L, vocab_size=30, seed=1, corrupt=corrupt) == d


def test_repeated_tokens_excludes_and_repeats():
    t = repeated_tokens(8, block_len=5, repeats=3, vocab_size=12, exclude=[3, 4], seed=0)
    body = t[:, 1:]
    assert torch.equal(body[:, :5], body[:, 5:10]) and torch.equal(body[:, :5], body[:, 10:])
    assert not torch.isin(body, torch.tensor([0, 3, 4])).any()
    with pytest.raises(InputError, match="block_len=0"):
        repeated_tokens(2, block_len=0, repeats=2, vocab_size=10)


def test_make_task_checks_before_work(tmp_path):
    model = load_model("zoo:attn-only-2l")
    with pytest.raises(InputError, match="n_prompts=1"):
        make_task("induction", model, n_prompts=1)
    with pytest.raises(InputError, match="task='nope'"):
        make_task("nope", model)
    with pytest.raises(InputError, match="block_len=40"):
        make_task("induction", model, block_len=40)
    d = make_task("induction", model, n_prompts=4, seed=2)
    assert d.seq_len == 1 + 2 * 16 and d.params["vocab_size"] == model.info.d_vocab
