"""The induction-head phase change over the zoo's checkpoints, and the 1-layer control.

Run: ``python examples/phase_change.py [OUT_DIR]`` (about 15 seconds on one CPU thread). Writes, for
``zoo:attn-only-2l`` and ``zoo:attn-only-1l``, ``dynamics_<name>.json``, ``.md`` and
``phase_change_<name>.png``. ``python examples/phase_change.py OUT_DIR --dense`` instead re-trains
``attn-only-2l``'s recipe to step 600 with a checkpoint every 50 steps (minutes; not run in CI) and measures
that series (``phase_change_attn-only-2l_dense.png``). Used by ``docs/tutorials/phase-change.md``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from circuitry.dynamics import phase_change, retrain_zoo_checkpoints, zoo_checkpoints
from circuitry.io import atomic_write_json, atomic_write_text


def report(r, name: str, out_dir: Path) -> None:
    """Write ``r``'s JSON, Markdown and figure as ``<name>`` and print the window and one line per step."""
    atomic_write_json(out_dir / f"dynamics_{name}.json", r)
    atomic_write_text(out_dir / f"dynamics_{name}.md", r.to_markdown())
    r.plot(out_dir / f"phase_change_{name}.png")
    print(f"{name}: {r.phase_change.describe()}")
    if r.log_phase_change is not None:
        print(f"{name}: {r.log_phase_change.describe()}")
    for c, prev, ind, icl in zip(r.checkpoints, r.curve("prev_token"), r.curve("induction"), r.curve("icl")):
        print(f"  step {c.step:5d}: ICL {icl[0]:+.2f} nats, held-out loss {c.heldout_loss:.2f}, "
              f"best previous-token {prev[0]:.2f}, best prefix-matching {ind[0]:.2f}")
    if r.tracked_pair:
        print(f"  K-composition {r.tracked_pair[0]}->{r.tracked_pair[1]}: "
              + ", ".join(f"{k:.3f}" for k in r.tracked_k_composition)
              + f" (random heads {r.k_baseline_mean:.3f} +- {r.k_baseline_std:.3f})")


def main(out: str | None = None, *, dense: bool = False) -> dict:
    torch.set_num_threads(1)
    out_dir = Path(out or tempfile.mkdtemp(prefix="circuitry-dynamics-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    if dense:  # the shipped recipe's exact prefix, a checkpoint every 50 steps
        series = retrain_zoo_checkpoints("attn-only-2l", out_dir / "dense", every=50, until=600, progress=False)
        r = phase_change(series, series="zoo:attn-only-2l retrained, every 50 steps", progress=False)
        report(r, "attn-only-2l_dense", out_dir)
        results["attn-only-2l_dense"] = r
    else:
        for name in ("attn-only-2l", "attn-only-1l"):
            # every shipped checkpoint + the final weights: ICL score and loss on 256 held-out corpus sequences,
            # every head's previous-token and prefix-matching scores, K-composition
            results[name] = r = phase_change(zoo_checkpoints(name), series=f"zoo:{name}", progress=False)
            report(r, name, out_dir)
    print(f"wrote {out_dir}")
    return results


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--dense"]
    main(args[0] if args else None, dense="--dense" in sys.argv[1:])
