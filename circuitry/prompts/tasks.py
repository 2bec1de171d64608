"""Tasks: a task is prompt pairs + metric targets + a default metric (docs/tasks.md).

Built-in tasks are generators: they draw fresh prompts for any seed and any vocabulary, which is what a
held-out test needs. A task file (JSONL of token ids or of text, :mod:`circuitry.prompts.files`) holds a
fixed set of pairs and cannot make fresh ones. :func:`make_task` builds either for a loaded model and checks
it against the model and the metric (:func:`circuitry.prompts.check_task`) before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from circuitry.errors import InputError, bad_value
from circuitry.limits import MAX_PROMPTS
from circuitry.prompts.check import check_task
from circuitry.prompts.induction import induction_pairs
from circuitry.prompts.pairs import PairDataset
from circuitry.prompts.synthetic import ioi_pairs, successor_pairs

TaskName = Literal["induction", "ioi", "successor"]
DEFAULT_N_PROMPTS = 32


@dataclass(frozen=True)
class TaskSpec:
    """A built-in task: its generator and the words a report uses for it."""

    name: str
    make: Callable[..., PairDataset]
    metric: str
    #: one sentence: what the clean and corrupted prompts are
    prompts: str
    #: what the metric reads, e.g. "the logit difference (IO minus S) at the last position"
    target: str


def _induction(model, n, seed, block_len):
    info = model.info
    bl = block_len or min(16, (info.n_ctx - 1) // 2)
    if bl < 2 or 1 + 2 * bl > info.n_ctx:
        raise bad_value("block_len", bl, f"2 <= block_len with 1 + 2 * block_len <= n_ctx={info.n_ctx} of "
                        f"{model.model_id}", f"use block_len={max(2, (info.n_ctx - 1) // 2)} or less")
    return induction_pairs(n, block_len=bl, vocab_size=info.d_vocab, bos=info.bos_token_id,
                           exclude=_special_ids(model), seed=seed)


def _ioi(model, n, seed, block_len):
    return ioi_pairs(n, vocab_size=model.info.d_vocab, bos=model.info.bos_token_id, exclude=_special_ids(model),
                     seed=seed)


def _successor(model, n, seed, block_len):
    return successor_pairs(n, vocab_size=model.info.d_vocab, bos=model.info.bos_token_id, run_len=block_len or 6,
                           exclude=_special_ids(model), seed=seed)


def _special_ids(model) -> list[int]:
    tok = getattr(model, "tokenizer", None)
    return sorted(set(tok.all_special_ids)) if tok is not None else []


TASK_SPECS: dict[str, TaskSpec] = {
    "induction": TaskSpec(
        "induction", _induction, "logit_diff",
        "clean [BOS] A A (a block of random tokens, repeated), corrupted [BOS] B C (two unrelated blocks)",
        "the logit difference (clean next token minus corrupted next token) on the repeated half"),
    "ioi": TaskSpec(
        "ioi", _ioi, "logit_diff",
        "clean: a fixed template with names A and B and the subject B repeated (IOI-style, in token space); "
        "corrupted: the repeated name replaced by a third name C (Wang et al.'s ABC)",
        "the logit difference (indirect object A minus subject B) at the last position"),
    "successor": TaskSpec(
        "successor", _successor, "logit_diff",
        "clean: a run of consecutive tokens in token-id order; corrupted: non-consecutive tokens",
        "the logit difference (the clean token's successor minus the corrupted token's successor) along the run"),
}
TASKS: tuple[str, ...] = tuple(TASK_SPECS)


def task_spec(data: PairDataset) -> TaskSpec | None:
    """The built-in spec of a dataset made by a generator (``None`` for a file or Python task)."""
    return TASK_SPECS.get(data.task) if data.can_generate else None


def make_task(task: str, model, *, n_prompts: int | None = None, seed: int = 0, block_len: int | None = None,
              metric: str | Callable | None = None) -> PairDataset:
    """The prompts of ``task`` for ``model`` (a :class:`~circuitry.models.ModelAdapter`), checked up front.

    Parameters
    ----------
    task
        A built-in task (``"induction"``, ``"ioi"``, ``"successor"``; see :data:`TASK_SPECS`) or the path of a
        ``.jsonl`` task file of token-id or text pairs (docs/tasks.md). Text pairs are tokenized with the
        model's tokenizer, the model's BOS (``load_model(..., bos=...)``) prepended.
    n_prompts
        Number of pairs to generate (default 32). A task file sets its own count: passing ``n_prompts`` with a
        file is refused, so that a result never claims a count it did not use.
    seed
        Seed of the generator (unused by a task file, whose pairs are fixed).
    block_len
        The induction block length (default 16, capped to fit the context) or the successor run length
        (default 6).
    metric
        The metric the pairs will be measured with (default: the task's); the targets it reads must be present
        (:func:`~circuitry.prompts.check_task`).

    Raises
    ------
    InputError
        An unknown task, too few prompts, a malformed file (with its line), ids outside the vocabulary,
        prompts longer than the context, missing answers or foils for ``metric``, or no corruption at all.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise bad_value("seed", seed, "an integer in [0, 2**63)", "use --seed 0")
    if task in TASK_SPECS:
        n = DEFAULT_N_PROMPTS if n_prompts is None else n_prompts
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_PROMPTS:
            raise InputError(f"n_prompts={n!r} is invalid: expected an integer in [2, {MAX_PROMPTS}] (statistics "
                             "over prompts need at least 2). Fix: use --n-prompts 32")
        spec = TASK_SPECS[task]
        data = spec.make(model, n, seed, block_len)
        return check_task(data, model, metric=metric or spec.metric)
    path = Path(task)
    if path.suffix == ".jsonl" or path.exists():
        if n_prompts is not None:
            raise InputError(f"n_prompts={n_prompts} applies to built-in tasks; the task file {task!r} holds its own "
                             "pairs. Fix: drop --n-prompts (or cut the file to the pairs you want)")
        if block_len is not None:
            raise InputError(f"block_len={block_len} applies to built-in tasks, not to the task file {task!r}")
        tok = getattr(model, "tokenizer", None)
        data = PairDataset.from_jsonl(path, tokenizer=tok, bos=model.info.bos_token_id)
        return check_task(data, model, metric=metric or data.metric or "logit_diff")
    raise InputError(f"task={task!r} is unknown; expected one of {TASKS} or a .jsonl task file (docs/tasks.md)")
