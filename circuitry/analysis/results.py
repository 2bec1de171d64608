"""The result of ``circuitry analyze``: every number, with provenance (``report.json``)."""

from __future__ import annotations

from typing import Any

from circuitry.graph.schema import EdgeMeasurement
from circuitry.interventions.path_patching import PathPatchResult
from circuitry.interventions.results import PatchResult
from circuitry.provenance import Frozen, Provenance
from circuitry.scores.results import CompositionScores, HeadScores, ScalarScore
from circuitry.stats.random_heads import RandomHeadTest


class AnalysisConfig(Frozen):
    """What ``circuitry analyze`` was asked to do (hashed to decide whether cached stages can be reused)."""

    model: str
    task: str
    n_prompts: int
    seed: int
    metric: str = "logit_diff"
    direction: str = "noising"
    n_score_samples: int = 10
    n_baseline: int = 1000
    n_resamples: int = 2000
    n_permutations: int = 9999
    n_draws: int = 1000
    ablation: str = "mean"
    alpha: float = 0.01
    max_path_heads: int = 32


class SiteEffect(Frozen):
    """The effect of patching one site (a head or a path) with its statistics.

    ``share`` is the share of the clean-minus-corrupted gap of the metric that the site carries:
    noising ``(M_clean - M_patched) / (M_clean - M_corrupted)``, denoising
    ``(M_patched - M_corrupted) / (M_clean - M_corrupted)``; positive = the site matters.
    """

    site: str
    share: float
    ci_low: float
    ci_high: float
    pvalue: float
    pvalue_adjusted: float
    correction: str


class Finding(Frozen):
    """One automatic check of the headline finding, stated in words with its numbers."""

    claim: str
    holds: bool
    evidence: str


class AnalysisReport(Frozen):
    """Everything ``circuitry analyze`` computed."""

    config: AnalysisConfig
    provenance: Provenance
    head_scores: dict[str, HeadScores]
    composition: dict[str, CompositionScores]
    icl: ScalarScore | None
    patching: PatchResult
    head_effects: list[SiteEffect]
    path_patching: PathPatchResult
    path_effects: list[SiteEffect]
    edges: list[EdgeMeasurement]
    circuit_heads: list[str]
    circuit_test: RandomHeadTest | None
    findings: list[Finding]
    timings: dict[str, float]
    figures: list[str]
    extra: dict[str, Any] = {}
