"""Can the latent task of in-context examples be decoded from the query position? (task vectors)

Run: ``python examples/decodability.py [OUT_DIR]`` (about 20 seconds on one CPU thread). Decodes, at
every layer for 0..16 examples and against shuffled labels, two task families on ``zoo:attn-only-2l``
(mapping tasks: copy, successor, reverse, permutation; concept tasks: four latent symbol sets) and the
concept tasks on ``zoo:attn-only-1l``, and measures each model's task accuracy. Writes ``decodability_<model>_<family>.{json,md,png}``.
Used by ``docs/tutorials/decodability.md``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from circuitry.decodability import SYNTHETIC_TASKS, TOPIC_TASKS, decodability
from circuitry.io import atomic_write_json, atomic_write_text
from circuitry.models import load_model


def main(out: str | None = None) -> dict:
    torch.set_num_threads(1)
    out_dir = Path(out or tempfile.mkdtemp(prefix="circuitry-decodability-"))
    results = {}
    for name in ("attn-only-2l", "attn-only-1l"):
        model = load_model(f"zoo:{name}")
        families = (("mapping", SYNTHETIC_TASKS), ("topics", TOPIC_TASKS)) if name == "attn-only-2l" else (
            ("topics", TOPIC_TASKS),)
        for family, tasks in families:
            # 64 prompts per task, k = 0, 1, 2, 4, 8, 16 examples; ridge probe, 5 folds, 1000 shuffles
            r = decodability(model, tasks, n_examples=(0, 1, 2, 4, 8, 16), seed=0, progress=False)
            stem = f"decodability_{name}_{family}"
            atomic_write_json(out_dir / f"{stem}.json", r)
            atomic_write_text(out_dir / f"{stem}.md", r.to_markdown())
            r.plot(out_dir / f"{stem}.png")
            acc, adj, ta = r.accuracy.numpy(), r.adjusted_pvalue.numpy(), r.task_accuracy.numpy()
            print(f"{name} / {family} (chance {r.chance:.2f}):")
            for i, k in enumerate(r.n_examples):
                print(f"  k={k:2d}  " + "  ".join(f"{lay} {acc[i, j]:.2f} (p {adj[i, j]:.3f})"
                                                  for j, lay in enumerate(r.layers))
                      + "  | task accuracy " + " ".join(f"{a:.2f}" for a in ta[i]))
            print(f"  solved: {', '.join(t for t in r.tasks if r.solved[t]) or 'none'}")
            results[(name, family)] = r
    print(f"wrote {out_dir}")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
