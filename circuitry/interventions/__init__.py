"""Interventions: activation patching, ablations, path patching; many per forward pass.

Exports are lazy: ``import circuitry.interventions.cli`` does not import torch.
"""

from circuitry._lazy import lazy_exports

_EXPORTS = {
    "activation_patch": "patching", "ablate_heads": "ablation", "ablation_sweep": "ablation",
    "ablation_values": "ablation", "head_set_effect_fn": "ablation", "HeadSetEffect": "ablation", "PatchResult": "results", "AblationResult": "results",
    "path_patch": "path_patching", "PathPatchResult": "path_patching",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
