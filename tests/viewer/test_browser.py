"""report.html in a real browser (Debian's chromium, headless, driven by selenium): it loads with no console
error and no request, draws exactly the nodes and paths of the graph file that pass the filters, and a filter
changes what is drawn. Needs chromium and chromium-driver (apt-get); skipped without them, except in CI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.viewer.drawn import expected_drawn, measured_paths


def _drawn(browser) -> tuple[set[str], set[str], dict[str, int]]:
    nodes, paths = browser.execute_script(
        "return [circuitryGraph.nodes().map(n => n.id()), circuitryGraph.edges().map(e => e.id())];")
    counts = {k: int(browser.find_element("id", f"count-{k}").text) for k in ("nodes", "edges", "total")}
    return set(nodes), set(paths), counts


def _errors(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def _set(browser, **values):
    """Type into the filter inputs and tick boxes the way a user does (input/change events)."""
    for el_id, value in values.items():
        browser.execute_script(
            "const el = document.getElementById(arguments[0]);"
            "if (el.type === 'checkbox') { el.checked = arguments[1]; el.dispatchEvent(new Event('change')); }"
            "else { el.value = arguments[1]; el.dispatchEvent(new Event('input')); }", el_id.replace("_", "-"), value)


def test_analyze_page_draws_what_passes_and_filters_change_it(browser, analyze_dir):
    browser.get((analyze_dir / "report.html").resolve().as_uri())
    assert _errors(browser) == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # no request
    report = json.loads((analyze_dir / "report.json").read_text())
    graph, alpha, min_share = analyze_dir / "graph.json", report["config"]["alpha"], report["config"]["min_share"]
    nodes, paths, counts = _drawn(browser)
    # first view: the run's thresholds (the supported paths, negative ones too)
    assert (nodes, paths) == expected_drawn(graph, max_p=alpha, min_share=min_share)
    assert counts == {"nodes": len(nodes), "edges": len(paths), "total": measured_paths(graph)} and \
        counts["total"] == 257
    assert len(paths) >= 20 and "L0H3->L1H0:k" in paths
    # everything: every node and every measured path of the graph file
    browser.find_element("id", "f-all").click()
    nodes_all, paths_all, counts = _drawn(browser)
    assert (nodes_all, paths_all) == expected_drawn(graph, max_p=1, min_share=0, isolated=True)
    assert counts["nodes"] == 18 and counts["edges"] == 257
    # a stricter |share| draws fewer paths, exactly those the rule keeps
    browser.find_element("id", "f-reset").click()
    _set(browser, f_minshare="0.2")
    nodes_2, paths_2, counts = _drawn(browser)
    assert (nodes_2, paths_2) == expected_drawn(graph, max_p=alpha, min_share=0.2)
    assert 0 < len(paths_2) < len(paths) and counts["edges"] == len(paths_2)
    # kinds: K only
    _set(browser, f_kind_q=False, f_kind_v=False, f_kind_out=False)
    _, paths_k, _ = _drawn(browser)
    assert paths_k == expected_drawn(graph, max_p=alpha, min_share=0.2, kinds=("k",))[1]
    assert paths_k and all(p.endswith(":k") for p in paths_k)
    # a path's numbers on click: share, CI, adjusted p, the test, its flags
    browser.find_element("id", "f-reset").click()
    text = browser.execute_script("circuitryGraph.getElementById('L0H3->L1H0:k').emit('tap');"
                                  "return document.getElementById('details').textContent;")
    e = next(e for e in report["edges"] if (e["source"], e["target"], e["kind"]) == ("L0H3", "L1H0", "k"))
    assert f"{e['effect']:.3f}" in text and f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]" in text
    assert "Hall's skewness-corrected" in text and "significant" in text and "L0H3 \u2192 L1H0" in text
    assert _errors(browser) == []


def test_gqa_page_draws_key_value_paths_once_per_group(browser, gqa_dir):
    browser.get((gqa_dir / "report.html").resolve().as_uri())
    assert _errors(browser) == []
    graph = gqa_dir / "graph.json"
    browser.find_element("id", "f-all").click()
    nodes, paths, counts = _drawn(browser)
    assert (nodes, paths) == expected_drawn(graph, max_p=1, min_share=0, isolated=True)
    assert counts["edges"] == 137 and counts["nodes"] == 2 + 2 * (8 + 2 + 1)
    parents = browser.execute_script("return circuitryGraph.nodes(':parent').map(n => n.id()).sort();")
    assert parents == ["L0G0", "L0G1", "L1G0", "L1G1"]  # each group is a box around its query heads
    assert browser.execute_script("return circuitryGraph.getElementById('L1H2').parent().id();") == "L1G0"
    kv = [p for p in paths if p.endswith((":k", ":v"))]
    assert kv and all(p.split("->")[1].startswith(("L0G", "L1G")) for p in kv)
    browser.find_element("id", "f-reset").click()
    assert _drawn(browser)[:2] == expected_drawn(graph, max_p=0.01, min_share=0.05)
    assert _errors(browser) == []


def test_discover_page_switches_methods(browser, discover_dir):
    from selenium.webdriver.support.ui import Select

    browser.get((discover_dir / "report.html").resolve().as_uri())
    assert _errors(browser) == []
    eap = expected_drawn(discover_dir / "eap" / "graph.json", max_p=0.01, min_share=0.05)
    assert _drawn(browser)[:2] == eap
    Select(browser.find_element("id", "view-select")).select_by_visible_text("acdc")
    acdc = expected_drawn(discover_dir / "acdc" / "graph.json", max_p=1, min_share=0, kept_only=True, has_p=False)
    assert _drawn(browser)[:2] == acdc and acdc != eap and acdc[1]
    _set(browser, f_kept=False)  # ACDC without its kept-only filter: every scored edge
    assert len(_drawn(browser)[1]) == measured_paths(discover_dir / "acdc" / "graph.json") == 257
    assert _errors(browser) == []


def test_hostile_text_stays_text(browser, hostile_dir):
    from tests.viewer.conftest import HOSTILE

    browser.get((hostile_dir / "report.html").resolve().as_uri())
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_element("id", "title").get_attribute("textContent").endswith(f"task {HOSTILE}")
    assert int(browser.find_element("id", "count-edges").text) > 0 and _errors(browser) == []


def test_the_counts_docs_viewer_md_quotes(browser):
    """docs/viewer.md and the README screenshot quote the page of the README's quickstart run (the run the docs
    tests make; shared within a session)."""
    from tests.docs.runs import run

    res = run("circuitry analyze --out circuitry-results")
    assert res.returncode == 0, res.stderr
    d = res.cwd / "circuitry-results"
    browser.get((d / "report.html").resolve().as_uri())
    assert _errors(browser) == []
    assert browser.find_element("id", "counts").text == "Drawn: 8 nodes, 24 paths (17 node pairs) of 257 measured."
    assert _drawn(browser)[:2] == expected_drawn(d / "graph.json", max_p=0.01, min_share=0.05)
    doc = (Path(__file__).parents[2] / "docs" / "viewer.md").read_text()
    assert "Drawn: 8 nodes, 24 paths (17 node pairs) of 257 measured" in doc and "draw 24 of the 257" in doc


def test_a_run_with_no_graph_says_why(browser, analyze_dir, tmp_path):
    """A run whose gap is not resolved measures no path and writes no graph: the page says so, without error."""
    import shutil

    from circuitry.viewer import write_report_html

    d = tmp_path / "out"
    shutil.copytree(analyze_dir, d)
    (d / "graph.json").unlink()
    write_report_html(d)
    browser.get((d / "report.html").resolve().as_uri())
    assert "the clean-corrupted gap is not resolved" in browser.find_element("id", "note").text
    assert browser.execute_script("return window.circuitryGraph === undefined") and _errors(browser) == []
