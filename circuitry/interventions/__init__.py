"""Interventions: activation patching, ablations, path patching; many per forward pass."""

from circuitry.interventions.ablation import ablate_heads, ablation_sweep, ablation_values
from circuitry.interventions.patching import activation_patch
from circuitry.interventions.results import AblationResult, PatchResult

__all__ = ["activation_patch", "ablate_heads", "ablation_sweep", "ablation_values", "PatchResult",
           "AblationResult"]
