"""Run several discovery methods on one prompt set and write everything ``circuitry discover`` writes.

Files in the output folder:

- ``discovery.json``: the :class:`DiscoveryReport` (every method's edge scores, faithfulness curves with
  bands and the tests against random rankings, split-half ranking stability, optionally the replicated
  faithfulness (ranked on one half of the prompts, measured on the other), provenance: seed, model id and
  weights hash, dataset hash, library version);
- ``faithfulness.png``: every method's faithfulness curve on one plot;
- ``{method}/graph.graphml``, ``.gexf``, ``.json``: the full scored edge graph (circuitry's schema,
  :mod:`circuitry.graph.export`); ``{method}/circuit.dot``, ``.mmd``, ``.png``, ``.svg``: the kept circuit only;
- ``{method}/scores_mib.json``: the scores in the EAP-IG / MIB circuit JSON layout;
- ``acdc/checkpoint.json``: ACDC's progress (a killed run resumes from it);
- ``sensitivity.json`` (``sensitivity=True``) and ``backup.json`` (``backup=``): every edge's verdict under
  every ablation x metric, and the heads that take over when the circuit's heads are ablated
  (:mod:`circuitry.discovery.followups`); both are in ``discovery.json`` too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from circuitry.discovery.backup import BackupReport
from circuitry.discovery.faithfulness import (CELLS, DEFAULT_N_RANDOM, Faithfulness, ReplicatedFaithfulness,
                                              faithfulness_curves, replicated_faithfulness)
from circuitry.discovery.reference import ReferenceCircuit, ReferenceComparison, compare_all
from circuitry.discovery.results import EdgeScores, check_method
from circuitry.discovery.search import DEFAULT_TAU, prepare, score_edges
from circuitry.discovery.sensitivity import SensitivityReport
from circuitry.discovery.stability import RankingStability, ranking_stability, rerun_stability
from circuitry.display import Displayed, Table
from circuitry.errors import bad_value
from circuitry.io import atomic_write_json
from circuitry.provenance import Frozen, Provenance, make_provenance
from circuitry.stats.gap import GapSummary, gap_summary


class DiscoveryReport(Displayed, Frozen):
    """Everything one ``circuitry discover`` run measured (see the module docstring for the files)."""

    methods: list[str]
    task: str
    n_prompts: int
    #: the clean-minus-corrupted gap of the task's metric; unresolved = nothing to search for
    gap: GapSummary
    scores: list[EdgeScores] = []
    faithfulness: Faithfulness | None = None
    stability: list[RankingStability] = []
    #: ``--replicate``: every method ranked on one random half of the prompts, faithfulness on the other half
    replication: ReplicatedFaithfulness | None = None
    files: dict[str, str] = {}
    #: what a patched edge is fed (:mod:`circuitry.discovery.ablations`), for every method and curve
    ablation: str = "counterfactual"
    #: ``--reference``: the reference circuit and every method's ROC AUC (with its interval over prompts),
    #: precision and recall against it
    reference: ReferenceCircuit | None = None
    reference_comparisons: list[ReferenceComparison] = []
    #: ``--sensitivity``: every edge's kept-circuit verdict under every ablation x metric (robust or fragile)
    sensitivity: SensitivityReport | None = None
    #: ``--backup``: conditional co-ablation of every other head with the circuit's heads (backups, dependents,
    #: super-additivity); ``backup_skipped`` says why none ran when one was asked for
    backup: BackupReport | None = None
    backup_skipped: str | None = None
    provenance: Provenance

    def summary(self) -> str:
        g = self.gap
        if not g.resolved:
            return (f"{self.n_prompts} prompt pairs, task {self.task}: the clean-corrupted gap is not resolved "
                    f"(mean {g.mean:.3g}, 95% interval [{g.ci_low:.3g}, {g.ci_high:.3g}]): the model does not "
                    "separate the two prompt sets, so there is no circuit to search for and none was drawn")
        lines = [f"{len(self.scores[0].edges)} edges, {self.n_prompts} prompt pairs, task {self.task}, gap "
                 f"{g.mean:.3g} [{g.ci_low:.3g}, {g.ci_high:.3g}]"]
        fa = self.faithfulness
        if self.ablation != "counterfactual" or fa.evaluator != "circuitry" or fa.top_k != "absolute":
            lines[0] += (f" (ablation {self.ablation}: the gap is clean minus every edge ablated; {fa.evaluator}'s "
                         f"evaluator, top-k by {'|score|' if fa.top_k == 'absolute' else 'signed importance'})")
        for s in self.scores:
            lines.append(f"{s.method}: {sum(s.in_circuit)} edges kept; " + s.summary(3).split("; ", 1)[1])
        lines.append(self.faithfulness.summary())
        lines += [st.summary() for st in self.stability]
        if self.replication is not None:
            lines.append(self.replication.summary())
        if self.reference is not None:
            lines.append(f"against the reference {self.reference.source} ({len(self.reference.edges)} of "
                         f"{self.reference.total_edges} edges):")
            lines += ["  " + c.summary() for c in self.reference_comparisons]
        if self.sensitivity is not None:
            lines.append(self.sensitivity.summary())
        if self.backup is not None:
            lines.append("backup heads: " + self.backup.summary())
        elif self.backup_skipped:
            lines.append(f"backup heads: not measured: {self.backup_skipped}")
        return "\n".join(lines)

    def _table(self) -> Table:
        """One row per method: edges kept, CPR and CMD with their intervals, the curve's p-value against random
        rankings."""
        g = self.gap
        title = (f"DiscoveryReport: task {self.task}, {self.n_prompts} prompt pairs, gap {g.mean:.3g} "
                 f"[{g.ci_low:.3g}, {g.ci_high:.3g}]{'' if g.resolved else ' (not resolved: no circuit searched)'}")
        fa = self.faithfulness
        measured = set() if fa is None else {c.method for c in fa.curves}
        rows = [(s.method, sum(s.in_circuit), len(s.edges),
                 *(fa.cells(s.method) if s.method in measured else (None,) * len(CELLS)))
                for s in self.scores]
        notes = [] if fa is None else [f"faithfulness: {fa.n_random} random rankings, {fa.metric}, ablation "
                                       f"{self.ablation}; curve p: the method's CPR against the random rankings'"]
        notes += [st.summary() for st in self.stability]
        notes += ["reference: " + c.summary() for c in self.reference_comparisons]
        if self.sensitivity is not None:
            notes.append(self.sensitivity.summary(k=3))
        if self.backup is not None:
            notes.append("backup heads: " + self.backup.summary())
        return Table(title, ("method", "edges kept", "of", *CELLS), rows, notes=notes,
                     noun="method", footer=[f"files: {', '.join(sorted(self.files))}"] if self.files else ())


def parse_methods(spec: str | Sequence[str]) -> list[str]:
    """``"eap,eap-ig"`` -> ``["eap", "eap-ig"]`` (each checked, duplicates refused)."""
    items = [m.strip() for m in spec.split(",")] if isinstance(spec, str) else list(spec)
    if not items or len(set(items)) != len(items):
        raise bad_value("method", spec, "one or more distinct methods, comma-separated", "e.g. --method eap,eap-ig")
    return [check_method(m) for m in items]


def run_discovery(model, data, out: str | Path, *, methods: Sequence[str], metric: str | None = None, steps: int = 5,
                  tau: float = DEFAULT_TAU, threshold: float = 0.05, alpha: float = 0.01,
                  n_random: int = DEFAULT_N_RANDOM, n_resamples: int = 1000, faithfulness_alpha: float = 0.05,
                  stability_splits: int = 100, acdc_splits: int = 2, replicate: bool = False, seed: int = 0,
                  progress: bool = True, stability_resamples: int | None = None,
                  acdc_resamples: int | None = None, ablation: str = "counterfactual", evaluator: str = "circuitry",
                  top_k: str | None = None, reference: ReferenceCircuit | None = None, sensitivity: bool = False,
                  backup: Sequence[str] | str | None = None, greedy_edges: int | None = None) -> DiscoveryReport:
    """Score the edges with every method, measure faithfulness and stability, and write the files.

    ``metric``: the metric of every method and of the faithfulness curves; default the task's metric,
    except ACDC, which then uses the KL divergence (its curve is still measured in the task's metric).
    ``alpha`` decides the kept circuits; ``n_random``, ``n_resamples`` and ``faithfulness_alpha`` are
    :func:`~circuitry.discovery.faithfulness_curves`'s ``n_random``, ``n_resamples`` and ``alpha``;
    ``stability_splits`` the split-half splits of :func:`~circuitry.discovery.stability.ranking_stability`
    (exact, EAP, EAP-IG); ``acdc_splits`` those of ACDC (two ACDC reruns on half the prompts per split; 0
    skips); ``replicate`` adds :func:`~circuitry.discovery.faithfulness.replicated_faithfulness` (every method
    rerun on one half of the prompts). ``stability_resamples`` and ``acdc_resamples`` are the older names of
    ``stability_splits`` and ``acdc_splits``. Each random procedure draws from its own stream of ``seed``.
    ``ablation`` (:mod:`circuitry.discovery.ablations`) is what a patched edge is fed, in every method and
    curve; ``evaluator`` and ``top_k`` are :func:`~circuitry.discovery.faithfulness_curves`'s;
    ``greedy_edges`` is :func:`~circuitry.discovery.search.score_edges`'s (the greedy search's largest circuit);
    ``reference`` (:func:`circuitry.discovery.reference.load_reference`) adds every method's ROC AUC with a
    bootstrap interval over prompts (``n_resamples``), precision and recall against it.
    ``sensitivity`` reruns the first per-edge method (else EAP-IG) under every ablation x metric
    (:func:`~circuitry.discovery.sensitivity.sensitivity_sweep`); ``backup`` (``"auto"`` or a list of heads)
    co-ablates every other head with the circuit's heads (:func:`~circuitry.discovery.followups.run_backup`,
    decided at ``alpha`` with ``threshold`` as the smallest share that matters).
    Other options as in :func:`~circuitry.discovery.score_edges`."""
    from circuitry.discovery.mib import check_evaluator

    evaluator, top_k = check_evaluator(evaluator, top_k)
    from circuitry.discovery.figures import plot_faithfulness
    from circuitry.graph import draw_graph, write_dot, write_gexf, write_graphml, write_mermaid, write_node_link_json
    from circuitry.viewer import write_report_html

    methods = parse_methods(methods)
    stability_splits = stability_splits if stability_resamples is None else stability_resamples
    acdc_splits = acdc_splits if acdc_resamples is None else acdc_resamples
    out = Path(out)
    task_metric = metric or data.metric or "logit_diff"
    shared = prepare(model, data, metric=task_metric, ablation=ablation, seed=seed)
    gap = gap_summary(shared.metric_of(shared.clean).numpy(), shared.metric_of(shared.corr).numpy())
    prov = make_provenance(model, dataset=data, seed=seed, task=data.task, methods=",".join(methods),
                           ablation=ablation, evaluator=evaluator, top_k=top_k)
    if not gap.resolved:  # every score would rank noise: say so, draw nothing
        report = DiscoveryReport(methods=methods, task=data.task, n_prompts=len(data), gap=gap, provenance=prov,
                                 files={"discovery.json": str(out / "discovery.json")}, ablation=ablation,
                                 reference=reference)
        atomic_write_json(out / "discovery.json", report)
        write_report_html(out)
        return report
    kl = prepare(model, data, metric="kl", ablation=ablation, seed=seed) if "acdc" in methods and metric is None \
        else shared
    scores, files = [], {}
    for m in methods:
        opts = dict(steps=steps, tau=tau, threshold=threshold, progress=progress, seed=seed)
        if m != "acdc":
            opts["alpha"] = alpha
        if m == "greedy":
            opts["greedy_edges"] = greedy_edges
        pr = kl if m == "acdc" else shared
        if m == "acdc":
            opts["checkpoint"] = out / "acdc" / "checkpoint.json"
        scores.append(score_edges(model, data, method=m, prepared=pr, **opts))
    fa = faithfulness_curves(model, data, scores, n_random=n_random, n_resamples=n_resamples, alpha=faithfulness_alpha,
                             rng=seed, prepared=shared, progress=progress, evaluator=evaluator, top_k=top_k)

    def rescore(method: str):
        m_metric = metric or ("kl" if method == "acdc" else task_metric)
        return lambda d: score_edges(model, d, method=method, metric=m_metric, steps=steps, tau=tau,
                                     threshold=threshold, progress=False, seed=seed, ablation=ablation,
                                     **({} if method == "acdc" else {"alpha": alpha}),
                                     **({"greedy_edges": greedy_edges} if method == "greedy" else {}))

    stab = []
    for s in scores:
        if s.per_prompt is not None:
            stab.append(ranking_stability(s, n_splits=stability_splits, rng=seed))
        elif acdc_splits:
            stab.append(rerun_stability(s, data, rescore(s.method), n_splits=acdc_splits, rng=seed,
                                        progress=progress))
    rep = None
    if replicate:
        rep = replicated_faithfulness(model, data, lambda d: [rescore(m)(d) for m in methods], n_random=n_random,
                                      n_resamples=n_resamples, alpha=faithfulness_alpha, rng=seed, metric=task_metric,
                                      progress=progress, evaluator=evaluator, top_k=top_k, ablation=ablation)
    comparisons = [] if reference is None else compare_all(scores, reference, shared.edges, top_k=top_k,
                                                           n_resamples=n_resamples, rng=seed)
    for s in scores:
        d = out / s.method
        G, C = s.to_graph(), s.to_graph(circuit_only=True)
        written = [write_graphml(G, d / "graph.graphml"), write_gexf(G, d / "graph.gexf"),
                   write_node_link_json(G, d / "graph.json"), write_dot(C, d / "circuit.dot"),
                   write_mermaid(C, d / "circuit.mmd"), atomic_write_json(d / "scores_mib.json", s.to_mib_json())]
        if C.number_of_edges():
            written += draw_graph(C, [d / "circuit.png", d / "circuit.svg"],
                                  title=f"{s.method}: kept circuit ({sum(s.in_circuit)} edges)")
        files.update({f"{s.method}/{p.name}": str(p) for p in map(Path, written)})
    fig = plot_faithfulness(fa, out / "faithfulness.png")
    files["faithfulness.png"] = str(fig)
    sens, bk, bk_skipped = None, None, None
    if sensitivity:
        from circuitry.discovery.followups import first_per_edge
        from circuitry.discovery.sensitivity import sensitivity_sweep

        sens = sensitivity_sweep(model, data, method=first_per_edge(methods) or "eap-ig", steps=steps,
                                 threshold=threshold, alpha=alpha, seed=seed, progress=progress)
        files["sensitivity.json"] = str(atomic_write_json(out / "sensitivity.json", sens))
    if backup is not None:
        from circuitry.discovery.followups import run_backup

        bk, bk_skipped = run_backup(model, data, scores, backup, ablation=ablation, metric=task_metric, alpha=alpha,
                                    min_share=threshold, seed=seed)
        if bk is not None:
            files["backup.json"] = str(atomic_write_json(out / "backup.json", bk))
    files["discovery.json"] = str(out / "discovery.json")
    report = DiscoveryReport(methods=methods, task=data.task, n_prompts=len(data), gap=gap, scores=scores,
                             faithfulness=fa, stability=stab, replication=rep, files=files, ablation=ablation,
                             reference=reference, reference_comparisons=comparisons, sensitivity=sens,
                             backup=bk, backup_skipped=bk_skipped, provenance=prov)
    atomic_write_json(out / "discovery.json", report)
    write_report_html(out)  # the interactive page, from the files just written (circuitry.viewer)
    return report
