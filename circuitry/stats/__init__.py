"""Statistics for causal claims: bootstrap intervals, random-head baselines, multiple-testing corrections
and the circuit hypothesis tests of Shi et al. (2024).

Every function is model-agnostic: it takes per-prompt values or callables that compute effects on sets
of heads or edges, so it works with any patching or ablation engine. Every result is a frozen pydantic
model that round-trips through JSON and records the test used, the sample sizes and the seed. See
``docs/statistics.md`` for definitions, assumptions and failure modes.
"""

from circuitry.stats._common import ConfidenceInterval
from circuitry.stats.bootstrap import BootstrapMethod, EffectEstimate, bootstrap_ci, paired_bootstrap_ci
from circuitry.stats.circuit_tests import (CircuitTest, EdgeMinimality, MinimalityTest, minimality_test,
                                           partial_necessity_test, sufficiency_test)
from circuitry.stats.equivalence import EquivalenceTest, equivalence_test
from circuitry.stats.multiple import Correction, CorrectedPValues, adjust_pvalues, correct_pvalues
from circuitry.stats.prompt_effects import PromptEffect, prompt_effect
from circuitry.stats.gap import GapSummary, gap_summary
from circuitry.stats.intervals import MIN_PROMPTS, MeanTest, mean_interval, mean_test
from circuitry.stats.monte_carlo import monte_carlo_pvalue
from circuitry.stats.circuit_null import circuit_vs_random
from circuitry.stats.random_heads import NullName, RandomHeadTest, random_head_test
from circuitry.stats.ratio import RatioInterval, ShareTest, fieller_interval, share_test
from circuitry.stats._common import spawn_seeds
from circuitry.stats.verdict import Outcome, Verdict, verdict
from circuitry.stats.decide import MIN_SHARE, SiteDecision, SiteDecisions, decide_sites
from circuitry.stats.skew_t import ratio_interval, skew_t_pvalue
from circuitry.stats._common import procedure_seed

__all__ = [
    "MIN_SHARE", "SiteDecision", "SiteDecisions", "decide_sites", "ratio_interval", "skew_t_pvalue", "procedure_seed",
    "GapSummary", "MIN_PROMPTS", "MeanTest", "NullName", "RatioInterval", "ShareTest", "circuit_vs_random",
    "fieller_interval", "gap_summary", "mean_interval", "mean_test", "share_test", "spawn_seeds",
    "BootstrapMethod", "CircuitTest", "ConfidenceInterval", "CorrectedPValues", "Correction", "EdgeMinimality",
    "EffectEstimate", "EquivalenceTest", "MinimalityTest", "Outcome", "RandomHeadTest", "Verdict",
    "adjust_pvalues", "bootstrap_ci", "correct_pvalues", "equivalence_test", "minimality_test",
    "monte_carlo_pvalue", "paired_bootstrap_ci", "PromptEffect", "prompt_effect", "partial_necessity_test", "random_head_test",
    "sufficiency_test", "verdict",
]
