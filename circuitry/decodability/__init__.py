"""Concept decodability: is the latent task of in-context examples readable from the query position?

* :func:`decodability`: prompts with ``k`` examples of several latent tasks, a cross-validated probe of the
  task at every layer against shuffled labels, and the model's task accuracy (Hendel et al. 2023 task
  vectors, Todd et al. 2024 function vectors: the concept encoding-decoding view of ICL).
* :func:`synthetic_prompts`, :func:`read_task_file`: the tasks; :func:`cv_accuracy`: the probe.

``circuitry decodability --model zoo:attn-only-2l --out DIR``; tutorial: ``docs/tutorials/decodability.md``.
"""

from circuitry._lazy import lazy_exports

_EXPORTS = {
    "DecodabilityResult": "run", "decodability": "run",
    "cv_accuracy": "probe", "random_folds": "probe",
    "SYNTHETIC_TASKS": "tasks", "TOPIC_TASKS": "tasks", "TaskPrompt": "tasks", "read_task_file": "tasks", "synthetic_prompts": "tasks",
    "task_map": "tasks",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
