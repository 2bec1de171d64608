"""Latent tasks for the decodability analysis: synthetic ones for any vocabulary, or your own from a file.

A prompt shows ``k`` in-context examples of one latent task ``f`` and a query:
``[BOS] x_1 f(x_1) x_2 f(x_2) ... x_k f(x_k) x_q``; the model should predict ``f(x_q)`` next. The task
is the label the decodability probe tries to read from the representation at ``x_q``.

Synthetic **mapping** tasks over the symbols ``s_0 .. s_{m-1}`` (the token ids other than BOS, in id
order; at most :data:`MAX_SYMBOLS`), each a bijection so every task has the same distribution of ``x``
and of ``y`` (only the *relation* between them tells the tasks apart):

* ``copy``: ``f(s_i) = s_i``;
* ``successor``: ``f(s_i) = s_{i+1}`` (cyclic);
* ``reverse``: ``f(s_i) = s_{m-1-i}`` (the order reversed);
* ``permutation``: a fixed random permutation of the symbols (seeded by ``PERMUTATION_SEED``).

Synthetic **concept** tasks ``topic_a`` .. ``topic_d`` (:data:`TOPIC_TASKS`): four disjoint, seeded sets
of :data:`TOPIC_SIZE` symbols (the latent concept, as the topics of the zoo corpus and the latent
concepts of Xie et al. 2022); every ``x`` (the examples' and the query) is a *neutral* symbol outside all
four sets, ``y`` a random member of the task's set, and any member counts as a correct answer. The
query alone says nothing about the task, so decodability at ``k = 0`` is at chance by construction.

Queries: ``"novel"`` (default): ``x_q`` differs from every ``x_j`` of the examples, so only inferring
``f`` predicts ``f(x_q)``; ``"seen"``: ``x_q`` is one of the ``x_j``, so copying what followed it
(induction) predicts ``f(x_q)`` whatever the task.

Your own tasks: a JSONL file, one prompt per line,
``{"task": "antonym", "pairs": [["hot", " cold"], ...], "query": "big", "answer": " small"}`` with
strings (tokenized with the model's tokenizer, no BOS, concatenated) or token ids; ``answer`` may be a
list of acceptable answers (the first token of each counts); the first ``k`` pairs are used for ``k``
examples, so give at least ``max(n_examples)`` pairs per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from circuitry.errors import InputError, bad_value

if TYPE_CHECKING:
    from circuitry.models import ModelAdapter

SYNTHETIC_TASKS = ("copy", "successor", "reverse", "permutation")
TOPIC_TASKS = ("topic_a", "topic_b", "topic_c", "topic_d")
TOPIC_SIZE = 8
TOPIC_SEED = 2024
MAX_SYMBOLS = 512
PERMUTATION_SEED = 12345
Query = Literal["novel", "seen"]
"""``"novel"``: the query is not among the examples' inputs; ``"seen"``: it is one of them."""


@dataclass(frozen=True)
class TaskPrompt:
    """One prompt: its task label, its example pairs and query as token-id lists, and the correct answers
    (the first token id of each acceptable answer)."""

    task: str
    pairs: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    query: tuple[int, ...]
    answers: tuple[int, ...]

    def tokens(self, k: int, bos: int | None) -> list[int]:
        """``[BOS] x_1 y_1 .. x_k y_k x_q`` as token ids."""
        out = [] if bos is None else [bos]
        for x, y in self.pairs[:k]:
            out += [*x, *y]
        return out + list(self.query)


def symbols(model: "ModelAdapter") -> list[int]:
    """The token ids used as symbols: every id but BOS, in order, at most :data:`MAX_SYMBOLS`."""
    bos = model.info.bos_token_id
    return [t for t in range(model.info.d_vocab) if t != bos][:MAX_SYMBOLS]


def task_map(task: str, syms: Sequence[int]) -> dict[int, int]:
    """The bijection ``x -> f(x)`` of a synthetic task on ``syms``."""
    m = len(syms)
    if task == "copy":
        idx = np.arange(m)
    elif task == "successor":
        idx = (np.arange(m) + 1) % m
    elif task == "reverse":
        idx = np.arange(m)[::-1]
    elif task == "permutation":
        idx = np.random.default_rng(PERMUTATION_SEED).permutation(m)
    else:
        raise bad_value("tasks", task, f"one of {SYNTHETIC_TASKS + TOPIC_TASKS} (or a JSONL file of your own tasks)")
    return {int(syms[i]): int(syms[j]) for i, j in enumerate(idx)}


