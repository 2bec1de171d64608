"""The bad-input catalogue: each misuse is answered before any work by one of circuitry's own exceptions
(or exit code 2 on the command line) whose message names the parameter or file, the bad value, and the
fix. One row per misuse; docs/errors/ has a page per exception class."""

from __future__ import annotations

import json
import shutil

import networkx as nx
import numpy as np
import pytest

from circuitry.cli import main
from circuitry.errors import ChecksumError, CircuitryError, InputError, ModelLoadError


@pytest.fixture(scope="module")
def zoo():
    from circuitry.models import load_model

    return load_model("zoo:attn-only-2l")


@pytest.fixture(scope="module")
def data(zoo):
    from circuitry.prompts import make_task

    return make_task("induction", zoo, n_prompts=4, seed=0)


def _patch(zoo, data, **kw):
    from circuitry.interventions import activation_patch

    return activation_patch(zoo, data, progress=False, **{"site": "z", **kw})


def _ablate(zoo, data, heads):
    from circuitry.interventions import ablate_heads
    from circuitry.metrics import Targets

    return ablate_heads(zoo, data.clean_ids(), [heads], Targets.of(data))


def _pairs(n, **over):
    from circuitry.prompts import PairDataset, PromptPair

    p = {"clean": (0, 1, 2, 1), "corrupted": (0, 3, 2, 3), "positions": (3,), "answers": (2,), "foils": (4,), **over}
    return PairDataset(task="t", pairs=tuple(PromptPair(**p) for _ in range(n)))


def _load(name, **kw):
    from circuitry.models import load_model

    return load_model(name, **kw)


def _tiny_dir(tmp_path, **cfg):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(**{"n_layer": 1, "n_head": 2, "n_embd": 16, "vocab_size": 40, "n_positions": 16,
                                  "bos_token_id": 0, "eos_token_id": 0, **cfg})).save_pretrained(tmp_path)
    return tmp_path


def _nan_dir(tmp_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    m = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=40, n_positions=16, bos_token_id=0))
    with torch.no_grad():
        m.transformer.h[0].attn.c_attn.weight[0, 0] = float("nan")
    m.save_pretrained(tmp_path)
    return tmp_path


def _bin_only_dir(tmp_path):
    d = _tiny_dir(tmp_path)
    (d / "model.safetensors").rename(d / "pytorch_model.bin")
    return d


def _truncated_dir(tmp_path):
    d = _tiny_dir(tmp_path)
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return d


def _tampered_zoo(tmp_path):
    from circuitry.zoo import load_zoo
    from circuitry.zoo.registry import CHECKPOINT_DIR

    for suffix in (".json", ".safetensors"):
        shutil.copy(CHECKPOINT_DIR / f"attn-only-1l{suffix}", tmp_path)
    f = tmp_path / "attn-only-1l.safetensors"
    b = bytearray(f.read_bytes())
    b[-1] ^= 1
    f.write_bytes(bytes(b))
    return load_zoo("attn-only-1l", root=tmp_path)


def _undirected_graphml(tmp_path):
    from circuitry.graph import read_graphml

    nx.write_graphml(nx.path_graph(3), tmp_path / "g.graphml")
    return read_graphml(tmp_path / "g.graphml")


def _foreign_node_link(tmp_path):
    from circuitry.graph import read_node_link_json

    (tmp_path / "g.json").write_text(json.dumps({"foo": 1}))
    return read_node_link_json(tmp_path / "g.json")


def _foreign_directed_graphml(tmp_path):
    from circuitry.graph import read_graphml

    nx.write_graphml(nx.DiGraph([("a", "b")]), tmp_path / "g.graphml")
    return read_graphml(tmp_path / "g.graphml")


def _task_file(tmp_path, zoo, lines):
    from circuitry.prompts import make_task

    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    return make_task(str(tmp_path / "t.jsonl"), zoo)


def _custom_metric(zoo, data, fn):
    return _patch(zoo, data, metric=fn)


