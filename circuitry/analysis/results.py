"""The result of ``circuitry analyze``: every number, with provenance (``report.json``)."""

from __future__ import annotations

from typing import Any, Literal

from circuitry.display import Displayed, Table, interval, ranked
from circuitry.graph.schema import EdgeMeasurement
from circuitry.interventions.path_patching import PathPatchResult
from circuitry.interventions.results import PatchResult
from circuitry.provenance import Frozen, Provenance
from circuitry.scores.results import CompositionScores, HeadScores, ScalarScore
from circuitry.stats.gap import GapSummary
from circuitry.analysis.circuit_test import CircuitTests


class AnalysisConfig(Frozen):
    """What ``circuitry analyze`` was asked to do (hashed to decide whether cached stages can be reused)."""

    model: str
    task: str
    #: pairs to generate for a built-in task (``None``: 32); a task file sets its own and refuses this
    n_prompts: int | None = None
    seed: int
    #: ``None``: the task's metric (``logit_diff`` for the built-in tasks and for files that name none)
    metric: str | None = None
    direction: str = "noising"
    n_score_samples: int = 10
    n_baseline: int = 1000
    #: bootstrap resamples of the head scores' and the ICL score's intervals (its own random stream)
    n_resamples: int = 2000
    n_draws: int = 1000
    #: a circuit-test null stops drawing at its ``stop_after``-th random set at least as damaging as the circuit
    #: (Besag & Clifford 1991), raised to ``floor(alpha * (n_draws + 1))`` so that stopping never changes a
    #: verdict; ``None`` or 0: every draw (:func:`circuitry.analysis.circuit_test.stop_rule`)
    stop_after: int | None = 20
    ablation: str = "mean"
    alpha: float = 0.01
    #: practical significance: a head or path is a circuit member only when it carries at least this share
    #: of the gap (and its adjusted p <= alpha); :data:`circuitry.stats.decide.MIN_SHARE`
    min_share: float = 0.05
    max_path_heads: int = 32
    #: who evaluates the circuit test's random head sets (:mod:`circuitry.executors`); not part of the stage
    #: key: the draws are the same whichever runs them
    executor: str = "serial"
    #: processes (or Ray CPUs) for a parallel ``executor``; ``None``: every CPU this process may use
    workers: int | None = None


class SiteEffect(Frozen):
    """The effect of patching one site (a head or a path) with its statistics.

    ``share`` is the share of the clean-minus-corrupted gap of the metric that the site carries:
    noising ``(M_clean - M_patched) / (M_clean - M_corrupted)``, denoising
    ``(M_patched - M_corrupted) / (M_clean - M_corrupted)``; positive = the site matters.
    """

    site: str
    share: float
    #: the interval inverting the site's test (``None`` where unbounded: the gap is unresolved)
    ci_low: float | None
    ci_high: float | None
    pvalue: float
    pvalue_adjusted: float
    correction: str
    #: the smallest p-value the test could give (before correction): 0 for Hall's t-test
    pvalue_floor: float | None = None
    #: adjusted p <= alpha (statistical significance)
    significant: bool | None = None
    #: ``|share| >= min_share`` (practical significance); a member of the circuit needs both
    matters: bool | None = None
    #: the test that gave ``pvalue`` (:mod:`circuitry.stats.decide`)
    test: str | None = None


class TaskContext(Frozen):
    """The task of a run, described for the report: which prompts, which metric, and where the held-out
    circuit test's prompts came from."""

    name: str
    #: ``"built-in"`` (a generator: fresh prompts can be drawn) or ``"file"`` (a fixed set of pairs)
    source: Literal["built-in", "file", "python"]
    metric: str
    #: one sentence on the prompts (clean vs corrupted)
    prompts: str
    #: what the metric reads
    target: str
    n_discovery: int
    n_test: int
    #: where the test prompts came from, in words (fresh draw, split half, or the same prompts)
    test_prompts: str
    test_seed: int | None = None
    #: the metric of the circuit test and its sign: the statistic is ``sign * (M_ablated - M)``
    test_metric: str
    test_sign: float
    #: words for the test statistic, e.g. "rise in loss on the repeated half (nats)"
    test_statistic: str


class Finding(Frozen):
    """One automatic check of the headline finding, stated in words with its numbers."""

    claim: str
    holds: bool
    evidence: str


