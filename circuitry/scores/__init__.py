"""Head scores and composition scores.

* Attention-pattern and function detectors (Olsson et al. 2022 evaluators, a retrieval detector,
  your own): :func:`score_heads`, :func:`register_detector`, :func:`pattern_detector`,
  :func:`function_detector`.
* Copying: :func:`copying_per_sample` (the ``copying`` detector), :func:`ov_eigenvalue_positivity`.
* Composition (Elhage et al. 2021): :func:`composition_scores`, :func:`all_composition_scores`,
  :func:`random_baseline`.
* In-context learning: :func:`icl_score`.
* The head catalogue (Zheng et al. 2024 survey): attention sinks and streaming heads, n-gram induction,
  successor heads, copy suppression (:mod:`circuitry.scores.catalogue`); every built-in detector has a null,
  and :func:`head_significance` labels a head only where its excess over the null is significant after
  correction over heads (:mod:`circuitry.scores.significance`).

Definitions follow the papers (see ``docs/api/scores.md``); every result is a frozen,
JSON round-trippable pydantic model with provenance (:mod:`circuitry.scores.results`).
"""

from circuitry._lazy import lazy_exports

_EXPORTS = {
    "order_pairs": "catalogue", "successor_detector": "catalogue", "ngram_target": "catalogue",
    "HeadSignificance": "significance", "head_significance": "significance",
    "all_composition_scores": "composition", "composition_scores": "composition", "random_baseline": "composition",
    "copying_per_sample": "copying", "ov_eigenvalue_positivity": "copying",
    "Detector": "detectors", "placebo_null": "detectors", "SequenceRecipe": "detectors", "function_detector": "detectors",
    "pattern_detector": "detectors",
    "available_detectors": "heads", "get_detector": "heads", "register_detector": "heads", "score_heads": "heads",
    "icl_score": "icl",
    "head_catalogue": "results", "plot_catalogue": "results", "CompositionScores": "results", "HeadScores": "results", "ScalarScore": "results", "ScoreReport": "results",
    "needle_tokens": "retrieval", "retrieval_per_sample": "retrieval",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
