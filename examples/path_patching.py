"""Exact path patching from every layer-0 head into the Q, K and V inputs of the layer-1 heads."""

from circuitry.interventions import path_patch
from circuitry.models import load_model
from circuitry.prompts import make_task

model = load_model("zoo:attn-only-2l")
data = make_task("induction", model, n_prompts=16, seed=0)
res = path_patch(model, data, direction="noising", progress=False)
# the share of the logit-difference gap each path carries (1 = all of it), largest first
for row in sorted(res.to_records(), key=lambda r: -r["share"])[:6]:
    print(f"{row['sender']:>5} -> {row['receiver']:<6} via {row['kind']:<3}: share {row['share']:.2f}")
