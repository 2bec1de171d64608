"""Task decodability on the zoo (concept encoding-decoding view of ICL) and the probe behind it."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from circuitry.decodability import (SYNTHETIC_TASKS, TOPIC_TASKS, DecodabilityResult, cv_accuracy, decodability,
                                    synthetic_prompts)
from circuitry.errors import InputError
from circuitry.models import load_model

KS = (0, 1, 16)


@pytest.fixture(scope="module")
def topics_1l():
    torch.set_num_threads(1)
    return decodability(load_model("zoo:attn-only-1l"), TOPIC_TASKS, n_examples=KS, n_permutations=400,
                        progress=False)


@pytest.fixture(scope="module")
def topics_2l():
    return decodability(load_model("zoo:attn-only-2l"), TOPIC_TASKS, n_examples=KS, n_permutations=400,
                        progress=False)


@pytest.fixture(scope="module")
def mapping_2l():
    return decodability(load_model("zoo:attn-only-2l"), SYNTHETIC_TASKS, n_examples=KS, n_permutations=400,
                        progress=False)


def test_decodability_rises_with_examples_where_the_model_solves_the_task(topics_1l):
    acc, adj = topics_1l.accuracy.numpy(), topics_1l.adjusted_pvalue.numpy()
    assert all(topics_1l.solved.values())  # the 1-layer model predicts a member of the latent set
    ta = topics_1l.task_accuracy.numpy()
    assert (ta[-1] >= 0.5).all() and (ta[-1] - ta[1] > 0.25).all()
    # the query alone carries no task information; one example already does, sixteen more so
    assert np.abs(acc[0] - 0.25).max() < 0.08 and (adj[0] > 0.05).all()
    last = topics_1l.layers.index("L0")
    assert 0.6 < acc[1, last] < acc[2, last] and acc[2, last] > 0.95 and adj[2, last] < 0.05
    assert acc[2, 0] < 0.35  # the embedding of the query token never encodes the task


def test_shuffled_labels_sit_at_chance(topics_1l, topics_2l, mapping_2l):
    for r in (topics_1l, topics_2l, mapping_2l):
        assert np.abs(r.shuffled_mean.numpy() - r.chance).max() < 0.02
        assert r.chance == 0.25


def test_two_layer_model_encodes_topics_without_solving_them(topics_2l):
    acc, adj = topics_2l.accuracy.numpy(), topics_2l.adjusted_pvalue.numpy()
    assert acc[2, -1] > 0.6 and adj[2, -1] < 0.05 and np.abs(acc[0] - 0.25).max() < 0.08
    assert not any(topics_2l.solved.values())  # honest: the 2-layer zoo model does not solve them
    assert "Not solved by this model" in topics_2l.to_markdown()


def test_mapping_tasks_reported_unsolved_and_at_most_weakly_decodable(mapping_2l):
    assert not any(mapping_2l.solved.values()) and mapping_2l.task_accuracy.numpy().max() < 0.2
    # with no examples the prompts carry no trace of the task: nothing may be significant there
    assert (mapping_2l.adjusted_pvalue.numpy()[0] > 0.05).all()
    assert mapping_2l.accuracy.numpy().max() < 0.4  # 4 tasks: chance 0.25


def test_result_round_trips_with_figure(topics_2l, tmp_path):
    again = DecodabilityResult.model_validate_json(topics_2l.model_dump_json())
    assert again == topics_2l and again.provenance.dataset_sha256
    assert topics_2l.plot(tmp_path / "d.png").stat().st_size > 10_000
    assert topics_2l.best_layer(16) in ("L0", "L1")


def test_probe_finds_signal_and_shuffles_to_chance():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 40)
    X = rng.normal(size=(120, 10))
    X[:, 3] += 4.0 * (y == 1) - 4.0 * (y == 2)
    for clf in ("ridge", "knn"):
        r = cv_accuracy(X, y, classifier=clf, n_permutations=60)
        assert r["accuracy"] > 0.7 and r["pvalue"] < 0.05 and abs(r["null"].mean() - 1 / 3) < 0.06
    noise = cv_accuracy(rng.normal(size=(120, 10)), y, n_permutations=60)
    assert noise["accuracy"] < 0.5 and noise["pvalue"] > 0.05
    with pytest.raises(InputError, match="n_prompts"):
        cv_accuracy(X[:8], y[:8])


def test_prompts_and_input_errors():
    m = load_model("zoo:attn-only-2l")
    ps = synthetic_prompts(m, tasks=["successor", "topic_a"], n_per_task=5, max_examples=4, query="seen")
    succ = [p for p in ps if p.task == "successor"]
    assert all(p.answers == (p.query[0] % 64 + 1,) for p in succ)  # ids 1..64 in order, cyclic
    assert all(p.query in [x for x, _ in p.pairs] for p in succ)
    with pytest.raises(InputError, match="n_examples"):
        decodability(m, n_examples=(0, 40))
    with pytest.raises(InputError, match="tasks"):
        decodability(m, ["copy", "nonsense"])


def test_user_task_file_on_a_hugging_face_model(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    d = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64,
                               bos_token_id=0, eos_token_id=0)).save_pretrained(d)
    rng = np.random.default_rng(0)
    lines = []
    for task, offset in (("plus10", 10), ("plus20", 20)):
        for _ in range(10):
            xs = rng.choice(np.arange(1, 60), size=5, replace=False).tolist()
            lines.append(json.dumps({"task": task, "pairs": [[x, x + offset] for x in xs[:4]], "query": xs[4],
                                     "answer": xs[4] + offset}))
    f = tmp_path / "tasks.jsonl"
    f.write_text("\n".join(lines))
    from circuitry.decodability.cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(["decodability", "--model", str(d), "--tasks", str(f), "--out", str(out),
                              "--n-examples", "0,4", "--n-permutations", "50", "--quiet"])
    assert args.handler(args) == 0
    r = DecodabilityResult.model_validate_json((out / "decodability_tasks.json").read_text())
    # at k=4 the y tokens (x + 10 vs x + 20) are in the context: a random model's residual mixes them in
    assert r.tasks == ["plus10", "plus20"] and r.accuracy.shape == (2, 3)
    assert np.abs(r.shuffled_mean.numpy() - 0.5).max() < 0.05
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "a", "pairs": [[1, 2]], "query": 3}\n')
    args = parser.parse_args(["decodability", "--model", str(d), "--tasks", str(bad), "--out", str(out)])
    with pytest.raises(InputError, match="missing field"):
        args.handler(args)
