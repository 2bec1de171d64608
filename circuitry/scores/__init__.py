"""Head scores and composition scores.

* Attention-pattern and function detectors (Olsson et al. 2022 evaluators, a retrieval detector,
  your own): :func:`score_heads`, :func:`register_detector`, :func:`pattern_detector`,
  :func:`function_detector`.
* Copying: :func:`copying_per_sample` (the ``copying`` detector), :func:`ov_eigenvalue_positivity`.
* Composition (Elhage et al. 2021): :func:`composition_scores`, :func:`all_composition_scores`,
  :func:`random_baseline`.
* In-context learning: :func:`icl_score`.

Definitions follow ``REFERENCES.md`` ("Head scores", "Composition scores"); every result is a frozen,
JSON round-trippable pydantic model with provenance (:mod:`circuitry.scores.results`).
"""

from circuitry.scores.composition import all_composition_scores, composition_scores, random_baseline
from circuitry.scores.copying import copying_per_sample, ov_eigenvalue_positivity
from circuitry.scores.detectors import Detector, SequenceRecipe, function_detector, pattern_detector
from circuitry.scores.heads import available_detectors, get_detector, register_detector, score_heads
from circuitry.scores.icl import icl_score
from circuitry.scores.results import CompositionScores, HeadScores, ScalarScore, ScoreReport
from circuitry.scores.retrieval import needle_tokens, retrieval_per_sample

__all__ = [
    "CompositionScores", "Detector", "HeadScores", "ScalarScore", "ScoreReport", "SequenceRecipe",
    "all_composition_scores", "available_detectors", "composition_scores", "copying_per_sample",
    "function_detector", "get_detector", "icl_score", "needle_tokens", "ov_eigenvalue_positivity",
    "pattern_detector", "random_baseline", "register_detector", "retrieval_per_sample", "score_heads",
]
