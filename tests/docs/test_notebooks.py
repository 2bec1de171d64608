"""The notebooks of docs/notebooks/ run, one per tutorial, and print what the tutorial states and the library
computes (issue 29, point 1).

All nine execute once per session with nbclient (:mod:`tests.docs.notebooks`: this interpreter's kernel, two at
a time); an error in any cell fails the session's fixture. Each test then reads one notebook's outputs: lines
the tutorial quotes from the same computation must be printed verbatim; where the notebook uses smaller
settings than the tutorial, its numbers are recomputed here with the library and must be equal.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from tests.docs.notebooks import NOTEBOOKS, REPO, execute_all, names

TUTORIALS = REPO / "docs" / "tutorials"


def squash(text: str) -> str:
    return " ".join(text.split())


def tutorial_lines(name: str) -> list[str]:
    """The lines of the fenced blocks of ``docs/tutorials/{name}.md`` in order, whitespace squashed."""
    out, inside = [], False
    for line in (TUTORIALS / f"{name}.md").read_text().splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            out.append(squash(line))
    return out


def printed(run, cell: int | None = None) -> list[str]:
    return [squash(ln) for ln in run.stream(cell).splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return execute_all(names(), root=tmp_path_factory.mktemp("notebooks"))


@pytest.fixture(scope="module")
def model():
    from circuitry.models import load_model

    return load_model("zoo:attn-only-2l")


def test_one_notebook_per_tutorial_in_sync_with_its_script():
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    import nbformat

    assert names() == sorted(p.stem for p in TUTORIALS.glob("*.md")) == sorted(make_notebooks.NOTEBOOKS)
    for name in names():
        committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        built = make_notebooks.build(name)
        assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in built.cells], (
            f"docs/notebooks/{name}.ipynb differs from make_notebooks.py: run python docs/notebooks/make_notebooks.py")
        assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code"), "commit without outputs"
        assert f"](../notebooks/{name}.ipynb)" in (TUTORIALS / f"{name}.md").read_text(), f"{name}.md links its notebook"


def test_kernels_run_this_interpreter(runs):
    for run in runs.values():
        assert run.stream().splitlines()[-1] == f"kernel: {sys.executable}"


def test_activation_patching(runs, model):
    from circuitry.display import fmt
    from circuitry.interventions import ablate_heads, activation_patch
    from circuitry.metrics import Targets
    from circuitry.prompts import make_task

    run = runs["activation-patching"]
    data = make_task("induction", model, n_prompts=16, seed=0)
    noise = activation_patch(model, data, site="z", direction="noising", progress=False)
    denoise = activation_patch(model, data, site="z", direction="denoising", progress=False)
    assert run.stream(2) == noise.summary() + "\n" + denoise.summary() + "\n"
    top = max(noise.decisions().sites, key=lambda d: abs(d.share))
    assert top.site == "L0H3" and f">{fmt(top.share)}<" in run.html()[0] and f">{fmt(top.pvalue_adjusted)}<" in run.html()[0]
    pos, ans, foil = data.targets()
    losses = ablate_heads(model, data.clean_ids(), [[], ["L1H3"], ["L0H3", "L1H5"]], Targets(pos, ans, foil),
                          method="mean", metric="loss").mean(dim=-1).tolist()
    shown = [float(ln.rsplit(" ", 1)[1]) for ln in printed(run, 4)]
    assert shown == [round(x, 3) for x in losses] and shown[2] > 10 * shown[0]  # L0H3 + L1H5 break induction
    assert run.images() == 1


def test_bring_your_own_task(runs):
    run = runs["bring-your-own-task"]
    findings = [ln for ln in printed(run, 2) if ln.startswith("[")]
    assert len(findings) == 6
    quoted = tutorial_lines("bring-your-own-task")
    assert [f for f in findings if f not in quoted] == []  # every finding is the one circuitry analyze prints
    report = json.loads((run.folder / "bigram-analysis" / "report.json").read_text())
    assert report["circuit_heads"] == ["L1H0", "L1H2", "L1H5", "L1H7"]
    assert any("circuitry-result" in h and "L1H0" in h for h in run.html())


def test_decodability(runs, model):
    from circuitry.decodability import TOPIC_TASKS, decodability

    r = decodability(model, TOPIC_TASKS, n_examples=(0, 1, 4), seed=0, progress=False)
    assert runs["decodability"].stream(0) == r.to_markdown() + "\n"
    assert runs["decodability"].images() == 1


def test_discover_a_circuit(runs):
    run = runs["discover-a-circuit"]
    kept, auc, faith = printed(run, 1)[:2] + printed(run, 2)[:1]
    quoted = tutorial_lines("discover-a-circuit")
    assert kept in quoted  # "eap: 25 edges kept; largest |score|: L1H0->logits -1.513, ..."
    tutorial_eap = next(ln for ln in quoted if ln.startswith("eap: ROC AUC"))
    assert auc == tutorial_eap.split(",")[0]
    cpr = re.search(r"CPR (\d\.\d+)", faith).group(1)
    # the first "eap: CPR" line is the run on all 16 prompts (the later one --replicate's); 500 resamples there
    assert f"CPR {cpr} " in next(ln for ln in quoted if ln.startswith("eap: CPR"))
    assert "p 0.05 (floor 0.05)" in faith and run.images() == 1


def test_find_induction_heads(runs):
    run = runs["find-induction-heads"]
    lines = printed(run)[:-1]
    assert len(lines) == 6
    quoted = tutorial_lines("find-induction-heads")
    assert [ln for ln in lines if ln not in quoted] == []  # the tutorial's settings, the tutorial's numbers
    src, dst, raw, above = re.match(r"strongest K-composition: (\S+)->(\S+) (\S+) \((\S+) above baseline\)",
                                    next(q for q in quoted if q.startswith("strongest K"))).groups()
    k_table = next(h for h in run.html() if "K-composition" in h)  # its first row is the tutorial's strongest pair
    first = re.search(r"<tbody><tr>(.*?)</tr>", k_table).group(1)
    assert re.findall(r">([^<]+)</td>", first)[:3] == [f"{src}-&gt;{dst}", raw, f"{float(above):.3f}"]
    assert run.images() == 1


def test_head_catalogue(runs):
    lines = printed(runs["head-catalogue"])[:-1]
    quoted = {}
    for ln in (TUTORIALS / "head-catalogue.md").read_text().split("random-init:")[0].splitlines():
        m = re.match(r"\s+([a-z_]+)\s+(none significant|L\d.*?)\s*\(best", ln)
        if m:
            quoted[m.group(1)] = re.findall(r"(L\dH\d) [+-]", m.group(2)) or ["none significant"]
    shown = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1].split(", ") for ln in lines}
    both = sorted(quoted.keys() & shown.keys())
    assert len(shown) == len(both) == 13  # every detector, and the tutorial's own two_back
    assert {k: shown[k] for k in both} == {k: quoted[k] for k in both}  # labelled as the tutorial lists them


def test_phase_change(runs):
    lines = set(printed(runs["phase-change"]))
    text = (TUTORIALS / "phase-change.md").read_text()
    block = text.split("<!-- output: python examples/phase_change.py out => out/dynamics_attn-only-2l.md -->")[1]
    quoted = [squash(ln) for ln in block.split("```")[1].splitlines() if ln.strip() and ln.strip() != "..."]
    quoted = [q for q in quoted if q != "text"]
    assert len(quoted) >= 8 and [q for q in quoted if q not in lines] == []


def test_trace_the_induction_circuit(runs):
    run = runs["trace-the-induction-circuit"]
    findings = printed(run, 0)
    text = (TUTORIALS / "trace-the-induction-circuit.md").read_text()
    claims = [squash(ln) for ln in text.splitlines() if re.match(r"\[(holds|DOES NOT HOLD)\]", ln)
              and "null, p <=" not in ln]  # the random-head tests: 1000 sets there, 200 here (the notebook says so)
    said = [re.compile(".*".join(map(re.escape, c.split("...")))) for c in claims]  # "..." elides words
    assert len(claims) >= 4 and [c.pattern for c in said if not any(c.fullmatch(f) for f in findings)] == []
    report_md = {squash(ln) for ln in (run.folder / "circuitry-results" / "report.md").read_text().splitlines()}
    rows = [squash(ln) for ln in text.splitlines() if re.match(r"\| L\dH\d \| -?\d", ln)]
    assert len(rows) >= 3 and [r for r in rows if r not in report_md] == []
    assert run.images() == 2
    from circuitry.analysis import AnalysisReport

    report = AnalysisReport.model_validate_json((run.folder / "circuitry-results" / "report.json").read_text())
    text = repr(report).splitlines()  # 11 findings, 16 heads: still a screenful
    assert len(text) <= 25 and max(map(len, text)) <= 160
    top = max(report.head_effects, key=lambda e: abs(e.share))
    assert text[text.index(next(t for t in text if t.startswith("head "))) + 1].split()[:2] == [top.site, f"{top.share:.3f}"]


def test_validate_a_claim(runs):
    run = runs["validate-a-claim"]
    line = next(ln for ln in printed(run, 1) if ln.startswith("REFUTED"))
    quoted = next(ln for ln in tutorial_lines("validate-a-claim") if ln.startswith("REFUTED bystander-heads-matter"))
    assert line.split(" — ")[0] == quoted.split(" — ")[0]  # REFUTED bystander-heads-matter: p=0.792 (floor 0.00833)
    verdicts = json.loads((run.folder / "verdicts" / "false_claim" / "verdicts.json").read_text())
    assert verdicts["exit_code"] == 1 and verdicts["results"][0]["verdict"]["outcome"] == "refuted"
    assert any("REFUTED" in h and "0.792" in h for h in run.html())


def test_rich_results_render_as_html_tables(runs):
    shown = {n: r.html() for n, r in runs.items()}
    for name in ("activation-patching", "bring-your-own-task", "discover-a-circuit", "find-induction-heads",
                 "head-catalogue", "trace-the-induction-circuit", "validate-a-claim"):
        assert any(h.startswith('<div class="circuitry-result">') and "<table" in h for h in shown[name]), name
    assert np.mean([len(h) for hs in shown.values() for h in hs if "circuitry-result" in h]) < 20000
