"""Exact path patching from every layer-0 head into the Q, K and V inputs of the layer-1 heads."""

from circuitry.interventions import path_patch
from circuitry.models import load_model
from circuitry.prompts import make_task

model = load_model("zoo:attn-only-2l")
data = make_task("induction", model, n_prompts=16, seed=0)
res = path_patch(model, data, direction="noising", progress=False)
# share of the logit-difference gap each path carries (noising: 1 - normalized effect)
ranked = sorted(zip(res.paths, res.effect), key=lambda x: x[1])[:6]
for (s, r, k), e in ranked:
    print(f"{s:>5} -> {r:<6} via {k:<3}: share {1 - e:.2f}")
