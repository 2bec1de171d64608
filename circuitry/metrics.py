"""Metrics: plain functions from logits to one value per prompt.

Every metric has the signature ``metric(logits, targets) -> Tensor[n]`` where ``logits`` is
``[n, pos, vocab]`` and ``targets`` a :class:`Targets` (metric positions, answer and foil tokens, and
the clean run's log-probabilities for the KL divergence). Values are kept per prompt so that later
stages can bootstrap over prompts. A user metric is any callable of that signature.

Definitions follow Zhang & Nanda (2024), "Towards best practices of activation patching": logit
difference (answer minus foil), answer probability, loss, KL divergence to the clean distribution,
and the normalized effect ``(M_patched - M_corrupted) / (M_clean - M_corrupted)``. Probability alone
hides negative heads; the logit difference does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal

import torch

from circuitry.errors import InputError

MetricName = Literal["logit_diff", "answer_prob", "loss", "kl"]


@dataclass(frozen=True)
class Targets:
    """Per-prompt metric targets, each ``[n, k]``; ``clean_logprobs`` is ``[n, k, vocab]`` (for ``kl``)."""

    positions: torch.Tensor
    answers: torch.Tensor
    foils: torch.Tensor
    clean_logprobs: torch.Tensor | None = None

    @classmethod
    def of(cls, data, *, device="cpu", metric: str | Callable | None = None,
           clean_logits: torch.Tensor | None = None) -> "Targets":
        """The targets of a prompt-pair dataset (anything with ``targets(device)``); with ``metric="kl"``
        the clean run's log-probabilities (from ``clean_logits``) are attached, as that metric needs."""
        t = cls(*data.targets(device))
        if metric == "kl":
            if clean_logits is None:
                raise InputError("metric='kl' needs the clean run's logits: pass clean_logits=")
            t = t.with_clean(clean_logits)
        return t

    def repeat(self, times: int) -> "Targets":
        """The targets tiled ``times`` over the batch (for patches stacked along the batch)."""
        rep = lambda t: None if t is None else t.repeat(times, *([1] * (t.ndim - 1)))  # noqa: E731
        return Targets(rep(self.positions), rep(self.answers), rep(self.foils), rep(self.clean_logprobs))

    def with_clean(self, clean_logits: torch.Tensor) -> "Targets":
        """Attach the clean run's log-probabilities at the metric positions."""
        return replace(self, clean_logprobs=at_positions(clean_logits, self.positions).log_softmax(-1))


def _need(t: Targets, field: str, metric: str) -> torch.Tensor:
    v = getattr(t, field)
    if bool((v < 0).any()):
        raise InputError(f"metric={metric!r} needs {field} for every prompt pair, and some pairs have none. Fix: add "
                         f"'{field}' to the task's pairs (docs/tasks.md), or use metric='kl' (needs no answers)")
    return v


def check_metric_values(clean, corrupted, name: str):
    """Refuse a metric that cannot measure anything: a non-finite value on the clean or corrupted run, or
    the same value on every prompt of both runs (a constant). Returns ``(clean, corrupted)``."""
    import numpy as np

    c, k = (np.asarray(x, dtype=float).ravel() for x in (clean, corrupted))
    for run, v in (("clean", c), ("corrupted", k)):
        if not np.isfinite(v).all():
            bad = np.flatnonzero(~np.isfinite(v))[:5].tolist()
            raise InputError(f"metric={name!r} returned NaN or inf on the {run} run (prompts {bad}); no effect can be "
                             "measured. Fix: check the metric's function and the weights (circuitry needs finite "
                             "values)")
    both = np.concatenate([c, k])
    if both.size and np.ptp(both) == 0:
        raise InputError(f"metric={name!r} returned the constant {float(both[0])!r} on every clean and corrupted prompt, so "
                         "no patch can change it. Fix: a metric that reads the logits at the task's positions")
    return clean, corrupted