# (id, callable(tmp_path, zoo, data), exception, regex the message must contain)
API = [
    ("unequal pair lengths", lambda t, z, d: _pairs(2, corrupted=(0, 3, 2)), InputError,
     r"pair 0: clean and corrupted prompts tokenize to 4 and 3 tokens"),
    ("empty prompt set", lambda t, z, d: _pairs(0), InputError, r"needs at least one pair"),
    ("answer outside vocabulary", lambda t, z, d: _task_file(t, z, [{"clean": [0, 1, 2], "corrupted": [0, 3, 2],
                                                                     "answers": [99], "foils": [1]}] * 2),
     InputError, r"t.jsonl:1: answers token id\(s\) \[99\] at index\(es\) \[0\] lie outside the vocabulary.*ids 0..64"),
    ("layer out of range", lambda t, z, d: _patch(z, d, layers=[5]), InputError,
     r"layer=5 is out of range.*layers count from 0 to 1"),
    ("head out of range", lambda t, z, d: _ablate(z, d, ["L1H9"]), InputError, r"L1H9.*2 layers x 8 heads"),
    ("unknown site, did you mean", lambda t, z, d: _patch(z, d, site="head_outt"), InputError,
     r"site='head_outt' is not patchable.*Did you mean 'head_out'"),
    ("unknown metric", lambda t, z, d: _patch(z, d, metric="acc"), InputError, r"metric='acc' is unknown"),
    ("metric returns NaN", lambda t, z, d: _custom_metric(z, d, lambda lg, tg: lg[:, 0, 0] * float("nan")),
     InputError, r"returned NaN or inf on the clean run"),
    ("metric is constant", lambda t, z, d: _custom_metric(z, d, lambda lg, tg: lg[:, 0, 0] * 0 + 1), InputError,
     r"returned the constant 1.0"),
    ("unknown direction", lambda t, z, d: _patch(z, d, direction="sideways"), InputError, r"direction='sideways'"),
    ("too few prompts", lambda t, z, d: __import__("circuitry.prompts").prompts.make_task("induction", z, n_prompts=1),
     InputError, r"n_prompts=1 is invalid.*Fix: use --n-prompts 32"),
    ("huge prompt count", lambda t, z, d: __import__("circuitry.prompts").prompts.make_task(
        "induction", z, n_prompts=10**8), InputError, r"n_prompts=100000000 is invalid"),
    ("seed beyond 2**63", lambda t, z, d: __import__("circuitry.prompts").prompts.make_task(
        "induction", z, seed=2**70), InputError, r"seed=1180591620717411303424 is invalid"),
    ("unknown task", lambda t, z, d: __import__("circuitry.prompts").prompts.make_task("copying", z), InputError,
     r"task='copying' is unknown; expected one of \('induction', 'ioi', 'successor'\)"),
    ("unknown zoo model", lambda t, z, d: _load("zoo:nope"), ModelLoadError, r"name='nope'.*attn-only-2l"),
    ("zoo name leaving the zoo", lambda t, z, d: _load("zoo:../../etc/x"), ModelLoadError,
     r"not a zoo model name .*no path"),
    ("bare zoo name", lambda t, z, d: _load("attn-only-2l"), ModelLoadError, r"name it 'zoo:attn-only-2l'"),
    ("unknown dtype", lambda t, z, d: _load("zoo:attn-only-2l", dtype="float8"), InputError, r"dtype='float8'"),
    ("float16 on CPU", lambda t, z, d: _load("zoo:attn-only-2l", dtype="float16"), InputError, r"--dtype float32"),
    ("unsupported architecture", lambda t, z, d: (t / "config.json").write_text('{"model_type": "bert"}')
     and _load(str(t)), ModelLoadError, r"model_type='bert'.*supported.*docs/adapter.md"),
    ("corrupt checkpoint", lambda t, z, d: _load(str(_truncated_dir(t))), ModelLoadError, r"corrupt or truncated"),
    ("checkpoint hash mismatch", lambda t, z, d: _tampered_zoo(t), ChecksumError, r"manifest records"),
    ("weights holding NaN", lambda t, z, d: _load(str(_nan_dir(t))), ModelLoadError, r"holds NaN or inf"),
    ("pickle-only weights", lambda t, z, d: _load(str(_bin_only_dir(t))), ModelLoadError,
     r"no .safetensors weights.*never unpickles"),
    ("bos outside vocabulary", lambda t, z, d: _load(str(_tiny_dir(t, bos_token_id=500))), InputError,
     r"bos_token_id=500 lies outside.*--bos none"),
    ("undirected graph file", lambda t, z, d: _undirected_graphml(t), InputError, r"undirected graphml graph"),
    ("node-link file that is not a graph", lambda t, z, d: _foreign_node_link(t), InputError,
     r"a node-link JSON object with 'nodes' and 'edges'"),
    ("graph file that is not circuitry's", lambda t, z, d: _foreign_directed_graphml(t), InputError,
     r"not circuitry's \(graph attribute schema=None"),
    ("graph file missing", lambda t, z, d: __import__("circuitry.graph").graph.read_graphml(t / "none.graphml"),
     InputError, r"expected an existing file"),
    ("non-UTF-8 task file", lambda t, z, d: (t / "b.jsonl").write_bytes(b"\xff\xfe{}") and
     __import__("circuitry.prompts").prompts.make_task(str(t / "b.jsonl"), z), InputError, r"is not UTF-8"),
    ("deeply nested task line", lambda t, z, d: (t / "n.jsonl").write_text("[" * 100000 + "]" * 100000) and
     __import__("circuitry.prompts").prompts.make_task(str(t / "n.jsonl"), z), InputError, r"n.jsonl:1"),
]


@pytest.mark.parametrize("case", API, ids=[c[0] for c in API])
def test_api_misuse_is_a_clear_error(case, tmp_path, zoo, data):
    _, fn, exc, pattern = case
    with pytest.raises(exc, match=pattern) as info:
        fn(tmp_path, zoo, data)
    assert isinstance(info.value, CircuitryError)


def _laughs(t):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{b}: &{b} [" + ", ".join([f"*{a}"] * 9) + "]" for a, b in zip("abcdefg", "bcdefgh")]
    (t / "laughs.yaml").write_text("\n".join(lines + ["claims: [*h]"]) + "\n")
    return t / "laughs.yaml"


