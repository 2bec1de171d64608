from __future__ import annotations

import json
import math
import re

import networkx as nx
import pytest
from tests.graph.graph_cases import same_value, small_edges

from circuitry.errors import InputError
from circuitry.graph import (
    graph_provenance,
    measurements_from_graph,
    read_gexf,
    read_graphml,
    read_node_link_json,
    to_dot,
    to_mermaid,
    write_all,
    write_gexf,
    write_graphml,
    write_node_link_json,
)

FORMATS = {
    "graphml": (write_graphml, read_graphml),
    "gexf": (write_gexf, read_gexf),
    "json": (write_node_link_json, read_node_link_json),
}


def assert_same_graph(G: nx.DiGraph, H: nx.DiGraph) -> None:
    assert isinstance(H, nx.DiGraph) and not H.is_multigraph()
    assert list(H) == list(G)
    assert set(H.edges) == set(G.edges)
    assert set(H.graph) == set(G.graph)
    for k, v in G.graph.items():
        assert same_value(v, H.graph[k]), (k, v, H.graph[k])
    for n, d in G.nodes(data=True):
        assert set(H.nodes[n]) == set(d), n
        for k, v in d.items():
            assert same_value(v, H.nodes[n][k]), (n, k, v, H.nodes[n][k])
    for u, v, d in G.edges(data=True):
        assert set(H.edges[u, v]) == set(d), (u, v)
        for k, x in d.items():
            assert same_value(x, H.edges[u, v][k]), (u, v, k, x, H.edges[u, v][k])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_round_trip(small_graph, tmp_path, fmt):
    write, read = FORMATS[fmt]
    path = write(small_graph, tmp_path / f"g.{fmt}")
    assert path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [f"g.{fmt}"]  # no temporary files left
    H = read(path)
    assert_same_graph(small_graph, H)
    assert graph_provenance(H) == graph_provenance(small_graph)
    key = lambda m: (m.source, m.target, m.kind)  # noqa: E731
    assert sorted(measurements_from_graph(H), key=key) == sorted(small_edges(), key=key)


def test_same_graph_check_detects_differences(small_graph, tmp_path):
    H = read_graphml(write_graphml(small_graph, tmp_path / "g.graphml"))
    H.edges["embed", "L1H1"]["effect_q"] = math.nan
    with pytest.raises(AssertionError):
        assert_same_graph(small_graph, H)
    H = read_graphml(tmp_path / "g.graphml")
    H.nodes["L0H0"]["layer"] = 0.0  # same value, wrong type
    with pytest.raises(AssertionError):
        assert_same_graph(small_graph, H)


def test_graphml_spells_nan_for_xml_schema(small_graph, tmp_path):
    text = write_graphml(small_graph, tmp_path / "g.graphml").read_text()
    assert ">NaN</data>" in text and ">nan</data>" not in text


def test_node_link_json_is_strict_json(small_graph, tmp_path):
    path = write_node_link_json(small_graph, tmp_path / "g.json")

    def reject(token):
        raise ValueError(f"non-standard JSON constant {token}")

    data = json.loads(path.read_text(), parse_constant=reject)
    edge = next(e for e in data["edges"] if (e["source"], e["target"]) == ("embed", "L1H1"))
    assert edge["effect_q"] == 0.2 and edge["effect_k"] is None


def test_exports_reject_non_scalar_attributes(small_graph, tmp_path):
    small_graph.nodes["L0H0"]["tokens"] = [1, 2]
    for write, _ in FORMATS.values():
        with pytest.raises(InputError, match="'tokens' of L0H0 is a list"):
            write(small_graph, tmp_path / "g.out")
    with pytest.raises(InputError, match="networkx.DiGraph"):
        write_graphml(nx.MultiDiGraph(), tmp_path / "m.graphml")
    with pytest.raises(InputError, match="an existing file"):
        read_graphml(tmp_path / "missing.graphml")


_DOT_EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[(.*)\];$', re.M)
_DOT_ATTR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def test_dot_has_every_measurement(small_graph):
    text = to_dot(small_graph)
    assert text.startswith('digraph "circuit" {') and text.rstrip().endswith("}")
    edges = {}
    for u, v, attrs in _DOT_EDGE.findall(text):
        a = dict(_DOT_ATTR.findall(attrs))
        edges[(u, v, a["kind"])] = a
    expected = {(m.source, m.target, m.kind): m for m in small_edges()}
    assert set(edges) == set(expected)
    for key, m in expected.items():
        assert float(edges[key]["effect"]) == pytest.approx(m.value("effect"), nan_ok=True)
    assert edges[("embed", "L1H1", "q")]["color"] == "#1f77b4" and edges[("L0H0", "L1H1", "k")]["color"] == "#d62728"
    assert edges[("embed", "L1H0", "v")]["style"] == "dashed"  # no effect measured
    graph_line = next(line for line in text.splitlines() if line.strip().startswith("graph ["))
    gattrs = {k: _unescape(v) for k, v in _DOT_ATTR.findall(graph_line)}
    assert gattrs["note"] == small_graph.graph["note"]
    assert json.loads(gattrs["provenance"]) == json.loads(small_graph.graph["provenance"])
    assert 'circuitry_layer="0"' in text and " layer=" not in text


def test_dot_parses_with_pydot(small_graph):
    pydot = pytest.importorskip("pydot")
    (g,) = pydot.graph_from_dot_data(to_dot(small_graph))
    kinds = {(e.get_source().strip('"'), e.get_destination().strip('"'), e.get("kind").strip('"'))
             for e in g.get_edges()}
    assert kinds == {(m.source, m.target, m.kind) for m in small_edges()}


def test_mermaid_has_every_measurement(small_graph):
    text = to_mermaid(small_graph, node_score="induction_score")
    assert text.startswith("flowchart LR\n")
    found = re.findall(r'^\s*(\S+) (?:-->|-\.->)\|"(\w+) ([^"]+)"\| (\S+)$', text, re.M)
    assert {(u, v, k) for u, k, _, v in found} == {(m.source, m.target, m.kind) for m in small_edges()}
    labels = {(u, v, k): x for u, k, x, v in found}
    assert labels[("L0H0", "L1H1", "k")] == "0.8" and labels[("embed", "L1H0", "v")] == "n/a"
    styles = re.findall(r"^\s*linkStyle (\d+) stroke:(#[0-9a-f]{6}),", text, re.M)
    assert [int(i) for i, _ in styles] == list(range(len(found)))
    colours = {"q": "#1f77b4", "k": "#d62728", "v": "#2ca02c", "out": "#7f3fbf"}
    assert [c for _, c in styles] == [colours[k] for _, k, _, _ in found]
    assert 'L1H1["L1H1<br/>induction_score 0.8"]' in text and 'subgraph layer0_5 ["MLP 0"]' in text
    with pytest.raises(InputError, match="node_score='nope'"):
        to_mermaid(small_graph, node_score="nope")


def test_write_all(small_graph, tmp_path):
    files = write_all(small_graph, tmp_path / "out")
    assert sorted(p.name for p in files.values()) == ["graph.dot", "graph.gexf", "graph.graphml", "graph.json", "graph.mmd"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in files.values())
    assert set(read_gexf(files["gexf"]).edges) == set(small_graph.edges)