def topic_sets(syms: Sequence[int]) -> tuple[dict[str, list[int]], list[int]]:
    """The symbol set of each concept task and the neutral symbols (in none of them)."""
    if len(syms) < 2 * len(TOPIC_TASKS) * TOPIC_SIZE:
        raise bad_value("tasks", "topic tasks", f"a vocabulary of at least {2 * len(TOPIC_TASKS) * TOPIC_SIZE} symbols")
    order = np.random.default_rng(TOPIC_SEED).permutation(len(syms))
    sets = {t: sorted(int(syms[j]) for j in order[i * TOPIC_SIZE:(i + 1) * TOPIC_SIZE])
            for i, t in enumerate(TOPIC_TASKS)}
    return sets, sorted(int(syms[j]) for j in order[len(TOPIC_TASKS) * TOPIC_SIZE:])

def synthetic_prompts(model: "ModelAdapter", *, tasks: Sequence[str] = SYNTHETIC_TASKS, n_per_task: int = 64,
                      max_examples: int = 16, query: Query = "novel", seed: int = 0) -> list[TaskPrompt]:
    """``n_per_task`` prompts per task with ``max_examples`` example pairs each (distinct inputs) and a query.

    Raises
    ------
    InputError
        Unknown task or query mode, or prompts longer than the model's context, before any work.
    """
    if query not in ("novel", "seen"):
        raise bad_value("query", query, "'novel' or 'seen'")
    if isinstance(n_per_task, bool) or not isinstance(n_per_task, int) or n_per_task < 5:
        raise bad_value("n_prompts", n_per_task, "an integer >= 5 per task (the probe is cross-validated)")
    syms = symbols(model)
    length = (model.info.bos_token_id is not None) + 2 * max_examples + 1
    if length > model.info.n_ctx:
        raise bad_value("n_examples", max_examples, f"at most {(model.info.n_ctx - 2) // 2} examples "
                        f"(prompts of {length} tokens exceed n_ctx={model.info.n_ctx})")
    if max_examples + 1 > len(syms):
        raise bad_value("n_examples", max_examples, f"fewer than the {len(syms)} symbols")
    topics, neutral = topic_sets(syms) if set(tasks) & set(TOPIC_TASKS) else ({}, syms)
    maps = {t: task_map(t, syms) for t in tasks if t not in TOPIC_TASKS}
    rng = np.random.default_rng(seed)
    out = []
    for t in tasks:
        inputs = neutral if t in topics else syms
        if max_examples + 1 > len(inputs):
            raise bad_value("n_examples", max_examples, f"fewer than the {len(inputs)} input symbols of {t}")
        for _ in range(n_per_task):
            xs = [int(inputs[i]) for i in rng.choice(len(inputs), size=max_examples + 1, replace=False)]
            q = xs[-1] if query == "novel" or max_examples == 0 else xs[int(rng.integers(max_examples))]
            if t in topics:
                ys = [int(v) for v in rng.choice(topics[t], size=max_examples)]
                out.append(TaskPrompt(task=t, pairs=tuple(((x,), (y,)) for x, y in zip(xs, ys)), query=(q,),
                                      answers=tuple(topics[t])))
            else:
                f = maps[t]
                out.append(TaskPrompt(task=t, pairs=tuple(((x,), (f[x],)) for x in xs[:-1]), query=(q,),
                                      answers=(f[q],)))
    return out


#: the most prompts a task file may hold (the limit of --n-prompts times a few tasks: memory and time, every
#: prompt is a forward pass per k)
MAX_FILE_PROMPTS = 100_000

_FIX = ('one JSON object per line, {"task": "antonym", "pairs": [["hot", " cold"], ...], "query": "big", '
        '"answer": " small"} (docs/tutorials/decodability.md)')


