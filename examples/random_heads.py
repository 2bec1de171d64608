"""Do the heads the scores pick matter more than random heads, and under which null? (docs/statistics.md)

The shipped model's previous-token head L0H3 is a bottleneck, so the pool null and the conditional null
("beyond L0H3") answer different questions; each sentence below names its null and the p-value's floor.
Usage: python examples/random_heads.py [OUT_DIR] (nothing is written)"""

from circuitry.interventions import head_set_effect_fn
from circuitry.labels import all_heads
from circuitry.metrics import Targets
from circuitry.models import load_model
from circuitry.prompts import make_task
from circuitry.scores import score_heads
from circuitry.stats import circuit_vs_random, verdict

model = load_model("zoo:attn-only-2l")
scores = score_heads(model, ["previous_token", "induction"], block_len=15, n_samples=5, n_resamples=200)
candidate = [scores["previous_token"].best(layer=0), scores["induction"].best(layer=1)]
data = make_task("induction", model, n_prompts=16, seed=1)
effect = head_set_effect_fn(model, data.clean_ids(), Targets.of(data), method="mean", metric="loss")
heads = all_heads(model.info.n_layers, model.info.n_heads)
pool = circuit_vs_random(effect, candidate, heads, null="pool", rng=0)
print(pool.describe())
print("  verdict at alpha 0.01:", verdict(pool, 0.01).outcome)
beyond = circuit_vs_random(effect, [candidate[1]], heads, null="conditional", given=[candidate[0]], rng=0)
print(beyond.describe())
print("  verdict at alpha 0.05:", verdict(beyond, 0.05).outcome, "-", verdict(beyond, 0.05).reason)
