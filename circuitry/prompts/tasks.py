"""Named tasks: build a prompt-pair dataset for a loaded model from a task name or a JSONL file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from circuitry.errors import InputError
from circuitry.prompts.induction import induction_pairs
from circuitry.prompts.pairs import PairDataset

TaskName = Literal["induction"]
TASKS = ("induction",)


def make_task(task: str, model, *, n_prompts: int = 32, seed: int = 0, block_len: int | None = None) -> PairDataset:
    """The prompts of ``task`` for ``model`` (a :class:`~circuitry.models.ModelAdapter`).

    ``task`` is ``"induction"`` (repeated random tokens, see :func:`induction_pairs`; the block
    length defaults to 16, capped so that ``1 + 2 * block_len`` fits the context) or a path to a
    JSONL file of prompt pairs (:meth:`PairDataset.from_jsonl`).
    """
    if n_prompts < 2:
        raise InputError(f"n_prompts={n_prompts} is too small: statistics over prompts need at least 2 "
                         "(use --n-prompts 32)")
    if task == "induction":
        info = model.info
        bl = block_len or min(16, (info.n_ctx - 1) // 2)
        if 1 + 2 * bl > info.n_ctx:
            raise InputError(f"block_len={bl} needs {1 + 2 * bl} tokens but {model.model_id} has n_ctx={info.n_ctx}")
        bos = info.bos_token_id
        exclude = []
        tok = getattr(model, "tokenizer", None)
        if tok is not None:
            exclude = sorted(set(tok.all_special_ids))
        return induction_pairs(n_prompts, block_len=bl, vocab_size=info.d_vocab, bos=bos, exclude=exclude, seed=seed)
    path = Path(task)
    if path.suffix == ".jsonl" or path.exists():
        data = PairDataset.from_jsonl(path)
        if len(data) < 2:
            raise InputError(f"prompts file {task!r} holds {len(data)} pair(s); statistics need at least 2")
        return data
    raise InputError(f"task={task!r} is unknown; expected one of {TASKS} or a .jsonl file of prompt pairs")
