"""``circuitry analyze``: the full analysis of a model on a task, in one resumable run."""

from circuitry._lazy import lazy_exports

_EXPORTS = {"run_analysis": "pipeline", "AnalysisReport": "results", "AnalysisConfig": "results",
            "build_report_graph": "report"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
