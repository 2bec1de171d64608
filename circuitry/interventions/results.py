"""Result types of the intervention engine (frozen, JSON round-trippable, with provenance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitry.provenance import Frozen, NamedArray, Provenance


class PatchResult(Frozen):
    """An activation-patching sweep.

    ``effect`` is the normalized effect ``(M_patched - M_corrupted) / (M_clean - M_corrupted)`` of the
    mean metric; ``metric_mean`` the raw mean metric with the patch; ``per_prompt`` the raw metric per
    unit and prompt (last axis ``prompt``), for bootstrapping; ``clean`` / ``corrupted`` the metric of
    the unpatched runs, per prompt.
    """

    site: str
    direction: str
    metric: str
    effect: NamedArray
    metric_mean: NamedArray
    per_prompt: NamedArray
    clean: list[float]
    corrupted: list[float]
    n_prompts: int
    provenance: Provenance

    @property
    def clean_mean(self) -> float:
        return float(np.mean(self.clean))

    @property
    def corrupted_mean(self) -> float:
        return float(np.mean(self.corrupted))

    def heatmap(self, path: str | Path) -> Path:
        """Draw the normalized effect: ``layer x head`` (or ``layer/head x position``) heatmap."""
        from circuitry.plots import heatmap

        arr = self.effect.numpy()
        axes = self.effect.axes
        layers = self.effect.coords.get("layer", list(range(arr.shape[0])))
        title = f"{self.direction} {self.site}: normalized {self.metric} effect"
        if axes == ("layer", "head"):
            return heatmap(arr, path, title=title, yticklabels=[str(l) for l in layers], center=0.0)
        if axes == ("layer",):
            return heatmap(arr[:, None], path, title=title, xlabel="", xticklabels=[""],
                           yticklabels=[str(l) for l in layers], center=0.0)
        if axes == ("layer", "position"):
            return heatmap(arr, path, title=title, xlabel="position", yticklabels=[str(l) for l in layers],
                           center=0.0, annotate=False)
        flat = arr.reshape(-1, arr.shape[-1])
        labels = [f"L{l}H{h}" for l in layers for h in range(arr.shape[1])]
        return heatmap(flat, path, title=title, xlabel="position", ylabel="head", yticklabels=labels,
                       center=0.0, annotate=False)


class AblationResult(Frozen):
    """Metric per ablated head set and prompt, with the unablated baseline.

    ``per_prompt`` has axes ``("set", "prompt")``; ``effect`` is the mean over prompts of
    ``metric(ablated) - metric(unablated)`` per set."""

    method: str
    metric: str
    head_sets: list[list[str]]
    per_prompt: NamedArray
    baseline: list[float]
    effect: list[float]
    n_prompts: int
    provenance: Provenance
