"""The data of report.html against the files it is read from: every node and measured path of the graph file,
the run's own flags and thresholds, key/value groups as one unit, escaped text, offline, and `circuitry view`."""

from __future__ import annotations

import json
import shutil

import pytest

from circuitry.graph import read_node_link_json
from circuitry.labels import is_group
from circuitry.viewer import page_data
from tests.viewer.conftest import HOSTILE, page_json
from tests.viewer.drawn import measured_paths


def _view(d, name=None):
    data = page_json((d / "report.html").read_text())
    return data, next(v for v in data["views"] if name is None or v["name"] == name)


def test_analyze_page_holds_every_node_and_path_of_the_graph_file(analyze_dir):
    data, view = _view(analyze_dir)
    G = read_node_link_json(analyze_dir / "graph.json")
    report = json.loads((analyze_dir / "report.json").read_text())
    assert {n["id"] for n in view["nodes"]} == set(G) and len(view["nodes"]) == G.number_of_nodes() == 18
    assert len(view["paths"]) == measured_paths(analyze_dir / "graph.json") == len(report["edges"]) == 257
    assert len({p["id"] for p in view["paths"]}) == len(view["paths"])
    by_id = {p["id"]: p for p in view["paths"]}
    for e in report["edges"]:  # the numbers are the report's, path by path
        p = by_id[f"{e['source']}->{e['target']}:{e['kind']}"]
        assert p["share"] == e["effect"] and p["pvalue_adjusted"] == e["pvalue_adjusted"]
        assert p.get("ci_low") == e["ci_low"] and p.get("ci_high") == e["ci_high"]
    flags = {e["site"]: (e["significant"], e["matters"]) for e in report["path_effects"]}
    assert {p["id"]: (p["significant"], p["matters"]) for p in view["paths"]} == flags
    assert view["defaults"] == {"max_p": report["config"]["alpha"], "min_share": report["config"]["min_share"],
                                "kept_only": False}
    assert "Hall's skewness-corrected" in view["test"] and "Benjamini-Hochberg" in view["test"]
    assert {n["id"] for n in view["nodes"] if n["member"]} == set(report["circuit_heads"])
    l0h3 = next(n for n in view["nodes"] if n["id"] == "L0H3")
    assert l0h3["numbers"]["prev_token_score"] == G.nodes["L0H3"]["prev_token_score"] > 0.9
    assert data["header"]["Model"] == "zoo:attn-only-2l" and data["header"]["Seed"] == "0"
    assert data["provenance"]["weights_sha256"] == report["provenance"]["weights_sha256"]
    assert {f["href"] for f in data["figures"]} == set(report["figures"])
    # by layer, left to right: embed, layer 0, layer 1, logits
    x = {n["id"]: n["x"] for n in view["nodes"]}
    assert x["embed"] < x["L0H0"] == x["L0H7"] < x["L1H0"] < x["logits"]


def test_gqa_key_value_paths_enter_each_group_once(gqa_dir, analysis_gqa):
    model, report, _ = analysis_gqa
    _, view = _view(gqa_dir)
    G = read_node_link_json(gqa_dir / "graph.json")
    info = model.info
    assert len(view["nodes"]) == G.number_of_nodes() == 2 + info.n_layers * (info.n_heads + info.n_kv_heads + 1)
    assert len(view["paths"]) == measured_paths(gqa_dir / "graph.json") == len(report.edges) == 137
    kv = [(p["source"], p["target"], p["kind"]) for p in view["paths"] if p["kind"] in ("k", "v")]
    assert kv and all(is_group(t) for _, t, _ in kv) and len(kv) == len(set(kv))
    assert all(not is_group(p["target"]) for p in view["paths"] if p["kind"] == "q")
    parents = {n["id"]: n["parent"] for n in view["nodes"] if n["type"] == "head"}
    assert parents["L1H2"] == "L1G0" and parents["L1H5"] == "L1G1" and parents["L0H0"] == "L0G0"
    group = next(n for n in view["nodes"] if n["id"] == "L1G0")
    assert group["type"] == "kv_group" and group["query_heads"] == "L1H0,L1H1,L1H2,L1H3" and group["parent"] is None


