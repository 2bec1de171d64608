"""Build a small synthetic induction-circuit graph and write it in every format.

Run: ``python examples/graph_export.py [OUT_DIR]`` (default: a new temporary directory). Takes a few
seconds. The numbers are made up but shaped like the real circuit of a 2-layer attention-only model:
the previous-token head L0H2 feeds the K input of the induction heads L1H1 and L1H3, the embedding feeds
their Q and V inputs, and the induction heads and the embedding write to the logits.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import networkx as nx

from circuitry.graph import (
    EdgeMeasurement,
    build_graph,
    draw_graph,
    prune,
    read_graphml,
    strongest_edges,
    top_paths,
    write_all,
)
from circuitry.provenance import Provenance


def induction_graph() -> nx.DiGraph:
    """A synthetic composition graph of a 2-layer, 4-head attention-only model."""
    E = EdgeMeasurement
    edges = [
        # previous-token head -> induction heads, through K (large), Q and V (near zero)
        E(source="L0H2", target="L1H1", kind="k", effect=0.42, ci_low=0.35, ci_high=0.49, pvalue=0.001,
          composition=0.21, composition_raw=0.33),
        E(source="L0H2", target="L1H1", kind="q", effect=0.02, ci_low=-0.01, ci_high=0.05, pvalue=0.4,
          composition=0.01, composition_raw=0.13),
        E(source="L0H2", target="L1H1", kind="v", effect=0.01, composition=0.0, composition_raw=0.12),
        E(source="L0H2", target="L1H3", kind="k", effect=0.31, ci_low=0.24, ci_high=0.38, pvalue=0.002,
          composition=0.17, composition_raw=0.29),
        E(source="L0H0", target="L1H1", kind="k", effect=0.03, composition=0.02, composition_raw=0.14),
        # token embedding -> induction heads through Q and V
        E(source="embed", target="L1H1", kind="q", effect=0.18),
        E(source="embed", target="L1H1", kind="v", effect=0.25),
        E(source="embed", target="L1H3", kind="q", effect=0.12),
        E(source="embed", target="L1H3", kind="v", effect=0.20),
        E(source="embed", target="L0H2", kind="k", effect=0.35),  # positional/token info into L0H2
        # writers to the logits
        E(source="L1H1", target="logits", kind="out", effect=0.55, ci_low=0.47, ci_high=0.63, pvalue=0.001),
        E(source="L1H3", target="logits", kind="out", effect=0.38, ci_low=0.30, ci_high=0.46, pvalue=0.001),
        E(source="embed", target="logits", kind="out", effect=0.15),
        E(source="L1H0", target="logits", kind="out", effect=-0.04),  # not yet tested: no CI or p-value
    ]
    scores = {
        "prev_token_score": {"L0H0": 0.08, "L0H1": 0.11, "L0H2": 0.94, "L0H3": 0.05,
                             "L1H0": 0.02, "L1H1": 0.03, "L1H2": 0.04, "L1H3": 0.02},
        "induction_score": {"L0H0": 0.01, "L0H1": 0.02, "L0H2": 0.01, "L0H3": 0.00,
                            "L1H0": 0.06, "L1H1": 0.91, "L1H2": 0.09, "L1H3": 0.74},
    }
    prov = Provenance(model_id="synthetic-attn-only-2l", seed=0, extra={"note": "example data"})
    return build_graph(n_layers=2, n_heads=4, edges=edges, node_scores=scores,
                       graph_attrs={"model_id": prov.model_id, "provenance": prov, "task": "induction"})


def main(out: Path) -> dict[str, Path]:
    G = induction_graph()
    files = write_all(G, out)
    pngs = draw_graph(G, [out / "graph.png", out / "graph.svg"], node_score="induction_score")
    files.update(png=pngs[0], svg=pngs[1])
    for name, path in files.items():
        print(f"{name:8s} {path} ({path.stat().st_size} bytes)")
    print("strongest K edges:", [(e.source, e.target, e.value) for e in strongest_edges(G, kind="k", n=2)])
    for p in top_paths(prune(G, threshold=0.1), k=3):
        print("path", " -> ".join(p.nodes), "kinds", p.kinds, f"score {p.score:.4f}")
    assert sorted(read_graphml(files["graphml"]).edges) == sorted(G.edges)
    return files


if __name__ == "__main__":
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="circuitry-graph-"))
    main(out_dir)
