from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from circuitry.errors import InputError
from circuitry.graph import (
    FIELDS,
    KINDS,
    EdgeMeasurement,
    build_graph,
    edges_by_kind,
    graph_provenance,
    kind_attr,
    measurements_from_graph,
    set_edge_values,
)

from tests.graph.graph_cases import PROV, small_edges


def test_nodes_in_layer_order_with_attributes(small_graph):
    G = small_graph
    assert list(G) == ["embed", "L0H0", "L0H1", "L0H2", "MLP0", "L1H0", "L1H1", "L1H2", "logits"]
    assert G.nodes["embed"] == {"layer": -1, "head": -1, "type": "embed",
                                "prev_token_score": pytest.approx(math.nan, nan_ok=True),
                                "induction_score": pytest.approx(math.nan, nan_ok=True)}
    assert (G.nodes["L1H2"]["layer"], G.nodes["L1H2"]["head"], G.nodes["L1H2"]["type"]) == (1, 2, "head")
    assert (G.nodes["MLP0"]["layer"], G.nodes["MLP0"]["type"]) == (0, "mlp")
    assert (G.nodes["logits"]["layer"], G.nodes["logits"]["type"]) == (2, "logits")
    assert G.nodes["L0H0"]["prev_token_score"] == 0.9
    assert math.isnan(G.nodes["L0H0"]["induction_score"])


def test_one_edge_per_pair_with_per_kind_attributes(small_graph):
    G = small_graph
    assert G.number_of_edges() == 10  # 11 measurements, q and v of embed -> L1H1 share one edge
    d = G.edges["embed", "L1H1"]
    assert (d["kind"], d["kinds"]) == ("v", "q,v")  # v has the larger |effect|
    assert (d["effect"], d["effect_q"], d["effect_v"]) == (0.6, 0.2, 0.6)
    assert d["composition_q"] == 0.05 and math.isnan(d["composition"]) and math.isnan(d["effect_k"])
    assert d["n_prompts"] == 32.0 and d["n_prompts_v"] == 32.0 and math.isnan(d["n_prompts_q"])
    keys = {frozenset(d) for _, _, d in G.edges(data=True)}
    assert len(keys) == 1  # every edge carries every attribute
    expected = {"kind", "kinds", *FIELDS, "n_prompts"} | {kind_attr(f, k) for f in (*FIELDS, "n_prompts") for k in KINDS}
    assert set(next(iter(keys))) == expected
    assert all(isinstance(v, float) for _, _, d in G.edges(data=True) for k, v in d.items() if k not in ("kind", "kinds"))


def test_dominant_kind_falls_back_to_composition():
    G = build_graph(n_layers=2, n_heads=1, edges=[
        EdgeMeasurement(source="L0H0", target="L1H0", kind="q", composition=0.1),
        EdgeMeasurement(source="L0H0", target="L1H0", kind="k", composition=0.4),
        EdgeMeasurement(source="L0H0", target="L1H0", kind="v"),
    ])
    assert G.edges["L0H0", "L1H0"]["kind"] == "k"
    assert G.edges["L0H0", "L1H0"]["composition"] == 0.4


def test_measurements_round_trip(small_graph):
    def key(m):
        return (m.source, m.target, m.kind)

    assert sorted(measurements_from_graph(small_graph), key=key) == sorted(small_edges(), key=key)


def test_edges_by_kind(small_graph):
    ks = edges_by_kind(small_graph, "k")
    assert [(u, v, d["effect"]) for u, v, d in ks] == [("embed", "L0H0", 0.5), ("L0H0", "L1H1", 0.8), ("L0H1", "L1H1", 0.3)]
    assert ks[0][2]["ci_low"] == 0.4
    with pytest.raises(InputError, match="kind='K'"):
        edges_by_kind(small_graph, "K")


