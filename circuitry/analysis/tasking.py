"""The prompts of one ``circuitry analyze`` run: discovery prompts, held-out test prompts, and the words
the report uses for them.

* A **built-in task** (a generator) draws its discovery prompts with ``--seed`` and its test prompts from
  an independent stream (``numpy.random.SeedSequence(seed).spawn``), so the circuit test runs on prompts
  that played no part in choosing the circuit.
* A **task file** holds a fixed set of pairs and cannot make fresh ones. With at least
  :data:`MIN_SPLIT` pairs it is split at random (seeded) into a discovery half and a test half; with fewer,
  the test reuses the discovery prompts and the report says that its p-value is optimistic.
"""

from __future__ import annotations

import numpy as np

from circuitry.analysis.results import AnalysisConfig, TaskContext
from circuitry.metrics import HIGHER_IS_CLEAN
from circuitry.prompts import PairDataset, make_task, task_spec

MIN_SPLIT = 16  # a task file of at least this many pairs is split into discovery and test halves


def test_seed(seed: int) -> int:
    """The seed of the test prompts: an independent child of ``seed`` (not ``seed + 1``, which a user's
    next run may well use for discovery)."""
    child = np.random.SeedSequence(seed).spawn(2)[1]
    return int(child.generate_state(1, dtype=np.uint32)[0])


def plan_task(model, cfg: AnalysisConfig) -> tuple[PairDataset, PairDataset, TaskContext]:
    """``(discovery, test, context)`` for ``cfg``; every check of the task runs here, before any work."""
    data = make_task(cfg.task, model, n_prompts=cfg.n_prompts, seed=cfg.seed, metric=cfg.metric)
    metric = cfg.metric or data.metric or "logit_diff"
    spec = task_spec(data)
    if spec is not None:
        tseed = test_seed(cfg.seed)
        test = make_task(cfg.task, model, n_prompts=len(data), seed=tseed, metric=metric)
        discovery = data
        where = (f"{len(test)} fresh prompt pairs of the same task drawn with seed {tseed} (an independent "
                 f"stream spawned from seed {cfg.seed}; the discovery prompts used seed {cfg.seed})")
        prompts, target, source = spec.prompts, spec.target, "built-in"
    else:
        tseed = None
        source = "file" if data.source else "python"
        name = f"task file `{data.source}`" if data.source else f"task `{data.task}`"
        prompts = f"{name}: {len(data)} clean/corrupted prompt pairs of {data.length_words}"
        target = _target_words(metric)
        if len(data) >= MIN_SPLIT:
            perm = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(3)[2]).permutation(len(data))
            half = len(data) // 2
            discovery, test = data.subset(sorted(perm[:half].tolist())), data.subset(sorted(perm[half:].tolist()))
            where = (f"the other half of the {name} ({len(test)} pairs; a file cannot generate fresh prompts, so "
                     f"its pairs were split at random with seed {cfg.seed} into {len(discovery)} discovery and "
                     f"{len(test)} test pairs)")
        else:
            discovery = test = data
            where = (f"the same {len(data)} pairs the circuit was chosen on (a file cannot generate fresh prompts "
                     f"and {len(data)} pairs are too few to split; at least {MIN_SPLIT} are needed), so the "
                     "test's p-value is optimistic")
    if data.task == "induction" and spec is not None:
        tm, sign, words = "loss", 1.0, "rise in loss on the repeated half (nats)"
    else:
        tm = metric
        sign = -1.0 if HIGHER_IS_CLEAN.get(metric, True) else 1.0
        words = {"logit_diff": "drop in the logit difference", "answer_prob": "drop in the answer's probability",
                 "loss": "rise in loss (nats)", "kl": "rise in KL divergence from the clean run (nats)"}.get(
                     metric, f"change in {metric}")
    ctx = TaskContext(name=data.task, source=source, metric=metric, prompts=prompts, target=target,
                      n_discovery=len(discovery), n_test=len(test), test_prompts=where, test_seed=tseed,
                      test_metric=tm, test_sign=sign, test_statistic=words)
    return discovery, test, ctx


def _target_words(metric: str) -> str:
    return {"logit_diff": "the logit difference (answer minus foil) at the target positions",
            "answer_prob": "the answer's probability at the target positions",
            "loss": "the loss of the answer at the target positions",
            "kl": "the KL divergence from the clean run's next-token distribution at the target positions"}.get(
                metric, f"the metric {metric!r} at the target positions")
