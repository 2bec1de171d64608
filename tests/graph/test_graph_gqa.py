"""The composition graph of a grouped-query model: one key/value group node per group, K and V paths
into the group once, and a readable figure (at most 30 arrows by default, colour scales from 0)."""

from __future__ import annotations

import re

import pytest

from circuitry.errors import InputError
from circuitry.graph import (
    EdgeMeasurement,
    build_graph,
    draw_graph,
    drawn_edges,
    layered_layout,
    read_graphml,
    read_node_link_json,
    to_dot,
    to_mermaid,
    write_all,
)
from circuitry.labels import group_label, head_label, node_layer, parse_group


def _gqa_edges(n_heads=8, n_kv=2):
    """embed and the 8 layer-0 heads into every layer-1 query head (q) and group (k, v), and the logits."""
    out = []
    i = 0
    for s in ["embed"] + [head_label(0, h) for h in range(n_heads)]:
        for h in range(n_heads):
            i += 1
            out.append(EdgeMeasurement(source=s, target=head_label(1, h), kind="q", effect=0.001 * i, pvalue_adjusted=0.001))
        for g in range(n_kv):
            for kind in ("k", "v"):
                i += 1
                out.append(EdgeMeasurement(source=s, target=group_label(1, g), kind=kind, effect=0.001 * i))
    out += [EdgeMeasurement(source=head_label(l, h), target="logits", kind="out", effect=0.01)
            for l in range(2) for h in range(n_heads)]
    return out


def test_group_nodes_hold_their_query_heads_and_each_kv_measurement_once():
    edges = _gqa_edges()
    G = build_graph(n_layers=2, n_heads=8, n_kv_heads=2, edges=edges, graph_attrs={"model_id": "gqa"})
    groups = [n for n, d in G.nodes(data=True) if d["type"] == "kv_group"]
    assert groups == ["L0G0", "L0G1", "L1G0", "L1G1"]
    assert G.nodes["L1G1"]["query_heads"] == "L1H4,L1H5,L1H6,L1H7" and G.nodes["L1G1"]["layer"] == 1
    assert G.graph["n_kv_heads"] == 2
    kv = [(u, v) for u, v, d in G.edges(data=True) if set(d["kinds"].split(",")) & {"k", "v"}]
    assert len(kv) == 9 * 2 and all(parse_group(v) for _, v in kv)  # 9 senders x 2 groups, no query head
    assert all(G.edges[u, v]["kinds"] == "q" for u, v in G.edges if v.startswith("L1H"))
    # every export keeps the groups once, with their query heads
    assert to_dot(G).count('-> "L1G0"') == 9 * 2 and 'label="L1G0 = L1H0-L1H3"' in to_dot(G)
    mm = to_mermaid(G)
    assert "L1G0[\"L1G0 = L1H0-L1H3\"]" in mm and "layer 1 key/value groups" in mm and "MLP" not in mm


def test_group_graph_round_trips(tmp_path):
    G = build_graph(n_layers=2, n_heads=8, n_kv_heads=2, edges=_gqa_edges())
    write_all(G, tmp_path)
    for H in (read_graphml(tmp_path / "graph.graphml"), read_node_link_json(tmp_path / "graph.json")):
        assert list(H.nodes) == list(G.nodes) and H.nodes["L1G0"]["query_heads"] == "L1H0,L1H1,L1H2,L1H3"
        assert H.number_of_edges() == G.number_of_edges()


def test_kv_paths_must_enter_the_group_on_a_gqa_model():
    with pytest.raises(InputError, match="group of L1H2"):
        build_graph(n_layers=2, n_heads=8, n_kv_heads=2,
                    edges=[EdgeMeasurement(source="L0H1", target="L1H2", kind="k", effect=0.3)])
    with pytest.raises(InputError, match="per query head"):
        build_graph(n_layers=2, n_heads=8, n_kv_heads=2,
                    edges=[EdgeMeasurement(source="L0H1", target="L1G0", kind="q", effect=0.3)])
    with pytest.raises(InputError, match="only receives"):
        build_graph(n_layers=2, n_heads=8, n_kv_heads=2,
                    edges=[EdgeMeasurement(source="L0G0", target="logits", kind="out", effect=0.3)])
    with pytest.raises(InputError, match="pass n_kv_heads"):  # no groups without grouped-query attention
        build_graph(n_layers=2, n_heads=8, edges=[EdgeMeasurement(source="L0H1", target="L1G0", kind="k")])
    with pytest.raises(InputError, match="n_kv_heads"):
        build_graph(n_layers=2, n_heads=8, n_kv_heads=3, edges=[])


