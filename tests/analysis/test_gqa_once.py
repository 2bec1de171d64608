"""``circuitry analyze`` on a grouped-query model counts each key/value group once: in the paths, the
findings, the sums, the tables, the graph files and the figure (issue 22, point 8)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from circuitry.analysis.findings import circuit_from_scores
from circuitry.graph import MAX_DRAWN_EDGES, read_graphml
from circuitry.labels import group_of, is_group


@pytest.fixture(scope="module")
def gqa_report(analysis_gqa):  # one run per session (tests/conftest.py), shared with tests/viewer
    return analysis_gqa


@pytest.mark.slow
def test_paths_measure_each_group_once(gqa_report):
    model, r, _ = gqa_report
    i = model.info
    per_layer = i.n_heads + 2 * i.n_kv_heads
    assert len(r.path_patching.paths) == (2 + i.n_heads) * per_layer + 1 + i.n_layers * i.n_heads == 137
    kv = [(e.source, e.target, e.kind) for e in r.edges if e.kind in ("k", "v")]
    assert kv and all(is_group(t) for _, t, _ in kv) and len(kv) == len(set(kv))
    assert all(not is_group(e.target) for e in r.edges if e.kind == "q")
    rows = r.to_records()["paths"]
    assert {row["receiver_query_heads"] for row in rows if row["receiver"] == "L1G0"} == {"L1H0,L1H1,L1H2,L1H3"}


@pytest.mark.slow
def test_k_edges_into_induction_groups_once_and_sums_within_what_was_measured(gqa_report):
    model, r, _ = gqa_report
    P, I = circuit_from_scores(r, model.info.n_layers, model.info.n_heads)[:2]
    assert P is not None and len(I) >= 2
    groups = {group_of(h, model.info.group_size) for h in I}
    assert len(groups) < len(I)  # some group holds several induction heads: the old code counted it again
    f = next(f for f in r.findings if f.claim.startswith("The K-edges"))
    listed = re.findall(r"(\S+)->(L\d+G\d+) \(", f.evidence.split("Summed")[0])
    assert listed and len(listed) == len(set(listed))  # no (sender, group) twice
    assert not re.search(r"->L\d+H\d+ ", f.evidence.split("Summed")[0])  # no K-edge into a query head
    by_group = Counter(g for s, g in listed if s == P)
    assert all(n == 1 for n in by_group.values())
    # the summed K-share from P counts each group once ...
    k_into = {e.target: e for e in r.edges if e.kind == "k" and e.source == P and e.target in groups}
    total = sum(e.effect for e in k_into.values())
    shown = float(re.search(rf"by sender: {P} (-?[\d.]+)", f.evidence).group(1))
    assert shown == pytest.approx(total, abs=0.006)
    # ... and stays within what was measured: the whole gap, and P's own share (its activation patching)
    p_share = next(e for e in r.head_effects if e.site == P)
    slack = sum(e.ci_high - e.ci_low for e in k_into.values()) / 2
    assert total <= 1.0 and total <= p_share.ci_high + slack
    for s in {e.source for e in r.edges if e.kind == "k"}:
        assert sum(e.effect for e in r.edges if e.kind == "k" and e.source == s and e.target in groups) <= 1.0


@pytest.mark.slow
def test_graph_files_and_figure_show_groups_once(gqa_report):
    model, r, out = gqa_report
    G = read_graphml(out / "graph.graphml")
    assert [n for n, d in G.nodes(data=True) if d["type"] == "kv_group"] == ["L0G0", "L0G1", "L1G0", "L1G1"]
    assert G.nodes["L1G1"]["query_heads"] == "L1H4,L1H5,L1H6,L1H7"
    n_measured = sum(len(d["kinds"].split(",")) for *_, d in G.edges(data=True))
    assert n_measured == len(r.edges) == 137
    svg = (out / "figures" / "circuit.svg").read_text()
    drawn = re.findall(r'id="edge:([^"]+)"', svg)
    assert 0 < len(drawn) <= MAX_DRAWN_EDGES and len(drawn) == len(set(drawn))
    assert all(not re.search(r"->L\d+H\d+:[kv]$", d) for d in drawn)
    md = (out / "report.md").read_text()
    assert "L1G0 (L1H0-L1H3)" in md and "Grouped-query attention" in md
