"""Hand-built composition graphs whose paths, pruning and exports have exact expected values."""

from __future__ import annotations

import math

from circuitry.graph import EdgeMeasurement, build_graph
from circuitry.provenance import Provenance

E = EdgeMeasurement


def small_edges() -> list[EdgeMeasurement]:
    """Paths embed -> logits (|effect| product / sum / min):
    embed->L1H1->logits 0.54 / 1.5 / 0.6; embed->L0H0->L1H1->logits 0.36 / 2.2 / 0.5;
    embed->logits 0.1; embed->L1H0 has no effect (NaN), so no path runs through L1H0."""
    return [
        E(source="embed", target="L0H0", kind="k", effect=0.5, ci_low=0.4, ci_high=0.6, pvalue=0.01),
        E(source="embed", target="L1H1", kind="q", effect=0.2, composition=0.05),
        E(source="embed", target="L1H1", kind="v", effect=0.6, extra={"n_prompts": 32.0}),
        E(source="L0H0", target="L1H1", kind="k", effect=0.8, composition=0.3, composition_raw=0.42),
        E(source="L0H1", target="L1H1", kind="k", effect=0.3),
        E(source="L1H1", target="logits", kind="out", effect=0.9, pvalue=0.001, pvalue_adjusted=0.003),
        E(source="embed", target="logits", kind="out", effect=0.1),
        E(source="L1H0", target="logits", kind="out", effect=-0.7),
        E(source="embed", target="L1H0", kind="v", composition=0.2),
        E(source="L0H2", target="MLP0", kind="out", effect=0.05),
        E(source="MLP0", target="L1H2", kind="q", effect=0.04),
    ]


PROV = Provenance(model_id="test-2l", seed=3, created="2025-01-01T00:00:00+00:00", python="3.11")


def make_small_graph():
    return build_graph(
        n_layers=2,
        n_heads=3,
        mlp_layers=[0],
        edges=small_edges(),
        node_scores={"prev_token_score": {"L0H0": 0.9, "L0H1": 0.1}, "induction_score": {"L1H1": 0.8}},
        graph_attrs={"model_id": "test-2l", "provenance": PROV, "n_prompts": 32, "note": 'quote " and\nnewline'},
    )


def same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b
