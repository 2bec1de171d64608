"""Property-based tests (hypothesis) over the prompt-pair, metric and graph-export layers."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from circuitry.errors import InputError  # noqa: E402
from circuitry.prompts import PairDataset, PromptPair, read_pairs  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ids = st.integers(min_value=0, max_value=99)


@st.composite
def datasets(draw):
    n, length = draw(st.integers(1, 6)), draw(st.integers(2, 12))
    k = draw(st.integers(1, 3))
    pairs = []
    for _ in range(n):
        clean = draw(st.lists(ids, min_size=length, max_size=length))
        corrupted = draw(st.lists(ids, min_size=length, max_size=length))
        pos = draw(st.lists(st.integers(0, length - 1), min_size=k, max_size=k))
        pairs.append(PromptPair(clean=tuple(clean), corrupted=tuple(corrupted), positions=tuple(pos),
                                answers=tuple(draw(st.lists(ids, min_size=k, max_size=k))),
                                foils=tuple(draw(st.lists(ids, min_size=k, max_size=k)))))
    return PairDataset(task="prop", pairs=tuple(pairs), seed=draw(st.integers(0, 2**31)))


@SETTINGS
@given(datasets())
def test_task_files_round_trip_with_the_same_hash(d):
    with tempfile.TemporaryDirectory() as tmp:
        again = read_pairs(d.to_jsonl(Path(tmp) / "d.jsonl"))
    assert again.pairs == d.pairs and again.sha256() == d.sha256()


@SETTINGS
@given(st.lists(st.one_of(st.text(max_size=40), st.just('{"clean": [1, 2], "corrupted": [1]}'),
                          st.builds(json.dumps, st.dictionaries(st.sampled_from(["clean", "corrupted", "answers",
                                                                                 "x"]),
                                                                st.one_of(st.lists(st.integers(-3, 5), max_size=4),
                                                                          st.text(max_size=5), st.integers())))),
                min_size=0, max_size=5))
def test_task_file_reader_fails_only_with_input_error(lines):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "f.jsonl"
        p.write_text("\n".join(lines), encoding="utf-8")
        try:
            read_pairs(p)
        except InputError:
            pass  # any malformed file is a clear InputError, never another exception


@SETTINGS
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=20), st.floats(-5, 5), st.floats(0.1, 5))
def test_share_is_the_part_of_the_gap_removed(patched, corrupted, gap):
    from circuitry.metrics import normalized_effect, share_of_gap

    clean = corrupted + gap
    for p in patched:
        noise = share_of_gap(normalized_effect(p, clean, corrupted), "noising")
        assert math.isclose(noise, (clean - p) / (clean - corrupted), rel_tol=1e-9, abs_tol=1e-9)
        deno = share_of_gap(normalized_effect(p, clean, corrupted), "denoising")
        assert math.isclose(deno + noise, 1.0, rel_tol=1e-9, abs_tol=1e-9)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**31))
def test_logit_diff_is_antisymmetric_and_loss_is_positive(n, k, seed):
    import torch

    from circuitry.metrics import Targets, logit_diff, loss

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 6, 11, generator=g)
    pos = torch.randint(6, (n, k), generator=g)
    a, f = torch.randint(11, (n, k), generator=g), torch.randint(11, (n, k), generator=g)
    assert torch.allclose(logit_diff(logits, Targets(pos, a, f)), -logit_diff(logits, Targets(pos, f, a)))
    assert bool((loss(logits, Targets(pos, a, f)) > 0).all())


@st.composite
def graphs(draw):
    from circuitry.graph import EdgeMeasurement, build_graph

    L, H = draw(st.integers(2, 3)), draw(st.integers(1, 3))
    heads = [f"L{l}H{h}" for l in range(L) for h in range(H)]
    val = st.one_of(st.none(), st.just(float("nan")), st.floats(-2, 2, allow_nan=False))
    edges, seen = [], set()
    for _ in range(draw(st.integers(0, 8))):
        s = draw(st.sampled_from(["embed"] + heads[:-H]))
        sl = -1 if s == "embed" else int(s[1])
        later = [h for h in heads if int(h[1]) > sl]
        r = draw(st.sampled_from(later + ["logits"]))
        kind = "out" if r == "logits" else draw(st.sampled_from(["q", "k", "v"]))
        if (s, r, kind) in seen:
            continue
        seen.add((s, r, kind))
        pval = st.one_of(st.none(), st.just(float("nan")), st.floats(0, 1))
        edges.append(EdgeMeasurement(source=s, target=r, kind=kind, effect=draw(val), pvalue=draw(pval)))
    return build_graph(n_layers=L, n_heads=H, edges=edges)


def _same(G, H):
    assert set(G.edges) == set(H.edges) and set(G) == set(H)
    for u, v, d in G.edges(data=True):
        for key, x in d.items():
            y = H.edges[u, v][key]
            assert (isinstance(x, float) and math.isnan(x) and math.isnan(y)) or x == y, (u, v, key, x, y)


@SETTINGS
@given(graphs())
def test_graph_exports_round_trip(G):
    from circuitry.graph import read_gexf, read_graphml, read_node_link_json, write_gexf, write_graphml
    from circuitry.graph import write_node_link_json

    with tempfile.TemporaryDirectory() as tmp:
        for write, read, name in ((write_graphml, read_graphml, "g.graphml"), (write_gexf, read_gexf, "g.gexf"),
                                  (write_node_link_json, read_node_link_json, "g.json")):
            _same(G, read(write(G, Path(tmp) / name)))
