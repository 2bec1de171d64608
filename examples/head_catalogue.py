"""A catalogue of head types with significance labels: the zoo model, a random-init control, your own detector.

Run: ``python examples/head_catalogue.py [OUT_DIR]`` (a few seconds). Writes ``catalogue_<model>.json`` and
``catalogue_<model>.png`` for ``zoo:attn-only-2l`` and a random-initialized model of the same
architecture. Used by ``docs/tutorials/head-catalogue.md``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from circuitry.io import atomic_write_json
from circuitry.models import load_model
from circuitry.scores import (available_detectors, head_catalogue, pattern_detector, plot_catalogue, register_detector,
                              score_heads, successor_detector)


def two_back(tokens):
    """Your own head type in a few lines: attention from position i to i-2 (null and test come for free)."""
    n, p = tokens.shape
    return torch.diag_embed(torch.ones(n, p - 2), offset=-2)


def main(out: str | None = None) -> dict:
    torch.set_num_threads(1)
    out_dir = Path(out or tempfile.mkdtemp(prefix="circuitry-catalogue-"))
    register_detector(pattern_detector("two_back", two_back, description="attention from i to i-2"), overwrite=True)
    zoo = load_model("zoo:attn-only-2l")
    from circuitry.zoo.arch import ZooConfig, ZooTransformer

    torch.manual_seed(0)
    rand = load_model(ZooTransformer(ZooConfig(**zoo.manifest.config)))  # same architecture, untrained
    results = {}
    for label, model in (("attn-only-2l", zoo), ("random-init", rand)):
        # every detector on 10 sequences; each head tested against the detector's null, Holm over the 16 heads
        scores = score_heads(model, available_detectors(), n_samples=10, seed=0)
        # successor heads on a token order you name (here the zoo's symbols in reverse id order)
        scores |= score_heads(model, successor_detector(range(model.info.d_vocab - 1, 0, -1), name="predecessor"))
        atomic_write_json(out_dir / f"catalogue_{label}.json", {k: v.model_dump(mode="json") for k, v in scores.items()})
        plot_catalogue(scores, out_dir / f"catalogue_{label}.png", title=f"{label}: excess over null (* significant)")
        cat = head_catalogue(scores)
        print(f"{label}: {len(cat)} heads labelled")
        for name, s in scores.items():
            sig = s.significance
            ex = sig.excess.numpy()
            print(f"  {name:20s} " + (", ".join(f"{h} +{ex[int(h[1]), int(h[3:])]:.2f}" for h in sig.significant)
                                      or "none significant")
                  + f"  (best {s.top(1)[0][0]} {s.top(1)[0][1]:.2f}, null {sig.null.numpy().mean():.3f})")
        results[label] = scores
    print(f"wrote {out_dir}")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
