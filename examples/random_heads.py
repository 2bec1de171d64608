"""Do the heads found by patching matter more than random heads? (docs/statistics.md)"""

from circuitry.interventions import head_set_effect_fn
from circuitry.labels import all_heads
from circuitry.metrics import Targets
from circuitry.models import load_model
from circuitry.prompts import make_task
from circuitry.scores import score_heads
from circuitry.stats import random_head_test, verdict

model = load_model("zoo:attn-only-2l")
scores = score_heads(model, ["previous_token", "induction"], block_len=15, n_samples=5, n_resamples=200)
candidate = [scores["previous_token"].best(layer=0), scores["induction"].best(layer=1)]
data = make_task("induction", model, n_prompts=16, seed=1)
effect = head_set_effect_fn(model, data.clean_ids(), Targets.of(data), method="mean", metric="loss")
test = random_head_test(effect, candidate, all_heads(model.info.n_layers, model.info.n_heads), rng=0)
print(f"candidate {candidate}: loss rise {test.statistic:.3f} vs random {test.null_mean:.3f} +- {test.null_std:.3f}; "
      f"p = {test.pvalue:.4f} ({'exact' if test.exact else 'sampled'} null, floor {test.min_attainable_pvalue:.4f})")
print("verdict at alpha 0.01:", verdict(test, 0.01).outcome)
