"""Activation patching of every head, noising and denoising, on the induction task (docs/patching.md)."""

import sys
from pathlib import Path

from circuitry.interventions import activation_patch
from circuitry.models import load_model
from circuitry.prompts import make_task

out = Path(sys.argv[1] if len(sys.argv) > 1 else "example-output")
model = load_model("zoo:attn-only-2l")
data = make_task("induction", model, n_prompts=16, seed=0)

for direction in ("noising", "denoising"):
    res = activation_patch(model, data, site="z", direction=direction, progress=False)
    print(res.summary(k=3))  # share of the gap: 1 = the head carries all of it, in both directions
    res.heatmap(out / f"patching_{direction}.png")

# per position, for one site: which positions of the residual stream carry the repeat
pos = activation_patch(model, data, site="resid_pre", direction="denoising", per_position=True, progress=False)
print("resid_pre per position:", pos.share.axes, pos.share.shape)