def _line_model():
    """The pydantic model of one task-file line (built on first use: pydantic stays out of the import)."""
    global _LINE
    if _LINE is None:
        from typing import Annotated, Union

        from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

        TokenIds = Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=1)]
        Item = Union[Annotated[StrictStr, Field(min_length=1)], Annotated[StrictInt, Field(ge=0)], TokenIds]

        class TaskLine(BaseModel):
            """One prompt of a decodability task file: text or token ids for every x, y, query and answer."""

            model_config = ConfigDict(extra="forbid", frozen=True)
            task: Annotated[StrictStr, Field(min_length=1, max_length=200)]
            pairs: list[Annotated[list[Item], Field(min_length=2, max_length=2)]]
            query: Item
            answer: Union[Item, Annotated[list[Item], Field(min_length=1)]]

        _LINE = TaskLine
    return _LINE


_LINE = None


def _ids(value, tokenizer, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    if isinstance(value, str):
        if tokenizer is None:
            raise InputError(f"{where}: {value!r} is text but the model has no tokenizer. Fix: give token ids")
        ids = tuple(tokenizer(value, add_special_tokens=False)["input_ids"])
        if not ids:
            raise InputError(f"{where}: {value!r} tokenizes to no tokens")
        return ids
    raise InputError(f"{where}: {value!r} is neither text nor token ids")


def read_task_file(path: str | Path, model: "ModelAdapter", *, max_examples: int) -> list[TaskPrompt]:
    """Prompts from a JSONL task file (module docstring), checked against the model before any work.

    The file is read a line at a time (UTF-8, at most :data:`MAX_FILE_PROMPTS` prompts); each line is
    validated by type before use.

    Raises
    ------
    InputError
        Missing file, a line that is not UTF-8, bad JSON (or nested too deep), a missing field or one of the
        wrong type, fewer than ``max_examples`` pairs, ids outside the vocabulary, a prompt longer than the
        context, or fewer than 2 tasks; :class:`~circuitry.errors.LimitError` past :data:`MAX_FILE_PROMPTS`.
    """
    from pydantic import ValidationError

    from circuitry.errors import field_error
    from circuitry.io import iter_jsonl

    path = Path(path)
    if not path.is_file():
        raise bad_value("tasks", str(path), "a JSONL file of prompts, or built-in task names",
                        f"built-in tasks are {', '.join(SYNTHETIC_TASKS)}")
    out = []
    bos = model.info.bos_token_id
    line_model = _line_model()
    for where, rec in iter_jsonl(path, what="prompt", max_records=MAX_FILE_PROMPTS, fix=_FIX):
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected a JSON object with task, pairs, query and answer, got "
                             f"{type(rec).__name__}. Fix: {_FIX}")
        missing = {"task", "pairs", "query", "answer"} - set(rec)
        if missing:
            raise InputError(f"{where}: missing field(s) {sorted(missing)}; each line needs task, pairs, query, answer")
        try:
            line = line_model.model_validate(rec)
        except ValidationError as exc:
            raise field_error(where, exc, _FIX) from None
        pairs = line.pairs
        if len(pairs) < max_examples:
            raise InputError(f"{where}: 'pairs' must be a list of at least {max_examples} [x, y] pairs "
                             "(the largest number of examples asked for)")
        ans = line.answer if isinstance(line.answer, list) and not all(
            isinstance(a, int) for a in line.answer) else [line.answer]
        tp = TaskPrompt(task=line.task,
                        pairs=tuple((_ids(x, model.tokenizer, where), _ids(y, model.tokenizer, where)) for x, y in pairs),
                        query=_ids(line.query, model.tokenizer, where),
                        answers=tuple(_ids(a, model.tokenizer, where)[0] for a in ans))
        ids = tp.tokens(max_examples, bos) + list(tp.answers)
        if min(ids) < 0 or max(ids) >= model.info.d_vocab:
            raise InputError(f"{where}: token id outside [0, {model.info.d_vocab})")
        if len(ids) - 1 > model.info.n_ctx:
            raise InputError(f"{where}: the prompt with {max_examples} examples has {len(ids) - 1} tokens, more than "
                             f"n_ctx={model.info.n_ctx}. Fix: fewer examples (--n-examples)")
        out.append(tp)
    if len({p.task for p in out}) < 2:
        raise InputError(f"{path}: needs prompts of at least 2 tasks to decode the task from")
    return out
