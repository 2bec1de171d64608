"""The statistics API on synthetic effects (runs in seconds, no model needed).

A 2-layer, 8-head "model" whose heads L1H3 and L1H5 carry the task: ablating them raises the loss a
lot, every other head a little. The effect function is what the patching engine would supply: one
effect per head set, many sets per call.

Run (with circuitry installed, or from the repo root with PYTHONPATH=.): python examples/stats_random_heads.py
"""

import numpy as np

from circuitry.labels import all_heads
from circuitry.stats import (adjust_pvalues, bootstrap_ci, circuit_vs_random, correct_pvalues, paired_bootstrap_ci,
                             random_head_test, share_test, sufficiency_test, verdict)

HEADS = all_heads(2, 8)
N_PROMPTS = 64
gen = np.random.default_rng(0)
importance = {h: 0.05 for h in HEADS} | {"L1H3": 1.5, "L1H5": 1.2}
prompt_noise = gen.normal(0.0, 0.2, N_PROMPTS)


def per_prompt_loss_rise(head_set):
    """Rise in loss on each prompt when the heads are zero-ablated (synthetic)."""
    base = sum(importance[h] for h in head_set)
    return base * (1.0 + prompt_noise) + np.random.default_rng(hash(head_set) % 2**32).normal(0, 0.05, N_PROMPTS)


def effect_fn(head_sets):
    """Mean loss rise of each head set: the batched callable the tests consume."""
    return np.array([per_prompt_loss_rise(s).mean() for s in head_sets])


# 1. Effect with a bootstrap confidence interval over prompts.
effect = bootstrap_ci(per_prompt_loss_rise(("L1H3", "L1H5")), method="auto", rng=1)  # studentized at n=64
print(f"loss rise from ablating L1H3+L1H5: {effect.statistic:.3f} "
      f"[{effect.confidence_interval.low:.3f}, {effect.confidence_interval.high:.3f}] "
      f"({effect.confidence_level:.0%} {effect.method}, n={effect.n} prompts, seed={effect.seed})")
clean = gen.normal(3.0, 1.0, N_PROMPTS)
diff = paired_bootstrap_ci(clean + per_prompt_loss_rise(("L1H3",)), clean, rng=1)
print(f"paired (ablated - clean) loss for L1H3: {diff.statistic:.3f} +- {diff.standard_error:.3f}")

# 2. Random-head baseline. 120 distinct pairs exist, so the null is enumerated exactly.
res = random_head_test(effect_fn, ["L1H3", "L1H5"], HEADS, n_draws=1000, rng=2)
print(f"\nrandom-head test: effect {res.statistic:.3f} vs null mean {res.null_mean:.3f} "
      f"(sd {res.null_std:.3f}, 95% quantile {res.null_quantiles['0.95']:.3f}); "
      f"{res.effect_size_name} = {res.effect_size:.1f}")
print(" ", res.describe())
for alpha in (0.01, 0.001):
    v = verdict(res, alpha)
    print(f"  claim at alpha={alpha}: {v.outcome} - {v.reason}")
false_claim = random_head_test(effect_fn, ["L0H2", "L0H6"], HEADS, rng=2)
print(f"  false claim L0H2+L0H6: p = {false_claim.pvalue:.3f} -> {verdict(false_claim, 0.05).outcome}")

# 2b. Beyond a head: the conditional null holds L1H3 ablated in every set and asks whether L1H5 adds to it.
beyond = circuit_vs_random(effect_fn, ["L1H5"], HEADS, null="conditional", given=["L1H3"], rng=2)
print(" ", beyond.describe(), "->", verdict(beyond, 0.1).outcome)

# 2c. A share of a gap: tested only once the gap is resolved (Fieller interval, one-sided test at alpha).
corrupted = clean - gen.normal(2.0, 0.5, N_PROMPTS)
patched = clean - 0.6 * (clean - corrupted) + gen.normal(0, 0.1, N_PROMPTS)
st = share_test(patched, clean, corrupted, min_share=0.5, alpha=0.01, rng=5)
print(f"\nshare {st.share:.3f}, Fieller 95% [{st.interval.low:.3f}, {st.interval.high:.3f}]: {st.outcome} ({st.reason})")

# 3. One test per head, corrected for multiplicity.
singles = [random_head_test(effect_fn, [h], HEADS, rng=3) for h in HEADS]
raw = [r.pvalue for r in singles]
table = correct_pvalues(raw, method="holm", alpha=0.05, labels=HEADS)
print(f"\nper-head tests ({table.method}, controls the {table.controls}): significant = "
      f"{[h for h, r in zip(table.labels, table.rejected) if r]}; floor 1/16 makes Holm reject nothing")
print("  BH-adjusted:", np.round(adjust_pvalues(raw, method="bh"), 3)[:4], "...")

# 4. Sufficiency of the circuit {L1H3, L1H5} against random circuits of the same size (Shi et al. 2024).
total = sum(importance.values())
suff = sufficiency_test(lambda sets: [total - sum(importance[h] for h in s) for s in sets],
                        ["L1H3", "L1H5"], HEADS, n_random=100, q=0.9, rng=4)
print(f"\nsufficiency: beats {suff.n_beaten}/{suff.n_random} random circuits, p = {suff.pvalue:.2e} "
      f"-> {verdict(suff, 0.01).outcome}")
print("\nresult as JSON (first 200 characters):", res.model_dump_json()[:200], "...")
