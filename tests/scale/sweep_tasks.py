"""A real sweep task for the executor tests: one chunk of a random-head null on ``zoo:attn-only-2l``.

Module level, so spawned processes and Ray workers can import it; the model and the ablation values are
loaded once per worker process."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _effect_fn():
    import torch

    from circuitry.interventions import head_set_effect_fn
    from circuitry.metrics import Targets
    from circuitry.models import load_model
    from circuitry.prompts import induction_pairs

    torch.set_num_threads(1)  # the same arithmetic in every worker
    model = load_model("zoo:attn-only-2l")
    data = induction_pairs(8, block_len=6, vocab_size=model.info.d_vocab, bos=0, seed=4)
    return head_set_effect_fn(model, data.clean_ids(), Targets.of(data), method="mean", metric="loss")


def null_chunk(n_draws: int, rng: np.random.Generator) -> list[tuple[tuple[str, ...], float]]:
    """``n_draws`` random 2-head sets of the 16 heads, drawn from ``rng``, with their ablation effect."""
    heads = [f"L{l}H{h}" for l in range(2) for h in range(8)]
    sets = [tuple(sorted(rng.choice(heads, size=2, replace=False))) for _ in range(n_draws)]
    return list(zip(sets, (float(v) for v in _effect_fn()(sets))))
