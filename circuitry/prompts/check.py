"""Check a task against a model and a metric before any work starts."""

from __future__ import annotations

from typing import Callable

from circuitry.errors import InputError
from circuitry.metrics import METRIC_NEEDS
from circuitry.prompts.pairs import PairDataset

MIN_PAIRS = 2


def _name(data: PairDataset) -> str:
    return f"task file {data.source!r}" if data.source else f"task {data.task!r}"


def _pair_where(data: PairDataset, i: int) -> str:
    """``file:line`` of pair ``i`` of a task file (the line a user edits), else ``task 'x', pair i``."""
    if data.source:
        try:
            lines = [n for n, line in enumerate(open(data.source, encoding="utf-8"), start=1)
                     if line.strip() and not line.lstrip().startswith('{"header"')]
            return f"{data.source}:{lines[i]}"
        except (OSError, IndexError, UnicodeDecodeError):
            pass
    return f"{_name(data)}, pair {i}"


def check_task(data: PairDataset, model, *, metric: str | Callable | None = None) -> PairDataset:
    """Raise :class:`InputError` when ``data`` cannot give a meaningful measurement on ``model``.

    Checked, in order: at least two pairs (statistics over prompts need two); pairs of different lengths
    (right-padded) only on a causal model; every token id, answer and
    foil inside the vocabulary (``[0, d_vocab)``); prompts no longer than the context; the targets that
    ``metric`` reads present in every pair (``logit_diff`` needs answers and foils, ``loss`` and
    ``answer_prob`` answers, ``kl`` none); for ``logit_diff``, an answer that differs from its foil
    somewhere; and a corrupted prompt that differs from its clean prompt in at least one pair.

    Returns ``data`` unchanged, so the call can wrap a constructor.
    """
    info = model.info
    where = _name(data)
    if len(data) < MIN_PAIRS:
        raise InputError(f"{where} holds {len(data)} prompt pair(s); statistics over prompts need at least "
                         f"{MIN_PAIRS} (32 or more for tight intervals)")
    if data.padded and not getattr(info, "causal", True):
        raise InputError(f"{where}: pairs have different lengths ({min(data.lengths)} to {max(data.lengths)} tokens), "
                         f"which circuitry right-pads; {model.model_id} attends in both directions, so the padding "
                         "would change what real positions see. Fix: pairs of one length for this model (split the "
                         "file by length)")
    for i, p in enumerate(data.pairs):
        for field in ("clean", "corrupted", "answers", "foils"):
            vals = getattr(p, field)
            bound = info.d_vocab if field in ("clean", "corrupted") else info.n_outputs  # answers index the logits
            bad = [(j, t) for j, t in enumerate(vals) if not 0 <= t < bound]
            if bad and bound != info.d_vocab:
                raise InputError(f"{_pair_where(data, i)}: {field} id(s) {[t for _, t in bad[:5]]} at index(es) "
                                 f"{[j for j, _ in bad[:5]]} lie outside the {bound} outputs of {model.model_id} "
                                 f"(its logits are not its input vocabulary). Fix: ids 0..{bound - 1}")
            if bad:
                fix = ("token ids of this model's tokenizer, or text pairs (docs/tasks.md)" if getattr(
                    model, "tokenizer", None) is not None else f"ids 0..{info.d_vocab - 1} (this model has no "
                    "tokenizer, so text pairs are not an option)")
                raise InputError(f"{_pair_where(data, i)}: {field} token id(s) {[t for _, t in bad[:5]]} at index(es) "
                                 f"{[j for j, _ in bad[:5]]} lie outside the vocabulary of {model.model_id} (ids "
                                 f"0..{info.d_vocab - 1}). Fix: {fix}")
    if data.seq_len > info.n_ctx:
        raise InputError(f"{where}: prompts have {data.seq_len} tokens but {model.model_id} reads at most "
                         f"n_ctx={info.n_ctx}. Fix: shorter prompts")
    name = metric if isinstance(metric, str) else None
    for field in METRIC_NEEDS.get(name or "", ()):
        missing = [i for i, p in enumerate(data.pairs) if not getattr(p, field)]
        if missing:
            lines = ", ".join(_pair_where(data, i) for i in missing[:5])
            raise InputError(f"{where}: metric={name!r} needs {field} in every pair; {lines} "
                             f"{'has' if len(missing) == 1 else 'have'} none. Fix: add \"{field}\": [token ids] "
                             f"(token-id pairs) or \"{field[:-1]}\": \"text\" (text pairs) to each line "
                             "(docs/tasks.md), or pass --metric kl, which reads only the positions")
    if name == "logit_diff" and all(p.answers == p.foils for p in data.pairs):
        raise InputError(f"{where}: every answer equals its foil, so the logit difference is 0 on every prompt. "
                         "Fix: the foil is the token the corrupted prompt favours (docs/tasks.md)")
    if all(p.clean == p.corrupted for p in data.pairs):
        raise InputError(f"{where}: every corrupted prompt equals its clean prompt, so patching can change "
                         "nothing. Fix: corrupt the part of the prompt the behaviour depends on")
    return data
