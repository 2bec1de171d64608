"""Write the outputs of ``circuitry analyze``: figures, the graph in every format, ``report.json`` and
``report.md`` (the findings in words, with their numbers, as a researcher would report them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitry.analysis.results import AnalysisReport
from circuitry.io import atomic_write_json, atomic_write_text
from circuitry.labels import all_heads, describe_group, is_group, parse_head, receiver_text

def supported_edges(report: AnalysisReport, *, min_share: float | None = None) -> list:
    """The paths the statistics support: BH-adjusted p <= the run's alpha and a share of at least
    ``min_share`` (default: the run's ``min_share``), the member rule of :mod:`circuitry.stats.decide`. Only
    these are drawn (``figures/circuit.*``) and written to ``graph.dot``/``graph.mmd``."""
    a = report.config.alpha
    min_share = report.config.min_share if min_share is None else min_share
    return [e for e in report.edges if e.pvalue_adjusted is not None and e.pvalue_adjusted <= a
            and (e.effect or 0) >= min_share]


def build_report_graph(report: AnalysisReport, model, *, min_share: float | None = None, supported: bool = False):
    """The composition graph of a report: every measured path, or (``supported=True``) only the paths of
    :func:`supported_edges`, or (``min_share``) the paths carrying at least that share; node scores
    (head scores, patching share with CI and p-values), provenance. With grouped-query attention the K and
    V paths enter key/value group nodes ``L{l}G{g}`` (one per group, with its ``query_heads``)."""
    from circuitry.errors import InputError
    from circuitry.graph import build_graph

    info = model.info
    stale = [e for e in report.edges if e.kind in ("k", "v") and not is_group(e.target)]
    if info.n_kv_heads < info.n_heads and stale:
        raise InputError(
            f"the path patching of this run names a key/value path into query head {stale[0].target} of "
            f"{model.model_id}, which has grouped-query attention: it was measured by a circuitry that repeated "
            "each key/value group's measurement under every query head. Fix: delete stages/path_patching.json "
            "in the output folder and run again (K and V are now measured once per key/value group, L{l}G{g})")
    node_scores: dict[str, dict[str, float]] = {}
    for name, attr in (("previous_token", "prev_token_score"), ("induction", "induction_score"),
                       ("duplicate_token", "duplicate_token_score")):
        arr = report.head_scores[name].numpy()
        node_scores[attr] = {h: float(arr[parse_head(h)]) for h in all_heads(info.n_layers, info.n_heads)}
    node_scores["patching_share"] = {e.site: e.share for e in report.head_effects}
    node_scores["patching_ci_low"] = {e.site: e.ci_low for e in report.head_effects}
    node_scores["patching_ci_high"] = {e.site: e.ci_high for e in report.head_effects}
    node_scores["patching_pvalue"] = {e.site: e.pvalue for e in report.head_effects}
    node_scores["patching_pvalue_adjusted"] = {e.site: e.pvalue_adjusted for e in report.head_effects}
    edges = supported_edges(report) if supported else report.edges
    if min_share is not None:
        edges = [e for e in edges if (e.effect or 0) >= min_share]
    return build_graph(n_layers=info.n_layers, n_heads=info.n_heads, n_kv_heads=info.n_kv_heads, edges=edges,
                       node_scores=node_scores, mlp_layers=range(info.n_layers) if info.has_mlp else (),
                       graph_attrs={"model_id": model.model_id, "provenance": report.provenance,
                                    "effect": "share of the clean-corrupted metric gap carried by the path "
                                              f"({report.config.direction}, {report.task.metric})"})


def _circuit_title(report: AnalysisReport, model) -> str:
    c = report.config
    return (f"{model.model_id}, task {report.task.name}: paths with BH-adjusted p <= {c.alpha} carrying >= "
            f"{c.min_share:.0%} of the {report.task.metric} gap ({c.direction})")


def write_outputs(report: AnalysisReport, model, out: Path, *, quiet: bool = False) -> AnalysisReport:
    from circuitry.graph import draw_graph, prune, write_all
    from circuitry.plots import message_figure
    from circuitry.viewer import write_report_html

    figs = out / "figures"
    # report.json and report.md go first and come back last: a run killed while writing the outputs leaves
    # a folder without a report, never an old report beside new figures
    for stale in ("report.json", "report.md", "report.html"):
        (out / stale).unlink(missing_ok=True)
    paths = []
    for name, hs in report.head_scores.items():
        paths.append(hs.heatmap(figs / f"scores_{name}.png"))
    if model.info.n_layers > 1:  # composition needs an earlier and a later layer
        from circuitry.scores.results import composition_heatmaps

        paths += composition_heatmaps(report.composition, figs)
    paths.append(report.patching.heatmap(figs / f"patching_{report.config.direction}_z.png"))
    circuit_files = [figs / "circuit.png", figs / "circuit.svg"]
    if report.path_patching is not None:
        G = build_report_graph(report, model)
        drawn = prune(build_report_graph(report, model, supported=True), threshold=0.0)
        write_all(G, out, stem="graph", drawn=drawn)
    else:
        drawn = None
        for ext in ("graphml", "gexf", "json", "dot", "mmd"):  # no paths measured: no graph from an older run
            (out / f"graph.{ext}").unlink(missing_ok=True)
    if drawn is not None and drawn.number_of_edges():
        score, words = (("induction_score", "induction (prefix-matching) score") if report.task.name == "induction"
                        else ("patching_share", f"head's share of the {report.task.metric} gap"))
        # at most MAX_DRAWN_EDGES arrows, the largest shares; the legend says how many of how many, and the
        # graph files keep every one
        paths += draw_graph(drawn, circuit_files, node_score=score, title=_circuit_title(report, model),
                            attr_label=f"share of the {report.task.metric} gap", node_label=words,
                            node_range=(0.0, 1.0) if score == "induction_score" else (-1.0, 1.0))
    else:
        why = ("the clean-corrupted gap is not resolved, so no path was measured" if drawn is None else
               f"no path has a BH-adjusted p <= {report.config.alpha} and a share >= {report.config.min_share:.0%}")
        paths += [message_figure(f, _circuit_title(report, model), f"Nothing to draw: {why}.") for f in circuit_files]
    report = report.model_copy(update={"figures": [str(Path(p).relative_to(out)) for p in paths]})
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report, model))
    write_report_html(out)  # the interactive page, from the files just written (circuitry.viewer)
    if not quiet:
        for f in report.findings:
            print(f"[{'holds' if f.holds else 'DOES NOT HOLD'}] {f.claim}\n    {f.evidence}")
        graph = ", graph.graphml/.json/.gexf (every path) and .dot/.mmd (the supported ones)" \
            if report.path_patching is not None else ""
        print(f"[circuitry analyze] wrote report.md, report.html, report.json{graph} and {len(paths)} figures")
    return report


def _group_note(r: AnalysisReport, info) -> str:
    """Words on grouped-query attention ('' without): K and V paths are measured once per key/value group."""
    if info.n_kv_heads >= info.n_heads:
        return ""
    return (f" Grouped-query attention ({info.n_kv_heads} key/value heads for {info.n_heads} query heads per layer): "
            f"a K or V path enters a key/value group `L{{l}}G{{g}}`, shared by its {info.group_size} query heads, and "
            f"is measured, counted and drawn once for the group (e.g. `{describe_group('L0G0', info.group_size)}`); "
            "Q paths are per query head.")


def _interval(lo: float | None, hi: float | None) -> str:
    """``[lo, hi]`` with an unbounded end (the gap unresolved) written as -inf/inf."""
    return f"[{'-inf' if lo is None else f'{lo:.3f}'}, {'inf' if hi is None else f'{hi:.3f}'}]"


def _num(x, fmt: str) -> str:
    return "undefined (the null has no spread)" if x is None else format(x, fmt)


def _table(rows, header) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(r: AnalysisReport, model) -> str:
    """``report.md``: findings first, then the evidence section by section, in words true for the task."""
    from circuitry.metrics import share_label

    c, p, t = r.config, r.provenance, r.task
    info = model.info
    md = [f"# circuitry analyze: {model.model_id}", "",
          f"Task `{t.name}` ({t.source}): {t.prompts}. Metric `{t.metric}`: {t.target}. "
          f"{t.n_discovery} discovery prompt pairs (seed {c.seed}); the circuit test uses {t.test_prompts}. "
          f"{info.n_layers} layers x {info.n_heads} heads, d_model {info.d_model}, "
          f"{'attention-only' if not info.has_mlp else 'with MLPs'}, {info.positional} positions. "
          f"Patching direction **{c.direction}**; findings need an adjusted p <= {c.alpha}. circuitry "
          f"{p.library_version}, torch {p.torch_version}, weights sha256 `{p.weights_sha256[:16]}…`, dataset sha256 "
          f"`{p.dataset_sha256[:16]}…`.", "",
          "**Share** (every table and figure): the part of the clean-corrupted gap a head or path carries, "
          f"{share_label(t.metric, c.direction)}.", "", "## Findings", ""]
    for f in r.findings:
        md.append(f"- **{'Holds' if f.holds else 'Does not hold'}:** {f.claim}  \n  {f.evidence}")
    from circuitry.graph import MAX_DRAWN_EDGES

    supported = len(supported_edges(r)) if r.path_patching is not None else 0
    drawn = min(supported, MAX_DRAWN_EDGES)
    which = (f"The {supported} paths" if drawn == supported else
             f"The {drawn} largest of the {supported} paths (the figure draws at most {MAX_DRAWN_EDGES})")
    md += ["", "![circuit](figures/circuit.png)", "",
           (f"*{which} with BH-adjusted p <= {c.alpha} that carry at least {c.min_share:.0%} of the "
            f"{t.metric} gap; width = share, colour = kind (q, k, v, out). `graph.dot` and `graph.mmd` hold all "
            f"{supported} supported paths; `graph.graphml`, `graph.gexf` and `graph.json` hold every measured path "
            "with its statistics.*" + _group_note(r, info)
            if drawn else "*No path is drawn: none is supported by the statistics (see the findings).*"),
           "", "## Head scores (Olsson et al. 2022)", "",
           "Properties of the model's heads on Olsson et al.'s repeated random sequences, whatever the task.", ""]
    rows = []
    for name, hs in r.head_scores.items():
        top = hs.top(3)
        rows.append([name, "; ".join(f"{h} {v:.2f}" for h, v in top), f"{hs.n_samples}"])
    md += [_table(rows, ["score", "top heads (mean over sequences)", "sequences"]), ""]
    md += [f"![{n}](figures/scores_{n}.png)" for n in r.head_scores] + [""]
    if r.icl is not None:
        md += [f"ICL score (loss at token {r.icl.details.get('late')} minus token {r.icl.details.get('early')}; "
               f"negative = in-context learning): **{r.icl.statistic:.3f}** nats, 95% CI "
               f"[{r.icl.ci_low:.3f}, {r.icl.ci_high:.3f}] over {r.icl.n_samples} sequences.", ""]
    if info.n_layers > 1:
        md += ["## Composition scores (Elhage et al. 2021)", "",
               "Raw Frobenius-norm ratio, the random-matrix baseline for the exact shapes (mean +- sd over "
               f"{c.n_baseline} simulated pairs), and the largest pairs. The Q, K and V figures share one colour "
               "scale.", ""]
        rows = []
        for kind, comp in r.composition.items():
            top = comp.pairs(3)
            rows.append([kind, f"{comp.baseline_mean:.3f} +- {comp.baseline_std:.3f}",
                         "; ".join(f"{s}->{d} {raw:.3f} ({(raw - comp.baseline_mean) / comp.baseline_std:+.1f} sd)"
                                   for s, d, raw, _ in top)])
        md += [_table(rows, ["kind", "baseline (mean +- sd)", "largest pairs (raw score, sd above baseline)"]), ""]
        md += [f"![{k}](figures/composition_{k}.png)" for k in r.composition] + [""]
    g = r.gap
    md += [f"## Activation patching per head ({c.direction}, Zhang & Nanda 2024)", "",
           f"Clean {t.metric} {np.mean(r.patching.clean):.3f}, corrupted {np.mean(r.patching.corrupted):.3f}: gap "
           f"{g.mean:.3f}, {g.confidence_level:.0%} interval [{g.ci_low:.3f}, {g.ci_high:.3f}] "
           f"({'resolved' if g.resolved else 'NOT resolved: the shares below are ratios over noise'}). "
           "Share with the 95% interval that inverts its test; p from Hall's skewness-corrected t-test of the "
           "per-prompt change (null: its mean is 0; floor 0; docs/statistics.md), Holm-adjusted over heads. A head "
           f"is a circuit member when its adjusted p <= {c.alpha} and its share >= {c.min_share:g} (`--min-share`).",
           ""]
    top = sorted(r.head_effects, key=lambda e: -e.share)[:8]
    md += [_table([[e.site, f"{e.share:.3f}", _interval(e.ci_low, e.ci_high), f"{e.pvalue_adjusted:.2g}"]
                   for e in top], ["head", "share of the gap", "95% CI", "p (Holm)"]), "",
           f"![patching](figures/patching_{c.direction}_z.png)", ""]
    if r.path_patching is not None:
        md += ["## Path patching (Wang et al. 2023, Algorithm 1)", "",
               f"{len(r.edges)} paths measured ("
               + (("every sender into the Q input of every later query head, the K and V inputs of every later "
                   "key/value group, and into the logits" if info.n_kv_heads < info.n_heads else
                   "every sender into the Q, K, V inputs of every later head, and into the logits")
                  if info.n_layers * info.n_heads <= c.max_path_heads else
                  f"restricted to `embed` and {r.path_heads}, into each other's Q, K, V inputs and the logits "
                  f"(`--max-path-heads {c.max_path_heads}`)")
               + "). p-values from Hall's skewness-corrected t-test (floor 0), Benjamini-Hochberg-adjusted over all "
               f"paths; a path counts when its adjusted p <= {c.alpha} and its share >= {c.min_share:g}."
               + _group_note(r, info), ""]
        top = sorted(r.edges, key=lambda e: -(e.effect or 0))[:12]
        md += [_table([[f"{e.source} -> {receiver_text(e.target, info.group_size)}", e.kind, f"{e.effect:.3f}", _interval(e.ci_low, e.ci_high),
                        f"{e.pvalue_adjusted:.2g}", "" if e.composition is None else f"{e.composition:+.3f}"]
                       for e in top], ["path", "kind", "share of the gap", "95% CI", "p (BH)",
                                       "composition score - baseline"]), ""]
    if r.circuit_test is not None:
        from circuitry.analysis.circuit_test import damage_table

        ct = r.circuit_test
        md += ["## Circuit heads against random heads (Crosbie & Shutova 2024)", "",
               f"Circuit heads {r.circuit_source}: {', '.join(r.circuit_heads)}. Tested on {t.test_prompts}, with "
               f"{c.ablation} ablation; the statistic is the {t.test_statistic}. Each p-value names its null and "
               "its floor (the smallest p the test can give); a finding needs both <= alpha "
               "(docs/statistics.md).", "",
               f"- **Pool null**: {ct.pool.describe()}"]
        if ct.top_head is not None:
            mt = ct.top_head_test
            md += [f"- **{ct.top_head} alone** (the most damaging circuit head): {mt.statistic:.3g}, one-sided "
                   f"{mt.confidence_level:.0%} lower bound {mt.bound:.3g} (p = {mt.pvalue:.3g}, floor "
                   f"{mt.min_attainable_pvalue:.3g}); {ct.top_head_share:.0%} of the whole circuit's "
                   f"{ct.circuit_damage:.3g}.",
                   f"- **Beyond {ct.top_head}** (conditional null): {ct.beyond.describe()}"]
        md += ["", _table([[h, f"{d:.3f}", "yes" if h in ct.circuit else ""] for h, d in damage_table(ct)],
                          ["head ablated alone", t.test_statistic, "in the circuit"]), ""]
    files = ["- `report.json`: every number above, with provenance"]
    if r.path_patching is not None:
        files.append("- `graph.graphml`, `graph.gexf`, `graph.json` (node-link): every measured path with its statistics; "
                     "`graph.dot`, `graph.mmd`: the supported paths only (docs/graph-formats.md)")
    md += ["## Files", ""] + files + ["- `figures/`: " + ", ".join(Path(f).name for f in r.figures), "",
                                     "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r.timings.items()) + ".", ""]
    return "\n".join(md)