def test_set_edge_values_updates_and_reelects(small_graph):
    G = small_graph
    set_edge_values(G, "embed", "L1H1", "q", pvalue=0.02, effect=0.9)
    d = G.edges["embed", "L1H1"]
    assert (d["kind"], d["effect"], d["pvalue"], d["pvalue_q"], d["effect_v"]) == ("q", 0.9, 0.02, 0.02, 0.6)
    with pytest.raises(InputError, match="not a measured edge"):
        set_edge_values(G, "embed", "L1H1", "k", pvalue=0.1)
    with pytest.raises(InputError, match="field='bogus'"):
        set_edge_values(G, "embed", "L1H1", "q", bogus=1.0)


def test_graph_attrs_and_provenance(small_graph):
    assert small_graph.graph["model_id"] == "test-2l"
    assert isinstance(small_graph.graph["provenance"], str)
    assert graph_provenance(small_graph) == PROV


@pytest.mark.parametrize(
    ("edge", "match"),
    [
        (dict(source="L2H0", target="logits", kind="out"), "source 'L2H0' is not a node"),
        (dict(source="L0H0", target="L0H5", kind="q"), "target 'L0H5' is not a node"),
        (dict(source="MLP1", target="logits", kind="out"), "source 'MLP1' is not a node"),
        (dict(source="L1H0", target="L0H1", kind="k"), "backwards in layer order"),
        (dict(source="L0H0", target="L0H1", kind="k"), "backwards in layer order"),
        (dict(source="logits", target="L1H0", kind="q"), "'logits' cannot send"),
        (dict(source="L0H0", target="logits", kind="q"), "use kind 'out'"),
        (dict(source="L0H0", target="L1H0", kind="out"), "'q', 'k' or 'v' input"),
    ],
)
def test_invalid_edges(edge, match):
    with pytest.raises(InputError, match=match):
        build_graph(n_layers=2, n_heads=2, mlp_layers=[0], edges=[EdgeMeasurement(**edge)])


def test_duplicate_measurement():
    e = EdgeMeasurement(source="L0H0", target="L1H0", kind="k", effect=0.1)
    with pytest.raises(InputError, match=r"edges\[1\]: duplicate measurement"):
        build_graph(n_layers=2, n_heads=1, edges=[e, e])


def test_invalid_arguments():
    with pytest.raises(InputError, match="n_layers=0"):
        build_graph(n_layers=0, n_heads=1, edges=[])
    with pytest.raises(InputError, match="mlp_layers"):
        build_graph(n_layers=2, n_heads=1, edges=[], mlp_layers=[2])
    with pytest.raises(InputError, match="node_scores"):
        build_graph(n_layers=2, n_heads=1, edges=[], node_scores={"L0H0": {"x": 1.0}})
    with pytest.raises(InputError, match=r"node_scores\['s'\]"):
        build_graph(n_layers=2, n_heads=1, edges=[], node_scores={"s": {"L9H0": 1.0}})
    with pytest.raises(InputError, match=r"graph_attrs\['x'\]"):
        build_graph(n_layers=2, n_heads=1, edges=[], graph_attrs={"x": object()})


def test_measurement_validation():
    with pytest.raises(ValidationError, match="outside"):
        EdgeMeasurement(source="embed", target="logits", kind="out", pvalue=1.5)
    with pytest.raises(ValidationError, match="swap"):
        EdgeMeasurement(source="embed", target="logits", kind="out", ci_low=0.5, ci_high=0.1)
    with pytest.raises(ValidationError, match="reserved"):
        EdgeMeasurement(source="embed", target="logits", kind="out", extra={"effect_q": 1.0})
    with pytest.raises(ValidationError):
        EdgeMeasurement(source="embed", target="logits", kind="Q")
    assert EdgeMeasurement(source="embed", target="logits", kind="out", effect=math.nan).effect is None
    # dict input works like EdgeMeasurement
    G = build_graph(n_layers=1, n_heads=1, edges=[{"source": "embed", "target": "logits", "kind": "out", "effect": 1.0}])
    assert G.edges["embed", "logits"]["effect_out"] == 1.0