def test_discover_page_has_one_view_per_method(discover_dir):
    data = page_json((discover_dir / "report.html").read_text())
    disc = json.loads((discover_dir / "discovery.json").read_text())
    assert [v["name"] for v in data["views"]] == ["eap", "acdc"]
    for v, s in zip(data["views"], disc["scores"]):
        G = read_node_link_json(discover_dir / v["graph_file"])
        assert len(v["paths"]) == measured_paths(discover_dir / v["graph_file"]) == len(s["edges"]) == 257
        assert len(v["nodes"]) == G.number_of_nodes()
        kept = {p["id"] for p in v["paths"] if p["kept"]}
        assert len(kept) == sum(s["in_circuit"]) > 0
        assert all(p["rank"] >= 1 and "score" in p for p in v["paths"])
    eap, acdc = data["views"]
    assert eap["defaults"] == {"max_p": 0.01, "min_share": 0.05, "kept_only": False} and eap["has_kept"]
    assert "Hall's" in eap["test"] and "Benjamini-Hochberg" in eap["test"]
    # ACDC keeps edges by its sweep and gives no p-values: the page starts from its kept circuit
    assert acdc["alpha"] is None and acdc["defaults"]["kept_only"] and "ACDC" in acdc["test"]
    assert all(p["pvalue_adjusted"] is None for p in acdc["paths"])
    assert data["header"]["Methods"] == "eap, acdc" and {"faithfulness.png", "eap/circuit.png"} <= \
        {f["href"] for f in data["figures"]}


def test_text_from_the_files_is_escaped(hostile_dir):
    html = (hostile_dir / "report.html").read_text()
    assert html.count("<script") == 3  # the data block, cytoscape.js, viewer.js: nothing injected
    assert HOSTILE not in html and "<img src=x" not in html
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html  # the title and the finding
    data = page_json(html)
    assert data["title"].endswith(f"task {HOSTILE}") and data["findings"][0]["claim"] == HOSTILE  # unchanged text
    assert all(f["href"].startswith("figures/") for f in data["figures"])
    assert "outside.png" not in html and "javascript:" not in html and "/etc/passwd" not in html


def test_page_is_self_contained_and_offline(analyze_dir):
    html = (analyze_dir / "report.html").read_text()
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\';' in html
    assert " src=" not in html.split('<script type="application/json"')[0]  # no external script, image or frame
    assert "<link rel=\"stylesheet\"" not in html and "@import" not in html
    assert "cytoscape.js 3.35.0" in html and len(html) > 400_000  # the library is inside the file


def test_view_command(analyze_dir, tmp_path, capsys, monkeypatch):
    from circuitry.cli import main

    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    assert main(["view", str(analyze_dir)]) == 0
    page = (analyze_dir / "report.html").resolve()
    assert capsys.readouterr().out.strip() == str(page) and opened == [page.as_uri()]
    assert main(["view", str(analyze_dir), "--no-browser"]) == 0 and len(opened) == 1
    assert main(["view", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    old = tmp_path / "old"  # a folder from a circuitry without the page: --build writes it
    shutil.copytree(analyze_dir, old)
    (old / "report.html").unlink()
    assert main(["view", str(old), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "report.html does not exist" in err and f"circuitry view {old} --build" in err
    assert main(["view", str(old), "--no-browser", "--build"]) == 0
    assert page_json((old / "report.html").read_text()) == page_json((analyze_dir / "report.html").read_text())
    (tmp_path / "empty").mkdir()
    assert main(["view", str(tmp_path / "empty")]) == 2
    assert "circuitry analyze --out" in capsys.readouterr().err
    with pytest.raises(Exception, match="neither report.json"):
        page_data(tmp_path / "empty")
