"""Head scores and composition scores.

* Attention-pattern and function detectors (Olsson et al. 2022 evaluators, a retrieval detector,
  your own): :func:`score_heads`, :func:`register_detector`, :func:`pattern_detector`,
  :func:`function_detector`.
* Copying: :func:`copying_per_sample` (the ``copying`` detector), :func:`ov_eigenvalue_positivity`.
* Composition (Elhage et al. 2021): :func:`composition_scores`, :func:`all_composition_scores`,
  :func:`random_baseline`.
* In-context learning: :func:`icl_score`.

Definitions follow the papers (see ``docs/api/scores.md``); every result is a frozen,
JSON round-trippable pydantic model with provenance (:mod:`circuitry.scores.results`).
"""

from circuitry._lazy import lazy_exports

_EXPORTS = {
    "all_composition_scores": "composition", "composition_scores": "composition", "random_baseline": "composition",
    "copying_per_sample": "copying", "ov_eigenvalue_positivity": "copying",
    "Detector": "detectors", "SequenceRecipe": "detectors", "function_detector": "detectors",
    "pattern_detector": "detectors",
    "available_detectors": "heads", "get_detector": "heads", "register_detector": "heads", "score_heads": "heads",
    "icl_score": "icl",
    "CompositionScores": "results", "HeadScores": "results", "ScalarScore": "results", "ScoreReport": "results",
    "needle_tokens": "retrieval", "retrieval_per_sample": "retrieval",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
