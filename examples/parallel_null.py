"""A random-head null in worker processes: the same draws and p-value as in this process (docs/scale.md).

`executor="processes"` sends batches of random head sets to a pool of spawned workers (kept for later
calls); `executor="ray"` sends them to Ray. A script that starts workers must keep its work under
`if __name__ == "__main__":`, since each spawned worker imports the script again. On this tiny model
the workers' start-up (several seconds: each imports torch and circuitry) costs more than the 500 draws;
the gain is on models where a draw costs tens of milliseconds (docs/scale.md measures one).
Usage: python examples/parallel_null.py [OUT_DIR] (nothing is written)"""

import time

import torch

from circuitry.interventions import head_set_effect_fn
from circuitry.labels import all_heads
from circuitry.metrics import Targets
from circuitry.models import load_model
from circuitry.prompts import make_task
from circuitry.stats import circuit_vs_random


def main() -> None:
    torch.set_num_threads(1)  # the workers run one BLAS thread each on 2 cores: the same arithmetic here
    model = load_model("zoo:attn-only-2l")
    data = make_task("induction", model, n_prompts=16, seed=1)
    effect = head_set_effect_fn(model, data.clean_ids(), Targets.of(data), method="mean", metric="loss")
    heads = all_heads(model.info.n_layers, model.info.n_heads)
    runs = {}
    for executor in ("serial", "processes"):
        t = time.perf_counter()
        # the circuit `circuitry analyze` finds on this model: the previous-token head and the induction heads
        runs[executor] = circuit_vs_random(effect, ["L0H3", "L1H0", "L1H2", "L1H5", "L1H7"], heads, null="pool",
                                           n_draws=500, rng=0, executor=executor, max_workers=2)
        print(f"{executor:9s} {time.perf_counter() - t:5.1f} s  {runs[executor].describe()}")
    same = runs["serial"].null_distribution == runs["processes"].null_distribution
    print("the same 500 null values in both:", same)
    if not same:
        raise SystemExit("the executors disagree")


if __name__ == "__main__":
    main()