def test_non_gqa_graph_is_unchanged():
    e = [EdgeMeasurement(source="L0H1", target="L1H2", kind="k", effect=0.3)]
    G, H = build_graph(n_layers=2, n_heads=4, edges=e), build_graph(n_layers=2, n_heads=4, n_kv_heads=4, edges=e)
    assert list(G.nodes(data=True)) == list(H.nodes(data=True)) and G.graph == H.graph
    assert "n_kv_heads" not in G.graph and not any(d["type"] == "kv_group" for _, d in G.nodes(data=True))


def test_layout_puts_a_group_beside_the_middle_of_its_heads():
    G = build_graph(n_layers=2, n_heads=8, n_kv_heads=2, edges=[])
    pos = layered_layout(G)
    assert pos["L1G0"][0] == pytest.approx(node_layer("L1G0")) == pytest.approx(0.6)
    assert node_layer("MLP0") < node_layer("L1G0") < node_layer("L1H0")
    assert pos["L1G0"][1] == pytest.approx(sum(pos[f"L1H{h}"][1] for h in range(4)) / 4)
    # one group (multi-query attention) sits on the centre line: moved off MLP0's box
    M = build_graph(n_layers=2, n_heads=4, n_kv_heads=1, edges=[], mlp_layers=[0, 1])
    pm = layered_layout(M)
    assert pm["MLP0"] == (0.5, 0.0) and pm["L1G0"] == (pytest.approx(0.6), -0.75)


def test_figure_draws_the_30_strongest_arrows_and_says_so(tmp_path):
    G = build_graph(n_layers=2, n_heads=8, n_kv_heads=2, edges=_gqa_edges())
    total = G.number_of_edges() + sum(len(d["kinds"].split(",")) - 1 for *_, d in G.edges(data=True))
    rows, n = drawn_edges(G)
    assert n == total == len(_gqa_edges()) == 9 * 12 + 16 and len(rows) == 30
    threshold = sorted((abs(r[3]["effect"]) for r in _measured_rows(G)), reverse=True)[29]
    assert all(abs(r[3]["effect"]) >= threshold for r in rows)
    assert len(drawn_edges(G, max_edges=None)[0]) == n
    (svg,) = draw_graph(G, tmp_path / "g.svg", node_score=None)
    ids = re.findall(r'id="edge:([^"]+)"', svg.read_text())
    assert len(ids) == 30 and len(set(ids)) == 30
    (svg,) = draw_graph(G, tmp_path / "all.svg", max_edges=None)
    assert len(re.findall(r'id="edge:', svg.read_text())) == n
    with pytest.raises(InputError, match="max_edges"):
        drawn_edges(G, max_edges=0)


def _measured_rows(G):
    from circuitry.graph.text import _measured

    return _measured(G, "effect")


def test_node_colour_scale_is_anchored_at_zero(tmp_path, monkeypatch):
    import matplotlib.colors

    seen = []
    real = matplotlib.colors.Normalize

    class Spy(real):
        def __init__(self, vmin=None, vmax=None, clip=False):
            seen.append((vmin, vmax))
            super().__init__(vmin, vmax, clip)

    monkeypatch.setattr(matplotlib.colors, "Normalize", Spy)
    e = [EdgeMeasurement(source="L0H1", target="L1H2", kind="q", effect=0.3)]
    pos = build_graph(n_layers=2, n_heads=4, edges=e, node_scores={"s": {"L0H1": 0.4, "L1H2": 0.9}})
    draw_graph(pos, tmp_path / "a.png", node_score="s", dpi=20)
    signed = build_graph(n_layers=2, n_heads=4, edges=e, node_scores={"s": {"L0H1": -0.2, "L1H2": 0.5}})
    draw_graph(signed, tmp_path / "b.png", node_score="s", dpi=20)
    assert (0.0, 0.9) in seen and (-0.5, 0.5) in seen  # from 0, and symmetric about 0 when signed
    assert (0.4, 0.9) not in seen and (-0.2, 0.5) not in seen  # not from the smallest score
