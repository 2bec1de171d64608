"""Prompt pairs (clean/corrupted), task files and task generators (docs/tasks.md)."""

from circuitry.prompts.check import check_task
from circuitry.prompts.files import read_pairs
from circuitry.prompts.induction import induction_pairs, repeated_tokens
from circuitry.prompts.pairs import PairDataset, PromptPair
from circuitry.prompts.synthetic import ioi_pairs, successor_pairs
from circuitry.prompts.tasks import TASK_SPECS, TASKS, TaskSpec, make_task, task_spec

__all__ = ["PairDataset", "PromptPair", "induction_pairs", "ioi_pairs", "successor_pairs", "repeated_tokens",
           "make_task", "check_task", "read_pairs", "task_spec", "TaskSpec", "TASK_SPECS", "TASKS"]
