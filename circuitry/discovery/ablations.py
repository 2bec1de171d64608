"""What a patched edge is fed: the ablation of the sender's output.

Every method patches an edge ``u -> v`` by feeding the receiver ``v`` the sender's *ablated* output
``a_u(ablated)`` instead of its output in the current run (``x_v = resid + a_u(ablated) - a_u(current)``):
exact patching, ACDC and the faithfulness curves use it as the patched-in value; EAP and EAP-IG use it as
the "corrupted" activation of ``(a_u(ablated) - a_u(clean)) . d m / d x_v`` (EAP-IG also interpolates the
input embeddings from the ablated embedding). The ablations (Zhang & Nanda 2024; MIB's ``patching``,
``zero``, ``mean``, ``mean-positional``; Chan et al. 2022's resampling):

- ``"counterfactual"`` (default; MIB's ``patching``): the sender's output on the corrupted prompt of the
  same pair;
- ``"zero"``: 0;
- ``"mean"``: the sender's output averaged over the task's clean prompts and their positions (one vector
  per sender);
- ``"mean-positional"``: averaged over the clean prompts at each position;
- ``"resample"``: the sender's output on the clean prompt of *another* pair, the same other pair for
  every sender (a random cyclic permutation of the pairs, so no prompt is its own source), drawn from
  ``circuitry.stats.procedure_seed(seed, "discovery/resample")``.

Pairs of different lengths (right-padded, :class:`~circuitry.prompts.PairDataset`): the means run over
real positions only (a position's mean over the prompts that reach it), and a prompt resamples from
another prompt at least as long (drawn uniformly among them from the same stream), so no real position
receives a padding token's activation.

With every edge patched the receivers see only ablated senders: for ``"counterfactual"`` that is the
corrupted run, for the others the "empty circuit" run whose metric replaces ``m(corrupted)`` everywhere
(gap, shares, faithfulness's ``m(empty)``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from circuitry.errors import bad_value

Ablation = Literal["counterfactual", "zero", "mean", "mean-positional", "resample"]
"""``"counterfactual"``: the corrupted prompt's activation (MIB's ``patching``). ``"zero"``: 0. ``"mean"``:
the mean over the clean prompts and positions. ``"mean-positional"``: the mean over the clean prompts per
position. ``"resample"``: the activation of another clean prompt (seeded)."""
ABLATIONS: tuple[str, ...] = Ablation.__args__  # type: ignore[attr-defined]
RESAMPLE_STREAM = "discovery/resample"


def check_ablation(ablation: str) -> str:
    """``ablation`` if it is one of :data:`ABLATIONS`, else an :class:`~circuitry.errors.InputError`."""
    if ablation not in ABLATIONS:
        hint = " (MIB's 'patching' is 'counterfactual')" if ablation == "patching" else ""
        raise bad_value("ablation", ablation, f"one of {', '.join(ABLATIONS)}{hint}", "e.g. --ablation mean")
    return ablation


def resample_sources(n: int, seed: int, lengths: tuple[int, ...] | None = None) -> np.ndarray:
    """``src[i]``: the pair whose clean activations prompt ``i`` receives under ``"resample"``. A random
    cyclic permutation (``order[j] -> order[j + 1]``), so ``src[i] != i`` for ``n >= 2``. With ``lengths``
    that differ, ``src[i]`` is drawn uniformly among the other pairs at least as long as pair ``i``."""
    from circuitry.stats import procedure_seed

    if n < 2:
        raise bad_value("prompts", n, "at least 2 prompt pairs for the resample ablation", "use more prompts")
    rng = np.random.default_rng(procedure_seed(seed, RESAMPLE_STREAM))
    if lengths is not None and len(set(lengths)) > 1:
        lens = np.asarray(lengths)
        if (lens == lens.max()).sum() < 2:
            raise bad_value("prompts", f"one longest pair ({int(lens.max())} tokens)", "at least two pairs of the "
                            "greatest length for the resample ablation with pairs of different lengths (a pair "
                            "resamples from another pair at least as long)", "add a pair of that length, or use "
                            "--ablation mean")
        return np.array([rng.choice(np.flatnonzero((lens >= lens[i]) & (np.arange(n) != i))) for i in range(n)])
    order = rng.permutation(n)
    src = np.empty(n, dtype=np.int64)
    src[order] = np.roll(order, -1)
    return src


def ablated_acts(clean_acts: torch.Tensor, corrupted_acts: torch.Tensor, ablation: str, *,
                 seed: int = 0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Every sender's ablated output, ``[sender, n, p, d]`` like ``clean_acts`` (the clean run's outputs)
    and ``corrupted_acts`` (the corrupted run's). ``mask`` ``[n, p]``: the real positions of right-padded
    prompts of different lengths (:meth:`~circuitry.prompts.PairDataset.mask`; None: all real)."""
    check_ablation(ablation)
    if ablation == "counterfactual":
        return corrupted_acts
    if ablation == "zero":
        return torch.zeros_like(clean_acts)
    if ablation in ("mean", "mean-positional"):
        from circuitry.interventions.ablation import masked_mean

        dims = (-3, -2) if ablation == "mean" else (-3,)
        w = None if mask is None else mask[..., None]  # acts are [sender, n, p, d]
        return masked_mean(clean_acts, w, dims).expand_as(clean_acts).contiguous()
    lengths = None if mask is None else tuple(mask.sum(1).tolist())
    src = torch.from_numpy(resample_sources(clean_acts.shape[1], seed, lengths)).to(clean_acts.device)
    return clean_acts[:, src].contiguous()


def ablated_run(model, ids: torch.Tensor, clean, corr, ablation: str, *, seed: int = 0,
                mask: torch.Tensor | None = None):
    """A :class:`~circuitry.discovery.runs.RunCache` whose sender outputs are ablated and whose logits are
    those of the run with every edge patched: the final residual stream is the clean one with every
    sender's output replaced by its ablated output (every other receiver's output is then unused). Its
    ``resid`` is empty: no method reads the corrupted run's residual stream."""
    from circuitry.discovery.runs import RunCache, run_from
    from circuitry.models import Edit

    acts = ablated_acts(clean.acts, corr.acts, ablation, seed=seed, mask=mask)
    last = model.info.n_layers - 1
    shift = (acts - clean.acts).sum(0)
    out = run_from(model, ids, last, clean.resid[last], edits=[Edit("resid_post", last, shift, op="add")])
    return RunCache(acts, [], out.logits.detach(), n_layers=model.info.n_layers)