class AnalysisReport(Displayed, Frozen):
    """Everything ``circuitry analyze`` computed."""

    config: AnalysisConfig
    provenance: Provenance
    head_scores: dict[str, HeadScores]
    composition: dict[str, CompositionScores]
    icl: ScalarScore | None
    #: what the run measured, in words true for its task (:class:`TaskContext`)
    task: "TaskContext"
    #: the clean-minus-corrupted gap of the metric on the discovery prompts; unresolved = nothing to explain
    gap: GapSummary
    patching: PatchResult
    head_effects: list[SiteEffect]
    #: ``None`` when the gap is unresolved (the run stops after activation patching)
    path_patching: PathPatchResult | None = None
    path_effects: list[SiteEffect] = []
    #: which heads were path-patched, in words (``"every head"`` up to ``--max-path-heads`` heads)
    path_heads: str = "every head"
    edges: list[EdgeMeasurement] = []
    circuit_heads: list[str] = []
    #: how the circuit heads were chosen, in words
    circuit_source: str = ""
    #: the circuit against random heads on held-out prompts: pool null, its most damaging head alone, and the
    #: rest beyond that head (conditional null); ``None`` when no head qualified
    circuit_test: CircuitTests | None = None
    findings: list[Finding]
    timings: dict[str, float]
    figures: list[str]
    extra: dict[str, Any] = {}

    def to_records(self) -> dict[str, list[dict]]:
        """The report's tables as records (``pandas.DataFrame(report.to_records()["paths"])``): ``heads`` (one
        row per head: share, CI, p-values, head scores) and ``paths`` (one row per measured path; with
        grouped-query attention also ``receiver_query_heads``, e.g. ``"L1H0,L1H1,L1H2,L1H3"`` for a
        key/value group ``L1G0``, the receiver itself for a query head)."""
        from circuitry.labels import parse_head

        scores = {n: hs.numpy() for n, hs in self.head_scores.items()}
        heads = []
        for e in self.head_effects:
            layer, head = parse_head(e.site)
            heads.append({"head": e.site, "layer": layer, "index": head, **e.model_dump(exclude={"site"}),
                          **{f"{n}_score": float(a[layer, head]) for n, a in scores.items()},
                          "in_circuit": e.site in self.circuit_heads})
        paths = [{"sender": m.source, "receiver": m.target, "kind": m.kind, "share": m.effect, "ci_low": m.ci_low,
                  "ci_high": m.ci_high, "pvalue": m.pvalue, "pvalue_adjusted": m.pvalue_adjusted,
                  "composition_minus_baseline": m.composition} for m in self.edges]
        groups = self.path_patching.groups if self.path_patching is not None else {}
        if groups:  # grouped-query attention: a k/v receiver is a key/value group, listed with its query heads
            for row in paths:
                row["receiver_query_heads"] = ",".join(groups.get(row["receiver"], [row["receiver"]]))
        return {"heads": heads, "paths": paths}

    def summary(self) -> str:
        """A few lines: the task, the gap, and every finding with its verdict (not thousands of numbers)."""
        g = self.gap
        lines = [f"{self.provenance.model_id} on task {self.task.name} ({self.task.source}, metric "
                 f"{self.task.metric}): gap {g.mean:.3g} [{g.ci_low:.3g}, {g.ci_high:.3g}]"
                 f"{'' if g.resolved else ' (not resolved)'}"]
        lines += [f"  [{'holds' if f.holds else 'does not hold'}] {f.claim}" for f in self.findings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _table(self) -> Table:
        """The gap and every finding's verdict, then the heads with the largest |share| with their statistics."""
        first, *findings = self.summary().split("\n")
        e0 = self.head_effects[0] if self.head_effects else None
        rows = [(e.site, e.share, interval(e.ci_low, e.ci_high), e.pvalue_adjusted,
                 "yes" if e.site in self.circuit_heads else "") for e in ranked(self.head_effects, lambda e: e.share)]
        footer = [f"test: {e0.test}, {e0.correction} over {len(self.head_effects)} heads"] if e0 and e0.test else []
        return Table(f"AnalysisReport: {first}", ("head", "share", "CI", f"p_adj ({e0.correction if e0 else ''})",
                                                  "in circuit"), rows, notes=[f.strip() for f in findings],
                     noun="head", footer=footer, k=6, note_lines=15)
