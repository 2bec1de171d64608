"""Training dynamics: the induction-head phase change over checkpoints (Olsson et al. 2022, argument 1).

* :func:`phase_change` measures a series of checkpoints (ICL score, held-out loss, every head's
  previous-token and prefix-matching scores, K-composition) and locates the window where the ICL score
  and the prefix-matching score jump together (:func:`locate_phase_change`).
* :func:`zoo_checkpoints`, :func:`checkpoint_dirs` build the series (a zoo model's shipped checkpoints,
  or your own saved checkpoint directories).

``circuitry dynamics --model zoo:attn-only-2l --out DIR``; tutorial: ``docs/tutorials/phase-change.md``.
"""

from circuitry._lazy import lazy_exports

_EXPORTS = {
    "CheckpointScores": "measure", "measure_checkpoint": "measure", "heldout_tokens": "measure",
    "Jump": "phase", "PhaseChange": "phase", "TrainingLog": "phase", "locate_phase_change": "phase",
    "training_log_series": "phase",
    "DynamicsResult": "series", "checkpoint_dirs": "series", "phase_change": "series", "zoo_checkpoints": "series",
    "retrain_zoo_checkpoints": "series",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