def at_positions(logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``logits[i, positions[i, j]]`` for every prompt ``i`` and target ``j``: ``[n, k, vocab]``."""
    idx = positions.to(logits.device)[..., None].expand(-1, -1, logits.shape[-1])
    return logits.gather(1, idx)


def logit_diff(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    """Mean over target positions of ``logit[answer] - logit[foil]``: ``[n]``."""
    lg = at_positions(logits, t.positions)
    ans = lg.gather(-1, _need(t, "answers", "logit_diff")[..., None].to(lg.device))[..., 0]
    foil = lg.gather(-1, _need(t, "foils", "logit_diff")[..., None].to(lg.device))[..., 0]
    return (ans - foil).mean(-1)


def answer_prob(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    """Mean over target positions of the answer's probability: ``[n]``."""
    p = at_positions(logits, t.positions).softmax(-1)
    return p.gather(-1, _need(t, "answers", "answer_prob")[..., None].to(p.device))[..., 0].mean(-1)


def loss(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    """Mean cross-entropy of the answers at the target positions (nats): ``[n]``.

    For the induction task: the loss on the repeated half."""
    lp = at_positions(logits, t.positions).log_softmax(-1)
    return -lp.gather(-1, _need(t, "answers", "loss")[..., None].to(lp.device))[..., 0].mean(-1)


def kl(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    """Mean over target positions of ``KL(clean || patched)`` (nats): ``[n]``."""
    if t.clean_logprobs is None:
        raise InputError("metric='kl' needs the clean run's log-probabilities: use Targets.with_clean(clean_logits)")
    lp = at_positions(logits, t.positions).log_softmax(-1)
    c = t.clean_logprobs.to(lp.device)
    return (c.exp() * (c - lp)).sum(-1).mean(-1)


METRICS: dict[str, Callable[[torch.Tensor, Targets], torch.Tensor]] = {
    "logit_diff": logit_diff, "answer_prob": answer_prob, "loss": loss, "kl": kl,
}
# Which targets each built-in metric reads, besides the positions.
METRIC_NEEDS: dict[str, tuple[str, ...]] = {"logit_diff": ("answers", "foils"), "answer_prob": ("answers",),
                                            "loss": ("answers",), "kl": ()}
# For which metrics a *higher* value means "more like the clean run".
HIGHER_IS_CLEAN = {"logit_diff": True, "answer_prob": True, "loss": False, "kl": False}


def get_metric(metric: str | Callable) -> Callable[[torch.Tensor, Targets], torch.Tensor]:
    """A metric by name (``logit_diff``, ``answer_prob``, ``loss``, ``kl``) or a user callable."""
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise InputError(f"metric={metric!r} is unknown; expected one of {sorted(METRICS)} or a callable "
                         "(logits [n, pos, vocab], Targets) -> [n]")
    return METRICS[metric]


def normalized_effect(patched, clean, corrupted):
    """``(M_patched - M_corrupted) / (M_clean - M_corrupted)``: 0 = like the corrupted run, 1 = like the
    clean run, whichever run was patched. Works on tensors, arrays or floats (means)."""
    return (patched - corrupted) / (clean - corrupted)


def share_of_gap(normalized, direction: str):
    """The share of the clean-corrupted gap a patched site carries, from its normalized effect: positive =
    the site matters, in both directions. Noising ``(M_clean - M_patched) / (M_clean - M_corrupted)`` =
    ``1 - normalized``; denoising ``(M_patched - M_corrupted) / (M_clean - M_corrupted)`` = ``normalized``.
    This is the one convention of every report, figure and table circuitry writes."""
    if direction == "noising":
        return 1 - normalized
    if direction == "denoising":
        return normalized
    raise InputError(f"direction={direction!r}; expected 'noising' or 'denoising'")


def share_label(metric: str, direction: str, *, short: bool = False) -> str:
    """Words for the share of :func:`share_of_gap` (table headers; ``short`` for colour bars)."""
    if short:
        return f"share of the {metric} gap ({direction}; 1 = all of it)"
    formula = ("(M_clean - M_patched) / (M_clean - M_corrupted)" if direction == "noising"
               else "(M_patched - M_corrupted) / (M_clean - M_corrupted)")
    return f"share of the {metric} gap carried ({direction}: {formula}; 1 = all of it, 0 = none)"

