"""Automated circuit search: score every edge (exact patching, EAP, EAP-IG, ACDC), check the found
circuits by faithfulness with bootstrap bands and a random-edge baseline, and measure how stable the
edge ranking is across prompt samples. Methods, assumptions and failure modes: ``docs/discovery.md``.

Exports are lazy: ``import circuitry.discovery.cli`` does not import torch.
"""

from circuitry._lazy import lazy_exports

_EXPORTS = {
    "EdgeSet": "edges", "Receiver": "edges", "edge_set": "edges", "induction_reference": "edges",
    "PERCENTS": "faithfulness", "Faithfulness": "faithfulness", "FaithfulnessCurve": "faithfulness",
    "faithfulness_curves": "faithfulness", "replicated_faithfulness": "faithfulness",
    "ReplicatedFaithfulness": "faithfulness", "SizeTest": "faithfulness_tests", "CurveTest": "faithfulness_tests",
    "MIN_INTERVAL_VALUES": "faithfulness_tests", "METHODS": "results", "EdgeScores": "results", "Method": "results",
    "discover_acdc": "search", "discover_eap": "search", "discover_eap_ig": "search", "discover_exact": "search",
    "prepare": "search", "roc_auc": "search", "score_edges": "search", "acdc_tau_sweep": "search", "TauSweep": "search",
    "RankingStability": "stability", "ranking_stability": "stability", "DiscoveryReport": "report", "run_discovery": "report",
    "ABLATIONS": "ablations", "Ablation": "ablations", "read_mib_json": "mib", "prune_to_paths": "mib",
    "load_reference": "reference", "compare_to_reference": "reference", "ReferenceComparison": "reference",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
