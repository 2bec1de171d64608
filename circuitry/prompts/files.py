"""Task files: JSONL prompt pairs of token ids or of text (docs/tasks.md is the reference).

One JSON object per line; an optional first line ``{"header": {"task": ..., "params": ..., "seed": ...}}``.
A pair line is either **token ids**::

    {"clean": [0, 5, 9, 5], "corrupted": [0, 7, 9, 5], "positions": [3], "answers": [9], "foils": [2]}

or **text**, tokenized with the model's tokenizer::

    {"clean": "When Mary and John went out, John gave it to", "corrupted": "When Mary and John went out, Anna gave it to",
     "answer": " Mary", "foil": " John"}

``positions`` are the positions whose next-token prediction the metric reads; they default to the last
token. Text pairs take ``answer``/``foil`` (one string each, for the last position) or ``answers``/
``foils`` (lists, one per position); each answer and foil must be exactly one token. A line that is not
a pair raises :class:`~circuitry.errors.InputError` naming the file and the line number, before any
model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from circuitry.errors import InputError, field_error
from circuitry.prompts.pairs import PairDataset, PromptPair

_ID_KEYS = {"clean", "corrupted", "positions", "answers", "foils", "clean_text", "corrupted_text", "meta"}
_TEXT_KEYS = {"clean", "corrupted", "positions", "answer", "foil", "answers", "foils", "meta"}
MAX_LINE_CHARS = 1_000_000
#: the most pairs a task file may hold: the built-in tasks' limit (:data:`circuitry.prompts.tasks.MAX_PROMPTS`),
#: beyond which a file is refused at that line instead of being read whole
MAX_FILE_PAIRS = 100_000
_FIX = "one JSON object per line with 'clean' and 'corrupted' (docs/tasks.md)"

Position = Annotated[StrictInt, Field(ge=0)]


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskHeader(_Line):
    """The optional first line of a task file, ``{"header": {...}}``."""

    task: StrictStr | None = Field(default=None, min_length=1, max_length=200, description="the task's name")
    params: dict[StrictStr, Any] = Field(default_factory=dict, description="how the pairs were made (kept as is)")
    seed: Annotated[StrictInt, Field(ge=0)] | None = Field(default=None, description="the seed that made them")
    metric: Literal["logit_diff", "answer_prob", "loss", "kl"] | None = Field(
        default=None, description="the task's default metric")


class IdPairLine(_Line):
    """A token-id pair line: prompts, positions, answers and foils as lists of integers."""

    clean: list[StrictInt]
    corrupted: list[StrictInt]
    positions: list[StrictInt] | None = None
    answers: list[StrictInt] = Field(default_factory=list)
    foils: list[StrictInt] = Field(default_factory=list)
    clean_text: StrictStr | None = None
    corrupted_text: StrictStr | None = None
    meta: dict[StrictStr, Any] = Field(default_factory=dict)


class TextPairLine(_Line):
    """A text pair line: prompts as text, answers and foils as single-token strings."""

    clean: StrictStr
    corrupted: StrictStr
    positions: list[Position] | None = None
    answer: StrictStr | None = None
    foil: StrictStr | None = None
    answers: list[StrictStr] | None = None
    foils: list[StrictStr] | None = None
    meta: dict[StrictStr, Any] = Field(default_factory=dict)


def _where(path: Path, n: int) -> str:
    return f"{path}:{n}"


def _tokenize(tokenizer, text: str, *, bos: int | None, where: str, what: str) -> list[int]:
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise InputError(f"{where}: {what} {text!r} tokenizes to no tokens; give a non-empty prompt")
    return ([bos] if bos is not None else []) + ids


def _one_token(tokenizer, text: Any, *, where: str, what: str) -> int:
    if not isinstance(text, str):
        raise InputError(f"{where}: {what} must be a string in a text pair, got {text!r}")
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        pieces = [tokenizer.decode([i]) for i in ids]
        raise InputError(f"{where}: {what} {text!r} is {len(ids)} tokens {pieces}; answers and foils must be one "
                         "token each. Fix: use a single-token word (often with a leading space, ' Mary'), or give "
                         "token ids")
    return ids[0]


def _text_pair(rec: dict, tokenizer, *, bos: int | None, where: str) -> PromptPair:
    extra = set(rec) - _TEXT_KEYS
    if extra:
        raise InputError(f"{where}: unknown field(s) {sorted(extra)} in a text pair; expected {sorted(_TEXT_KEYS)}")
    if not isinstance(rec.get("corrupted"), str):
        raise InputError(f"{where}: 'corrupted' must be text like 'clean' (got {rec.get('corrupted')!r})")
    try:
        line = TextPairLine.model_validate(rec)
    except ValidationError as exc:
        raise field_error(where, exc, "in a text pair, answer/foil are strings, answers/foils lists of strings "
                          "(one per position), positions a list of token positions >= 0 (docs/tasks.md)") from None
    rec = line.model_dump(exclude_unset=True)
    if tokenizer is None:
        raise InputError(f"{where}: this model has no tokenizer; give token ids or add tokenizer files (a text pair "
                         "needs the model's tokenizer). Fix: write the pairs as token ids (docs/tasks.md), or load a "
                         "Hugging Face directory that holds its tokenizer files")
    clean = _tokenize(tokenizer, rec["clean"], bos=bos, where=where, what="clean prompt")
    corrupted = _tokenize(tokenizer, rec["corrupted"], bos=bos, where=where, what="corrupted prompt")
    if ("answer" in rec or "foil" in rec) and ("answers" in rec or "foils" in rec):
        raise InputError(f"{where}: give 'answer'/'foil' (one target) or 'answers'/'foils' (lists), not both")
    answers = [rec["answer"]] if "answer" in rec else list(rec.get("answers", []))
    foils = [rec["foil"]] if "foil" in rec else list(rec.get("foils", []))
    positions = rec.get("positions")
    if positions is None:
        positions = [len(clean) - 1] * max(1, len(answers), len(foils))
    elif bos is not None:  # positions count the text's tokens; shift past the BOS circuitry prepends
        positions = [p + 1 for p in positions]
    ans = [_one_token(tokenizer, a, where=where, what=f"answer {i}") for i, a in enumerate(answers)]
    foil = [_one_token(tokenizer, f, where=where, what=f"foil {i}") for i, f in enumerate(foils)]
    return PromptPair(clean=tuple(clean), corrupted=tuple(corrupted), positions=tuple(positions),
                      answers=tuple(ans), foils=tuple(foil), clean_text=rec["clean"], corrupted_text=rec["corrupted"],
                      meta=rec.get("meta", {}))


def _id_pair(rec: dict, *, where: str) -> PromptPair:
    extra = set(rec) - _ID_KEYS
    if extra:
        import difflib

        hints = [f"{x!r} -> {difflib.get_close_matches(x, _ID_KEYS, n=1)[0]!r}" for x in sorted(extra)
                 if difflib.get_close_matches(x, _ID_KEYS, n=1)]
        raise InputError(f"{where}: unknown field(s) {sorted(extra)} in a token-id pair; expected {sorted(_ID_KEYS)}"
                         + (f". Did you mean {', '.join(hints)}? (token-id pairs take lists: answers/foils)"
                            if hints else ""))
    try:
        IdPairLine.model_validate(rec)
    except ValidationError as exc:
        raise field_error(where, exc, "in a token-id pair, clean, corrupted, positions, answers and foils are lists "
                          "of integers (answers/foils one per position; docs/tasks.md)") from None
    for key in ("clean", "corrupted", "positions", "answers", "foils"):
        v = rec.get(key, [])
        neg = [x for x in v if x < 0]
        if neg:
            raise InputError(f"{where}: '{key}' holds negative value(s) {neg[:5]}; token ids and positions are >= 0")
    if not rec["clean"]:
        raise InputError(f"{where}: 'clean' is empty; a prompt needs at least one token")
    rec = dict(rec)
    if "positions" not in rec:
        k = max(1, len(rec.get("answers", [])), len(rec.get("foils", [])))
        rec["positions"] = [len(rec["clean"]) - 1] * k
    try:
        return PromptPair(**rec)
    except InputError as exc:
        raise InputError(f"{where}: {str(exc).removeprefix('PromptPair: ')}") from None


def count_lines(path: Path) -> int:
    """Non-empty lines of a file, counted in 1 MiB chunks (no line is held in memory)."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(2**20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def read_pairs(path: str | Path, *, tokenizer=None, bos: int | None = None) -> PairDataset:
    """Read a task file of token-id or text pairs (see the module docstring).

    The file is read one line at a time; every line is validated by type (:class:`TaskHeader`,
    :class:`TextPairLine`, or a token-id pair) before anything else uses it.

    Parameters
    ----------
    path
        A ``.jsonl`` file.
    tokenizer
        The model's tokenizer (a Hugging Face tokenizer); needed only for text pairs.
    bos
        Token id prepended to every *text* prompt (``None``: none). Token-id pairs are taken as written.

    Raises
    ------
    InputError
        A missing or empty file, a line that is not UTF-8, not JSON or not a pair (with its line number), a field
        of the wrong type (a string where a list is expected, ...), text pairs without a tokenizer, answers or
        foils that are not single tokens, a clean and corrupted prompt of unequal lengths (pairs of
        different lengths are fine: they are right-padded, see :class:`~circuitry.prompts.PairDataset`). :class:`~circuitry.errors.LimitError` past
        :data:`MAX_FILE_PAIRS` pairs.
    """
    from circuitry.io import iter_jsonl

    path = Path(path)
    if not path.is_file():
        from circuitry.errors import missing_task_file

        raise missing_task_file(path)
    n_lines = count_lines(path)
    if n_lines > MAX_FILE_PAIRS + 1:  # + the header: refused before any line is parsed
        from circuitry.errors import LimitError

        raise LimitError(f"task file {str(path)!r} has {n_lines} lines, beyond the limit of {MAX_FILE_PAIRS} pairs "
                         "(memory and time, the limit of --n-prompts: every pair is held in memory and run through "
                         "the model). Fix: split the file")
    head = TaskHeader(task=path.stem)
    pairs: list[PromptPair] = []
    for where, rec in iter_jsonl(path, what="prompt pair", max_records=MAX_FILE_PAIRS + 1, fix=_FIX):
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected a JSON object with 'clean' and 'corrupted', got "
                             f"{type(rec).__name__}")
        if "header" in rec:
            if pairs or not isinstance(rec["header"], dict) or len(rec) != 1:
                raise InputError(f"{where}: a header line must come first and hold only an object, "
                                 '{"header": {"task": ..., "metric": ...}}')
            try:
                head = TaskHeader.model_validate({"task": path.stem, **rec["header"]})
            except ValidationError as exc:
                raise field_error(where, exc, "a header holds task (text), metric (logit_diff, answer_prob, loss or "
                                  "kl), seed (an integer) and params (an object)") from None
            continue
        if len(pairs) >= MAX_FILE_PAIRS:
            from circuitry.errors import LimitError

            raise LimitError(f"{where}: the task file holds more than {MAX_FILE_PAIRS} pairs, beyond the limit "
                             f"{MAX_FILE_PAIRS} (memory and time, the limit of --n-prompts). Fix: split the file")
        missing = [k for k in ("clean", "corrupted") if k not in rec]
        if missing:
            raise InputError(f"{where}: missing field(s) {missing}; every pair needs 'clean' and 'corrupted'")
        pair = _text_pair(rec, tokenizer, bos=bos, where=where) if isinstance(rec["clean"], str) else \
            _id_pair(rec, where=where)
        if len(pair.clean) != len(pair.corrupted):
            raise InputError(f"{where}: clean and corrupted prompts have {len(pair.clean)} and {len(pair.corrupted)} "
                             "tokens; a pair must have equal length. Fix: corrupt with a prompt of the same template "
                             "(same number of tokens)")
        pairs.append(pair)
    if not pairs:
        raise InputError(f"task file {str(path)!r} holds no prompt pairs. Fix: one JSON object per line with "
                         "'clean' and 'corrupted' (docs/tasks.md)")
    return PairDataset(task=head.task or path.stem, pairs=tuple(pairs), params=dict(head.params), seed=head.seed,
                       metric=head.metric, source=str(path))
