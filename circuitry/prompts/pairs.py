"""Clean/corrupted prompt pairs: the typed dataset every patching analysis runs on.

A pair holds token ids (and optionally the texts they came from). Metric targets are per position:
``positions[i]`` is a position whose next-token prediction the metric reads, with the correct token
``answers[i]`` and the foil ``foils[i]`` (for the logit difference). Clean and corrupted prompts must
tokenize to the same length (Zhang & Nanda 2024: symmetric token replacement); unequal pairs are
rejected up front with an error naming the pair.

Different pairs may have different lengths. The dataset then stacks into ``[n, max_len]`` tensors
**right-padded** with :data:`PAD_ID`, and each pair's metric positions index its own tokens. On a causal
model a position never reads a later one, so the padding changes nothing at a real position: the metric,
every patch and every edge score of a pair equal those of the pair run alone (tested). What averages over
prompts (mean ablations) averages over real positions only (:meth:`PairDataset.mask`); a bidirectional
model (tracr's) refuses unequal lengths (:func:`circuitry.prompts.check_task`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, ValidationError, model_validator

from circuitry.errors import InputError
from circuitry.io import atomic_write_text
from circuitry.provenance import Frozen


def _input_error(name: str, exc: ValidationError) -> InputError:
    """pydantic's ValidationError as circuitry's InputError (first problem, without pydantic's prefix)."""
    err = exc.errors()[0]
    msg = str(err.get("msg", exc)).removeprefix("Value error, ")
    loc = ".".join(str(x) for x in err.get("loc", ()))
    return InputError(f"{name}{' field ' + loc if loc else ''}: {msg}")


class _Validated(Frozen):
    """Constructing with bad values raises :class:`InputError` (not pydantic's ValidationError)."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _input_error(type(self).__name__, exc) from None


class PromptPair(_Validated):
    """One clean/corrupted pair with per-position answer and foil tokens."""

    clean: tuple[int, ...]
    corrupted: tuple[int, ...]
    positions: tuple[int, ...] = ()
    answers: tuple[int, ...] = ()
    foils: tuple[int, ...] = ()
    clean_text: str | None = None
    corrupted_text: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "PromptPair":
        if len(self.answers) not in (0, len(self.positions)) or len(self.foils) not in (0, len(self.positions)):
            raise ValueError(
                f"positions ({len(self.positions)}), answers ({len(self.answers)}) and foils "
                f"({len(self.foils)}) must have equal lengths"
            )
        return self


#: the token id right-padding fills with (any id would do: on a causal model no real position reads it)
PAD_ID = 0


class PairDataset(_Validated):
    """A list of :class:`PromptPair` s with the recipe that made them.

    Pairs of one length stack into ``[n, pos]`` tensors; pairs of different lengths are right-padded to
    the longest (:data:`PAD_ID`; :meth:`mask` tells the real positions).
    """

    task: str
    pairs: tuple[PromptPair, ...]
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    #: the task's default metric (``None``: the caller's choice, ``logit_diff`` by default)
    metric: str | None = None
    #: the file the pairs were read from (``None``: generated or built in Python); a file task cannot
    #: generate fresh prompts
    source: str | None = None

    @model_validator(mode="after")
    def _lengths(self) -> "PairDataset":
        if not self.pairs:
            raise InputError("a PairDataset needs at least one pair; got none")
        for i, p in enumerate(self.pairs):
            if len(p.clean) != len(p.corrupted):
                raise InputError(
                    f"pair {i}: clean and corrupted prompts tokenize to {len(p.clean)} and {len(p.corrupted)} "
                    "tokens; pairs must have equal length (use a corruption of the same template)"
                )
            if not p.clean:
                raise InputError(f"pair {i}: the prompts are empty; a pair needs at least one token")
            bad = [q for q in p.positions if not 0 <= q < len(p.clean)]
            if bad:
                raise InputError(f"pair {i}: metric positions {bad} lie outside the prompt (length {len(p.clean)})")
        return self

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def seq_len(self) -> int:
        """The longest prompt's length (every prompt's, when they share one)."""
        return max(self.lengths)

    @property
    def lengths(self) -> tuple[int, ...]:
        """Each pair's token count."""
        return tuple(len(p.clean) for p in self.pairs)

    @property
    def length_words(self) -> str:
        """``"12 tokens"``, or ``"7 to 12 tokens (right-padded)"`` when the lengths differ."""
        lo, hi = min(self.lengths), max(self.lengths)
        return f"{hi} tokens" if lo == hi else f"{lo} to {hi} tokens (right-padded)"

    @property
    def padded(self) -> bool:
        """Whether the pairs have different lengths (and so stack right-padded)."""
        return len(set(self.lengths)) > 1

    def mask(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """``[n, pos]`` booleans: ``True`` at each pair's real tokens, ``False`` at the right padding."""
        lengths = torch.tensor(self.lengths, device=device)
        return torch.arange(self.seq_len, device=device)[None, :] < lengths[:, None]

    def _stack(self, field: str, device) -> torch.Tensor:
        n = self.seq_len
        return torch.tensor([getattr(p, field) + (PAD_ID,) * (n - len(p.clean)) for p in self.pairs],
                            dtype=torch.long, device=device)

    def clean_ids(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """``[n, pos]`` clean token ids (right-padded with :data:`PAD_ID` when lengths differ)."""
        return self._stack("clean", device)

    def corrupted_ids(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """``[n, pos]`` corrupted token ids (right-padded with :data:`PAD_ID` when lengths differ)."""
        return self._stack("corrupted", device)

    def targets(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(positions, answers, foils)``, each ``[n, k]``: the metric targets of every pair.

        Pairs without answers (or foils) give ``-1`` there, which the metrics that read them refuse
        (:func:`circuitry.prompts.check_task` says so up front, naming the metric).

        Raises :class:`InputError` when pairs have different numbers of targets."""
        ks = {len(p.positions) for p in self.pairs}
        if len(ks) != 1 or 0 in ks:
            raise InputError(f"pairs have {sorted(ks)} metric positions; a metric needs the same k >= 1 for all")
        k = ks.pop()
        pos = torch.tensor([p.positions for p in self.pairs], dtype=torch.long, device=device)
        ans = torch.tensor([p.answers or (-1,) * k for p in self.pairs], dtype=torch.long, device=device)
        foil = torch.tensor([p.foils or (-1,) * k for p in self.pairs], dtype=torch.long, device=device)
        return pos, ans, foil

    @property
    def can_generate(self) -> bool:
        """Whether fresh prompts of this task can be drawn (a built-in generator made it, not a file)."""
        from circuitry.prompts.tasks import TASKS

        return self.source is None and self.task in TASKS

    def subset(self, idx) -> "PairDataset":
        """A dataset of the pairs at ``idx`` (e.g. a bootstrap or a train/test split)."""
        return self.model_copy(update={"pairs": tuple(self.pairs[i] for i in idx)})

    def sha256(self) -> str:
        """Hash of the dataset's content, not of where it was read from (recorded in every result's provenance)."""
        return hashlib.sha256(self.model_dump_json(exclude={"source"}).encode()).hexdigest()

    # ----------------------------------------------------------------- JSONL
    def to_jsonl(self, path: str | Path) -> Path:
        """Write one header line (task, params, seed) and one line per pair, atomically."""
        head = {"task": self.task, "params": self.params, "seed": self.seed, "metric": self.metric}
        lines = [json.dumps({"header": head})] + [p.model_dump_json() for p in self.pairs]
        return atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def from_jsonl(cls, path: str | Path, *, tokenizer=None, bos: int | None = None) -> "PairDataset":
        """Read a task file of token-id (or, with ``tokenizer``, text) pairs: see
        :func:`circuitry.prompts.files.read_pairs` and docs/tasks.md. The header line is optional.

        Raises :class:`InputError` naming the line of a malformed record."""
        from circuitry.prompts.files import read_pairs

        return read_pairs(path, tokenizer=tokenizer, bos=bos)
