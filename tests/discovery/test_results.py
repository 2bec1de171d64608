"""EdgeScores: JSON round trip, the graph (circuitry schema, exports), the EAP-IG/MIB JSON, the CLI."""

from __future__ import annotations

import json

import numpy as np

from circuitry.discovery import EdgeScores
from circuitry.graph import read_graphml, write_graphml


def test_edge_scores_round_trip_and_graph(scored, tmp_path):
    s = scored["eap-ig"]
    assert EdgeScores.model_validate_json(s.model_dump_json()) == s
    G = s.to_graph()
    assert G.graph["method"] == "eap-ig" and "L0H3" in G and "logits" in G
    d = G.edges["L0H3", "L1H0"]
    i = s.edges.index("L0H3->L1H0<k>")
    assert d["score_k"] == s.score[i] and d["effect_k"] == -s.score[i] / s.gap
    assert d["in_circuit"] == any(s.in_circuit[s.edges.index(f"L0H3->L1H0<{k}>")] for k in "qkv")
    back = read_graphml(write_graphml(G, tmp_path / "g.graphml"))
    assert back.edges["L0H3", "L1H0"]["score_k"] == d["score_k"]
    C = s.to_graph(circuit_only=True)
    n_kept = sum(len(str(dd["kinds"]).split(",")) for _, _, dd in C.edges(data=True))
    assert n_kept == sum(s.in_circuit) and all(dd["in_circuit"] for _, _, dd in C.edges(data=True))


def test_mib_json_layout(scored):
    s = scored["exact"]
    mib = s.to_mib_json()
    assert set(mib) == {"cfg", "nodes", "edges"} and mib["cfg"]["n_heads"] == 8
    e = mib["edges"]["a0.h3->a1.h0<k>"]
    # MIB's sign (positive helps the task): minus circuitry's score for the logit difference
    assert e["score"] == -s.score[s.edges.index("L0H3->L1H0<k>")] and s.gap > 0
    assert e["in_graph"] == s.in_circuit[s.edges.index("L0H3->L1H0<k>")]
    assert "input->logits" in mib["edges"] and len(mib["edges"]) == 257
    assert mib["nodes"]["a0.h3"]["in_graph"] == any(
        v["in_graph"] for k, v in mib["edges"].items() if k.startswith("a0.h3->"))


def test_cli_discover_writes_every_file(tmp_path):
    from circuitry.cli import main
    from circuitry.discovery.report import DiscoveryReport

    out = tmp_path / "out"
    rc = main(["discover", "--method", "eap,eap-ig", "--n-prompts", "8", "--n-random", "3", "--n-resamples", "100",
               "--stability-resamples", "10", "--quiet", "--out", str(out)])
    assert rc == 0
    rep = DiscoveryReport.model_validate_json((out / "discovery.json").read_text())
    assert rep.methods == ["eap", "eap-ig"] and [c.method for c in rep.faithfulness.curves] == ["eap", "eap-ig"]
    assert rep.provenance.weights_sha256 and rep.provenance.dataset_sha256 and rep.provenance.seed == 0
    for m in ("eap", "eap-ig"):
        for f in ("graph.graphml", "graph.gexf", "graph.json", "circuit.dot", "circuit.mmd", "scores_mib.json"):
            assert (out / m / f).stat().st_size > 0
        dot = (out / m / "circuit.dot").read_text()
        kept = [e for e, k in zip(rep.scores[rep.methods.index(m)].edges, rep.scores[rep.methods.index(m)].in_circuit)
                if k]
        assert dot.count(" -> ") == len(kept)  # DOT draws the kept circuit only
        mib = json.loads((out / m / "scores_mib.json").read_text())
        assert np.isclose(mib["edges"]["a1.h0->logits"]["score"],
                          -rep.scores[rep.methods.index(m)].score[rep.scores[0].edges.index("L1H0->logits")])
    assert (out / "faithfulness.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_rejects_unknown_method(tmp_path, capsys):
    from circuitry.cli import main

    assert main(["discover", "--method", "eap,magic", "--out", str(tmp_path / "o")]) == 2
    assert "method='magic'" in capsys.readouterr().err


def test_discover_functions_return_the_composition_graph(zoo):
    import networkx as nx

    from circuitry.discovery import discover_eap
    from circuitry.graph import edges_by_kind
    from circuitry.prompts import make_task

    G = discover_eap(zoo, make_task("induction", zoo, n_prompts=16, seed=3), progress=False)
    assert isinstance(G, nx.DiGraph) and G.graph["method"] == "eap"
    k_edges = {(u, v): d for u, v, d in edges_by_kind(G, "k")}
    assert len(k_edges) == 8 * 8 + 8 + 8  # layer-0 heads into layer-1 keys, embed into the keys of both layers
    assert any(d["in_circuit"] for _, _, d in G.edges(data=True))
    # every kept edge is supported: BH-adjusted p <= 0.01 on each of its kept kinds
    kept = [d for _, _, d in G.edges(data=True) if d["in_circuit"]]
    assert kept and all(min(v for k, v in d.items() if k.startswith("pvalue_adjusted_") and v == v) <= 0.01
                        for d in kept)
