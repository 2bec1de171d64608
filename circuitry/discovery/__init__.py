"""Automated circuit search: score every edge (exact patching, EAP, EAP-IG, ACDC), check the found
circuits by faithfulness with bootstrap bands and a random-edge baseline, and measure how stable the
edge ranking is across prompt samples. Methods, assumptions and failure modes: ``docs/discovery.md``.
"""

from circuitry.discovery.edges import EdgeSet, Receiver, edge_set, induction_reference
from circuitry.discovery.faithfulness import PERCENTS, Faithfulness, FaithfulnessCurve, faithfulness_curves
from circuitry.discovery.results import METHODS, EdgeScores, Method
from circuitry.discovery.search import (discover_acdc, discover_eap, discover_eap_ig, discover_exact, prepare,
                                        roc_auc, score_edges)

__all__ = [
    "EdgeScores", "EdgeSet", "Faithfulness", "FaithfulnessCurve", "METHODS", "Method", "PERCENTS", "Receiver",
    "discover_acdc", "discover_eap", "discover_eap_ig", "discover_exact", "edge_set", "faithfulness_curves",
    "induction_reference", "prepare", "roc_auc", "score_edges",
]
