"""Ablations of head sets: zero, mean and resample, many head sets per forward pass.

Ablating a head replaces its output ``z_h W_O^h`` for every position; circuitry does it on ``z``
(the input of the output projection), which is exactly equivalent because the projection is linear:

* ``zero``: ``z_h = 0`` (the head writes nothing; its share of the output bias stays).
* ``mean``: ``z_h`` replaced by its mean over a reference set of prompts, per position when the
  reference prompts have the prompts' length (``per_position=True``), else over all positions.
* ``resample``: ``z_h`` taken from another prompt of the reference set (a seeded random pairing that
  never pairs a prompt with itself when the reference set is the prompt set).

Right-padded prompts of different lengths (``mask``, :meth:`~circuitry.prompts.PairDataset.mask`): the
means run over real positions only, and a prompt resamples from a reference prompt at least as long.

This is the operation the random-head baseline repeats thousands of times, so every call stacks many
head sets along the batch (see :mod:`circuitry.interventions.batching`).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import numpy as np
import torch

from circuitry.errors import InputError
from circuitry.interventions.shared_prefix import ablate_shared
from circuitry.interventions.results import AblationResult
from circuitry.labels import Head, head_label, parse_head
from circuitry.metrics import Targets, get_metric
from circuitry.models import ModelAdapter
from circuitry.provenance import NamedArray, make_provenance

AblationMethod = Literal["zero", "mean", "resample"]


def _check_sets(model: ModelAdapter, head_sets) -> list[list[Head]]:
    sets = []
    for i, hs in enumerate(head_sets):
        parsed = [parse_head(h) for h in hs]
        for l, h in parsed:
            if not (0 <= l < model.info.n_layers and 0 <= h < model.info.n_heads):
                raise InputError(f"head_sets[{i}] names L{l}H{h}, which {model.model_id} does not have "
                                 f"({model.info.n_layers} layers x {model.info.n_heads} heads)")
        sets.append(parsed)
    return sets


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None, dims: tuple[int, ...]) -> torch.Tensor:
    """``x`` averaged over ``dims`` at the real positions only, kept as size-1 dimensions. ``mask``: booleans
    ``[n, pos]`` of right-padded prompts, already shaped to broadcast against ``x`` (e.g. ``mask[..., None]``);
    ``None``: every position is real. A position no prompt reaches gets 0."""
    if mask is None:
        return x.mean(dims, keepdim=True)
    w = mask.to(x.device, x.dtype)
    return (x * w).sum(dims, keepdim=True) / w.sum(dims, keepdim=True).clamp(min=1)


def ablation_values(model: ModelAdapter, ids: torch.Tensor, *, method: AblationMethod,
                    reference_ids: torch.Tensor | None = None, per_position: bool = True,
                    seed: int = 0, mask: torch.Tensor | None = None,
                    reference_mask: torch.Tensor | None = None) -> dict[int, torch.Tensor | float]:
    """The replacement ``z`` per layer for every prompt row of ``ids``: ``[n, pos, head, d_head]``
    (or a scalar 0 for ``zero``). ``mask`` / ``reference_mask``: the real positions of right-padded prompts
    (None: every position is real); the reference set's mask is ``mask`` when it is the prompt set."""
    L = model.info.n_layers
    if method == "zero":
        return {l: 0.0 for l in range(L)}
    if method not in ("mean", "resample"):
        raise InputError(f"method={method!r}; expected 'zero', 'mean' or 'resample'")
    ref = ids if reference_ids is None else reference_ids.to(model.device)
    ref_mask = mask if reference_ids is None else reference_mask
    cache = model.run(ref, reads=[("z", l) for l in range(L)])
    n, seq = ids.shape
    out: dict[int, torch.Tensor | float] = {}
    if method == "mean":
        for l in range(L):
            z = cache[("z", l)]
            w = None if ref_mask is None else ref_mask[..., None, None]  # z is [n, pos, head, d_head]
            out[l] = masked_mean(z, w, (0,) if per_position and z.shape[1] == seq else (0, 1))
        return out
    if ref.shape[1] != seq:
        raise InputError(f"reference_ids have {ref.shape[1]} tokens but the prompts have {seq}; resample "
                         "ablation needs reference prompts of the same length")
    g = torch.Generator().manual_seed(seed)
    m = ref.shape[0]
    if mask is not None or ref_mask is not None:
        pick = _pick_longer(mask, ref_mask, n, m, seq, g, same=reference_ids is None)
    elif reference_ids is None:  # a derangement-like pairing: never a prompt with itself
        pick = (torch.arange(n) + torch.randint(1, max(m, 2), (n,), generator=g)) % m
    else:
        pick = torch.randint(m, (n,), generator=g)
    return {l: cache[("z", l)][pick] for l in range(L)}


