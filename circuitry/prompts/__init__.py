"""Prompt pairs (clean/corrupted) and task generators."""

from circuitry.prompts.induction import induction_pairs, repeated_tokens
from circuitry.prompts.pairs import PairDataset, PromptPair
from circuitry.prompts.tasks import TASKS, make_task

__all__ = ["PairDataset", "PromptPair", "induction_pairs", "repeated_tokens", "make_task", "TASKS"]
