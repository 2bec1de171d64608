"""Write the outputs of ``circuitry analyze``: figures, the graph in every format, ``report.json`` and
``report.md`` (the findings in words, with their numbers, as a researcher would report them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitry.analysis.results import AnalysisReport
from circuitry.io import atomic_write_json, atomic_write_text
from circuitry.labels import all_heads, parse_head

CIRCUIT_THRESHOLD = 0.05  # edges carrying at least 5% of the metric gap are drawn in the circuit figure


def build_report_graph(report: AnalysisReport, model, *, min_share: float | None = None):
    """The composition graph of a report: every measured path (or, with ``min_share``, the paths
    carrying at least that share of the metric gap), node scores, provenance."""
    from circuitry.graph import build_graph

    info = model.info
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
    edges = report.edges if min_share is None else [e for e in report.edges if (e.effect or 0) >= min_share]
    return build_graph(n_layers=info.n_layers, n_heads=info.n_heads, edges=edges, node_scores=node_scores,
                       mlp_layers=range(info.n_layers) if info.has_mlp else (),
                       graph_attrs={"model_id": model.model_id, "provenance": report.provenance,
                                    "effect": "share of the clean-corrupted metric gap carried by the path "
                                              f"({report.config.direction}, {report.config.metric})"})


def write_outputs(report: AnalysisReport, model, out: Path, *, quiet: bool = False) -> AnalysisReport:
    from circuitry.graph import draw_graph, prune, write_all

    figs = out / "figures"
    paths = []
    for name, hs in report.head_scores.items():
        paths.append(hs.heatmap(figs / f"scores_{name}.png"))
    for kind, comp in report.composition.items():
        paths.append(comp.heatmap(figs / f"composition_{kind}.png"))
    paths.append(report.patching.heatmap(figs / f"patching_{report.config.direction}_z.png"))
    G = build_report_graph(report, model)
    write_all(G, out, stem="graph")
    circuit = prune(build_report_graph(report, model, min_share=CIRCUIT_THRESHOLD), threshold=0.0)
    paths += draw_graph(circuit, [figs / "circuit.png", figs / "circuit.svg"], node_score="induction_score",
                        title=f"{model.model_id}: paths carrying >= {CIRCUIT_THRESHOLD:.0%} of the effect")
    report = report.model_copy(update={"figures": [str(Path(p).relative_to(out)) for p in paths]})
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report, model))
    if not quiet:
        for f in report.findings:
            print(f"[{'holds' if f.holds else 'DOES NOT HOLD'}] {f.claim}\n    {f.evidence}")
        print(f"[circuitry analyze] wrote {out / 'report.md'}, report.json, graph.graphml/.json/.dot/.gexf/.mmd "
              f"and {len(paths)} figures")
    return report


def _table(rows, header) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(r: AnalysisReport, model) -> str:
    """``report.md``: findings first, then the evidence section by section."""
    c, p = r.config, r.provenance
    info = model.info
    md = [f"# circuitry analyze: {model.model_id}", "",
          f"Task `{c.task}` ({r.patching.n_prompts} clean/corrupted prompt pairs, seed {c.seed}); "
          f"{info.n_layers} layers x {info.n_heads} heads, d_model {info.d_model}, "
          f"{'attention-only' if not info.has_mlp else 'with MLPs'}, {info.positional} positions. "
          f"Patching direction **{c.direction}**, metric `{c.metric}`. circuitry {p.library_version}, torch "
          f"{p.torch_version}, weights sha256 `{p.weights_sha256[:16]}…`, dataset sha256 `{p.dataset_sha256[:16]}…`.",
          "", "## Findings", ""]
    for f in r.findings:
        md.append(f"- **{'Holds' if f.holds else 'Does not hold'}:** {f.claim}  \n  {f.evidence}")
    md += ["", "![circuit](figures/circuit.png)", "",
           f"*Paths carrying at least {CIRCUIT_THRESHOLD:.0%} of the {c.metric} gap; width = share, colour = kind "
           "(q, k, v, out).*", "", "## Head scores (Olsson et al. 2022)", ""]
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
    md += ["## Composition scores (Elhage et al. 2021)", "",
           "Raw Frobenius-norm ratio, the random-matrix baseline for the exact shapes (mean +- sd over "
           f"{c.n_baseline} simulated pairs), and the largest pairs.", ""]
    rows = []
    for kind, comp in r.composition.items():
        top = comp.pairs(3)
        rows.append([kind, f"{comp.baseline_mean:.3f} +- {comp.baseline_std:.3f}",
                     "; ".join(f"{s}->{d} {raw:.3f} ({(raw - comp.baseline_mean) / comp.baseline_std:+.1f} sd)"
                               for s, d, raw, _ in top)])
    md += [_table(rows, ["kind", "baseline", "largest pairs (raw, sd above baseline)"]), ""]
    md += [f"![{k}](figures/composition_{k}.png)" for k in r.composition] + [""]
    md += [f"## Activation patching per head ({c.direction}, Zhang & Nanda 2024)", "",
           f"Clean {c.metric} {np.mean(r.patching.clean):.3f}, corrupted {np.mean(r.patching.corrupted):.3f}. "
           "Share = part of the clean-corrupted gap the head carries; 95% paired-bootstrap CI over prompts; "
           "p from a sign-flip permutation test of the per-prompt change, Holm-adjusted over heads.", ""]
    top = sorted(r.head_effects, key=lambda e: -e.share)[:8]
    md += [_table([[e.site, f"{e.share:.3f}", f"[{e.ci_low:.3f}, {e.ci_high:.3f}]", f"{e.pvalue_adjusted:.2g}"]
                   for e in top], ["head", "share", "95% CI", "p (Holm)"]), "",
           f"![patching](figures/patching_{c.direction}_z.png)", ""]
    md += ["## Path patching (Wang et al. 2023, Algorithm 1)", "",
           f"{len(r.edges)} paths measured ("
           + ("every sender into the Q, K, V inputs of every later head, and into the logits"
              if info.n_layers * info.n_heads <= c.max_path_heads else
              f"restricted to `embed` and the {c.max_path_heads} heads with the largest activation-patching share, "
              "into each other's Q, K, V inputs and the logits (`--max-path-heads`)")
           + "). p-values Benjamini-Hochberg-adjusted over all paths.", ""]
    top = sorted(r.edges, key=lambda e: -(e.effect or 0))[:12]
    md += [_table([[f"{e.source} -> {e.target}", e.kind, f"{e.effect:.3f}", f"[{e.ci_low:.3f}, {e.ci_high:.3f}]",
                    f"{e.pvalue_adjusted:.2g}", "" if e.composition is None else f"{e.composition:+.3f}"]
                   for e in top], ["path", "kind", "share", "95% CI", "p (BH)", "composition - baseline"]), ""]
    if r.circuit_test is not None:
        t = r.circuit_test
        md += ["## Circuit heads against random heads (Crosbie & Shutova 2024)", "",
               f"Circuit heads read off the head scores (the previous-token head and the induction heads): "
               f"{', '.join(r.circuit_heads)}. Tested on fresh prompts (seed {c.seed + 1}) with {c.ablation} "
               f"ablation: rise in loss on the repeated half {t.statistic:.3f} nats vs "
               f"{t.null_mean:.3f} +- {t.null_std:.3f} for random sets of {len(t.candidate)} "
               f"{'other ' if t.exclude_candidates else ''}heads "
               f"({'exact null over all ' + str(t.n_distinct_sets) + ' sets' if t.exact else str(t.n_draws) + ' draws'}), "
               f"standardized effect {t.effect_size:.1f}, p = {t.pvalue:.3g} (smallest attainable "
               f"{t.min_attainable_pvalue:.3g}).", ""]
    md += ["## Files", "", "- `report.json`: every number above, with provenance",
           "- `graph.graphml`, `graph.gexf`, `graph.json` (node-link), `graph.dot`, `graph.mmd`: the composition graph "
           "(docs/graph-formats.md)", "- `figures/`: " + ", ".join(Path(f).name for f in r.figures), "",
           "Timings (s): " + ", ".join(f"{k} {v}" for k, v in r.timings.items()) + ".", ""]
    return "\n".join(md)