def _pick_longer(mask, ref_mask, n: int, m: int, seq: int, g: torch.Generator, *, same: bool) -> torch.Tensor:
    """For each prompt, a reference prompt at least as long (another one when the sets are the same),
    uniformly from ``g``; an :class:`InputError` when a prompt has none."""
    own = (mask.sum(1) if mask is not None else torch.full((n,), seq)).cpu()
    ref = (ref_mask.sum(1) if ref_mask is not None else torch.full((m,), seq)).cpu()
    pick = torch.empty(n, dtype=torch.long)
    for i in range(n):
        ok = (ref >= own[i]) & ~((torch.arange(m) == i) & same)
        if not ok.any():
            raise InputError(f"prompt {i} has {int(own[i])} tokens and no other reference prompt is as long; resample "
                             "ablation of prompts of different lengths draws from prompts at least as long. Fix: add "
                             "a prompt of that length, or use mean ablation")
        cand = ok.nonzero()[:, 0]
        pick[i] = cand[torch.randint(len(cand), (1,), generator=g)]
    return pick


def ablate_heads(model: ModelAdapter, ids: torch.Tensor, head_sets: Sequence[Sequence[str | Head]],
                 targets: Targets, *, method: AblationMethod = "zero", metric: str | Callable = "loss",
                 reference_ids: torch.Tensor | None = None, per_position: bool = True, seed: int = 0,
                 max_rows: int | None = None, progress: bool = False, values=None,
                 resid_pre: dict[int, torch.Tensor] | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Metric per head set and prompt with each set ablated, ``[len(head_sets), n]``.

    Sets run through :func:`~circuitry.interventions.shared_prefix.ablate_shared`: the layers before a
    set's first ablated head, and the early layers that several sets ablate alike, are computed once.
    ``values`` may pass precomputed :func:`ablation_values` and ``resid_pre`` the unablated run's residual
    stream entering each layer (the random-head test reuses both)."""
    sets = _check_sets(model, head_sets)
    metric_fn = get_metric(metric)
    ids = ids.to(model.device)
    n, seq = ids.shape
    vals = values if values is not None else ablation_values(
        model, ids, method=method, reference_ids=reference_ids, per_position=per_position, seed=seed, mask=mask)

    if resid_pre is None:
        resid_pre = clean_resid(model, ids)
    return ablate_shared(model, ids, sets, vals, metric_fn, targets, resid_pre, max_rows=max_rows,
                         progress="ablating" if progress else False)


def clean_resid(model: ModelAdapter, ids: torch.Tensor) -> dict[int, torch.Tensor]:
    """The unablated run's residual stream entering each layer, ``{layer: [n, p, d]}``."""
    L = model.info.n_layers
    cache = model.run(ids, reads=[("resid_pre", l) for l in range(L)], logits=False)
    return {l: cache[("resid_pre", l)] for l in range(L)}


def ablation_sweep(model: ModelAdapter, ids: torch.Tensor, head_sets: Sequence[Sequence[str | Head]],
                   targets: Targets, *, method: AblationMethod = "zero", metric: str | Callable = "loss",
                   reference_ids: torch.Tensor | None = None, seed: int = 0, dataset=None,
                   progress: bool = False, mask: torch.Tensor | None = None) -> AblationResult:
    """:func:`ablate_heads` plus the unablated baseline, as a result with provenance."""
    vals = ablate_heads(model, ids, head_sets, targets, method=method, metric=metric, reference_ids=reference_ids,
                        seed=seed, progress=progress, mask=mask)
    base = get_metric(metric)(model.run(ids.to(model.device)).logits, targets).float().cpu()
    labels = [[head_label(*parse_head(h)) for h in hs] for hs in head_sets]
    return AblationResult(
        method=method, metric=metric if isinstance(metric, str) else getattr(metric, "__name__", "custom"),
        head_sets=labels, per_prompt=NamedArray.from_array(vals, ("set", "prompt")), baseline=base.tolist(),
        effect=(vals - base).mean(1).tolist(), n_prompts=ids.shape[0],
        provenance=make_provenance(model, dataset=dataset, seed=seed),
    )


def head_set_effect_fn(model: ModelAdapter, ids: torch.Tensor, targets: Targets, *,
                       method: AblationMethod = "mean", metric: str | Callable = "loss",
                       reference_ids: torch.Tensor | None = None, seed: int = 0, max_rows: int | None = None,
                       sign: float = 1.0, mask: torch.Tensor | None = None) -> "HeadSetEffect":
    """A batched ``effect_fn(head_sets) -> array`` for :func:`circuitry.stats.random_head_test`.

    The effect of a set is ``sign * mean over prompts of (metric(ablated) - metric(unablated))``; with
    ``metric="loss"`` and ``sign=1`` it is the rise in loss when the set is ablated. The ablation
    values are computed once and reused for every draw; ``effect_fn.per_prompt(head_sets)`` gives the
    ``[set, prompt]`` values behind the means, from the same ablation values and unablated run.

    The returned :class:`HeadSetEffect` pickles (model included), so a random-head null can be spread over
    processes or Ray (``executor=`` of :func:`~circuitry.stats.random_head_test`); a user ``metric`` must
    then be a module-level function."""
    ids = ids.to(model.device)
    vals = ablation_values(model, ids, method=method, reference_ids=reference_ids, seed=seed, mask=mask)
    base = get_metric(metric)(model.run(ids).logits, targets).float().cpu()
    return HeadSetEffect(model, ids, targets, method=method, metric=metric, values=vals, base=base,
                         resid_pre=clean_resid(model, ids), max_rows=max_rows, sign=sign)


class HeadSetEffect:
    """The effect of ablating head sets on fixed prompts (built by :func:`head_set_effect_fn`): calling it
    on a list of head sets gives one mean effect per set; :meth:`per_prompt` the ``[set, prompt]`` values."""

    #: a random-head test hands it every set in one call (per worker): the layers the sets share are computed
    #: once (:func:`~circuitry.interventions.shared_prefix.ablate_shared`), and the more sets it sees at once
    #: the more they share (1,000 draws of 4 heads of a 6 x 8 model: 0.59 of one full pass per set in one
    #: call, 0.69 in calls of 250); its memory stays within ``NODE_BUDGET_BYTES`` however many sets it gets
    batch_size = None

    def __init__(self, model: ModelAdapter, ids: torch.Tensor, targets: Targets, *, method: AblationMethod,
                 metric: str | Callable, values, base: torch.Tensor, resid_pre: dict[int, torch.Tensor],
                 max_rows: int | None, sign: float):
        self.model, self.ids, self.targets = model, ids, targets
        self.method, self.metric, self.values, self.base = method, metric, values, base
        self.resid_pre, self.max_rows, self.sign = resid_pre, max_rows, sign

    def per_prompt(self, head_sets) -> np.ndarray:
        """``[set, prompt]`` effects (the per-prompt values behind the means)."""
        per = ablate_heads(self.model, self.ids, [list(s) for s in head_sets], self.targets, method=self.method,
                           metric=self.metric, values=self.values, max_rows=self.max_rows, resid_pre=self.resid_pre)
        return (self.sign * (per - self.base)).numpy().astype(float)

    def __call__(self, head_sets) -> np.ndarray:
        return self.per_prompt(head_sets).mean(1)