def _claim(t, body, model="zoo:attn-only-2l"):
    (t / "c.yaml").write_text(f"version: 1\nmodel: {model}\ntask: induction\nclaims:\n  - id: x\n"
                              "    type: ablation_effect\n    statement: s\n" + body)
    return t / "c.yaml"


CLI = [
    ("--out is a file", lambda t: ["analyze", "--out", str(t / "f")], r"--out='.*f' is a file"),
    ("--out cannot be created", lambda t: ["patch", "--out", str(t / "f" / "sub")], r"is not a writable folder"),
    ("--alpha out of range", lambda t: ["analyze", "--alpha", "2", "--out", str(t / "o")], r"--alpha=2.0"),
    ("--draws too few for alpha", lambda t: ["analyze", "--draws", "50", "--out", str(t / "o")],
     r"smallest p-value, 1/\(draws \+ 1\), is at most --alpha 0.01"),
    ("--draws unbounded", lambda t: ["analyze", "--draws", str(10**9), "--out", str(t / "o")], r"\[10, 1000000\]"),
    ("--n-prompts unbounded", lambda t: ["patch", "--n-prompts", str(10**8), "--out", str(t / "o")],
     r"n_prompts=100000000"),
    ("--n-prompts with a file", lambda t: ["analyze", "--task", str(t / "t.jsonl"), "--n-prompts", "8", "--out",
                                           str(t / "o")], r"applies to built-in tasks"),
    ("--device cuda on a CPU build", lambda t: ["patch", "--device", "cuda:7", "--out", str(t / "o")],
     r"device='cuda:7'"),
    ("--bos not a token", lambda t: ["patch", "--bos", "-3", "--out", str(t / "o")], r"bos='-3' is invalid"),
    ("--threads out of range", lambda t: ["patch", "--threads", "0", "--out", str(t / "o")], r"--threads=0"),
    ("--workers out of range", lambda t: ["analyze", "--executor", "processes", "--workers", "0", "--out",
                                          str(t / "o")], r"--workers=0"),
    ("--stop-after negative", lambda t: ["analyze", "--stop-after", "-1", "--out", str(t / "o")], r"--stop-after=-1"),
    ("validate --workers out of range", lambda t: ["validate", str(_claim(t, "    heads: [L0H3]\n    ablation: mean\n"
                                                                           "    metric: loss\n    min_effect: 1.0\n")),
                                                   "--workers", "0", "--out", str(t / "o")], r"max_workers=0"),
    ("zoo info leaving the zoo", lambda t: ["zoo", "info", "../../.."], r"not a zoo model name"),
    ("claim file with YAML aliases (billion laughs)", lambda t: ["validate", str(_laughs(t)), "--out", str(t / "o")],
     r"YAML aliases \(\*a\) are not allowed"),
    ("claim file with a missing field", lambda t: ["validate", str(_claim(t, "    heads: [L0H3]\n")), "--out",
                                                   str(t / "o")], r"field `\w+` is required"),
    ("claim file naming an unknown head", lambda t: ["validate", str(_claim(t, "    heads: [L7H3]\n    ablation: "
                                                                             "mean\n    metric: loss\n    min_effect: 1.0\n")),
                                                     "--out", str(t / "o")], r"L7H3"),
    ("claim file with a wrong type", lambda t: ["validate", str(_claim(t, "    heads: L0H3\n    ablation: mean\n"
                                                                        "    metric: loss\n    min_effect: many\n")),
                                                "--out", str(t / "o")], r"min_effect"),
    ("claim file naming an unknown model", lambda t: ["validate", str(_claim(t, "    heads: [L0H3]\n    ablation: "
                                                                              "mean\n    metric: loss\n    min_effect: 1.0\n",
                                                                              model="zoo:nope")),
                                                      "--out", str(t / "o")], r"nope"),
    ("reproduce a file that is not a report", lambda t: ["analyze", "--reproduce", str(t / "t.jsonl"), "--out",
                                                         str(t / "o")], r"is not JSON|not a circuitry analyze report"),
]


@pytest.mark.parametrize("case", CLI, ids=[c[0] for c in CLI])
def test_cli_misuse_exits_2_before_any_work(case, tmp_path, capsys):
    _, argv, pattern = case
    (tmp_path / "f").write_text("a file")
    (tmp_path / "t.jsonl").write_text(json.dumps({"clean": [0, 1, 2], "corrupted": [0, 3, 2], "answers": [2],
                                                  "foils": [4]}) + "\n")
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert __import__("re").search(pattern, err), err
    assert not (tmp_path / "o").exists()  # nothing was written


def test_catalogue_has_at_least_thirty_distinct_misuses():
    assert len(API) + len(CLI) >= 30 and len({c[0] for c in API + CLI}) == len(API) + len(CLI)


def test_every_message_names_a_fix_or_the_expected_value():
    # a sample of messages, read as a user would: each says what was expected or how to fix it
    from circuitry.errors import bad_value

    assert "expected" in str(bad_value("x", 1, "two")) and np.isfinite(1.0)
