"""Text tasks in words for the zoo's King James models: induction on repeated sentences and an IOI-style task.

Both are written as **text task files** (docs/tasks.md): JSONL lines with the prompts as text and each
answer/foil one token of the model's tokenizer, so ``circuitry analyze --task FILE.jsonl`` and ``discover``
read them as they read any text task. The sentences come from the held-out books of the corpus (Joshua and
Acts, never trained on; :mod:`circuitry.zoo.text_corpus`), the names from the training text.

* ``kjv-induction`` -- induction on repeated natural sentences, the text form of the built-in ``induction``
  task (Olsson et al. 2022; :func:`circuitry.prompts.induction.induction_pairs`): clean ``" A A"`` (a
  sentence of held-out prose said twice), corrupted ``" B C"`` (two other sentences of the same token length).
  Targets: every position of the second copy whose next token the first copy shows; answer the clean next
  token, foil the corrupted next token.
* ``kjv-ioi`` -- indirect-object identification (Wang et al. 2022) in KJV English: ``"Then Moses and Aaron
  went into the tent, and Aaron gave the bread to"`` -> ``" Moses"`` (answer) vs ``" Aaron"`` (foil); corrupted:
  the repeated name replaced by a third (their ABC distribution), ``"... and Joshua gave the bread to"``.

* ``kjv-prose`` -- windows of held-out prose for the in-context-learning score (Olsson et al. 2022): clean
  ``[BOS]`` + 511 tokens of Joshua or Acts, corrupted another such window; targets every position (answer the
  next token), so the ``loss`` metric is the held-out loss and ``icl_score`` reads tokens 50 and 500. Written as
  token ids (a window cut from running text need not start at a word), with the text beside them.

Build a file with ``python -m circuitry.prompts.text_tasks kjv-induction --out kjv_induction.jsonl``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from circuitry.errors import InputError, bad_value
from circuitry.io import atomic_write_text

#: Person names of the King James Bible that are one token (with the leading space) of the shipped tokenizer.
KJV_NAMES = ("Moses", "Aaron", "David", "Saul", "Joab", "Abraham", "Isaac", "Jacob", "Samuel", "Joseph", "Solomon",
             "Absalom", "Jonathan", "Abner", "Laban", "Esau", "Pharaoh", "Balaam", "Jeremiah", "Elijah", "Elisha",
             "Daniel", "Peter", "John", "Judah", "Benjamin", "Reuben", "Levi", "Gideon", "Samson", "Eli")
#: IOI templates in the style of the corpus: ``{a}`` and ``{b}`` introduced, ``{s}`` (the subject) repeated.
IOI_TEMPLATES = (
    "Then {a} and {b} went into the tent, and {s} gave the bread to",
    "And {a} and {b} came unto the city; and {s} spake unto",
    "When {a} and {b} had eaten together, {s} gave the cup to",
    "And {a} and {b} went out into the field: and {s} said unto",
    "Now {a} and {b} dwelt in the land, and {s} sent a gift to",
    "And it came to pass, that {a} and {b} met in the way, and {s} blessed",
)
TEXT_TASKS = ("kjv-induction", "kjv-ioi", "kjv-prose")
_SENTENCE = re.compile(r"(?<=[.?!])\s+")


def _one_token_text(tokenizer, tid: int) -> str | None:
    """The text of token ``tid`` if it re-tokenizes to exactly ``[tid]`` (else ``None``)."""
    text = tokenizer.decode([tid])
    return text if tokenizer(text, add_special_tokens=False)["input_ids"] == [tid] else None


def heldout_sentences(tokenizer, text: str, *, min_tokens: int, max_tokens: int) -> dict[int, list[str]]:
    """The sentences of ``text`` (split after ``.``, ``?``, ``!``) by token length of ``" " + sentence``."""
    out: dict[int, list[str]] = {}
    for line in text.splitlines():
        for s in _SENTENCE.split(line.strip()):
            n = len(tokenizer(" " + s, add_special_tokens=False)["input_ids"])
            if min_tokens <= n <= max_tokens:
                out.setdefault(n, []).append(s)
    return out


def sentence_induction_lines(tokenizer, text: str, *, n: int = 32, seed: int = 0, min_tokens: int = 12,
                             max_tokens: int = 24) -> list[dict[str, Any]]:
    """``n`` text pairs clean ``" A A"`` / corrupted ``" B C"`` from the sentences of ``text`` (module docstring).

    ``A``, ``B`` and ``C`` are distinct sentences of one token length (``min_tokens..max_tokens``, drawn with
    ``seed``). Positions count the text's tokens (docs/tasks.md): ``L + j`` for ``j = 0 .. L - 2`` with ``L``
    the sentence length; a foil that equals the answer is replaced as in the built-in task (the token after the
    aligned position of the corrupted first sentence). A triple whose tokens do not round-trip as single-token
    strings, or whose concatenation tokenizes differently from its parts, is skipped.
    """
    from circuitry.prompts.induction import _foil

    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise bad_value("n", n, "an integer >= 2", "use n=32")
    by_len = {k: v for k, v in heldout_sentences(tokenizer, text, min_tokens=min_tokens, max_tokens=max_tokens).items()
              if len(v) >= 3}
    if not by_len:
        raise InputError(f"no token length in {min_tokens}..{max_tokens} has three sentences in the text. "
                         "Fix: widen min_tokens..max_tokens")
    lengths = sorted(by_len)
    weights = np.array([len(by_len[k]) for k in lengths], dtype=float)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 31])))
    enc = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]
    lines: list[dict[str, Any]] = []
    for _ in range(50 * n):
        if len(lines) == n:
            break
        L = lengths[rng.choice(len(lengths), p=weights / weights.sum())]
        a, b, c = (by_len[L][i] for i in rng.choice(len(by_len[L]), size=3, replace=False))
        clean_text, corrupted_text = f" {a} {a}", f" {b} {c}"
        clean, corrupted = enc(clean_text), enc(corrupted_text)
        if clean != enc(" " + a) * 2 or corrupted != enc(" " + b) + enc(" " + c) or len(clean) != 2 * L:
            continue
        positions = [L + j for j in range(L - 1)]
        answers = [_one_token_text(tokenizer, clean[p + 1]) for p in positions]
        foils = [_one_token_text(tokenizer, _foil(corrupted, p, L, clean[p + 1])) for p in positions]
        if any(t is None for t in answers + foils):
            continue
        lines.append({"clean": clean_text, "corrupted": corrupted_text, "positions": positions, "answers": answers,
                      "foils": foils, "meta": {"sentence_tokens": L}})
    if len(lines) < n:
        raise InputError(f"only {len(lines)} of n={n} sentence triples tokenize cleanly. Fix: a smaller n")
    return lines


def ioi_lines(tokenizer, *, n: int = 32, seed: int = 0, names: tuple[str, ...] = KJV_NAMES,
              templates: tuple[str, ...] = IOI_TEMPLATES) -> list[dict[str, Any]]:
    """``n`` IOI text pairs (Wang et al. 2022): clean ``{a} and {b} ... {b} ... to`` -> answer ``" a"``, foil ``" b"``;
    corrupted: the repeated ``{b}`` replaced by a third name ``{c}`` (ABC). Half the pairs name the indirect
    object first (ABBA), half second (BABA), so neither position predicts the answer.

    Raises
    ------
    InputError
        A name that is not one token (with its leading space) of ``tokenizer``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise bad_value("n", n, "an integer >= 2", "use n=32")
    multi = [x for x in names if len(tokenizer(" " + x, add_special_tokens=False)["input_ids"]) != 1]
    if multi:
        raise bad_value("names", multi, "names that are one token each with a leading space",
                        "drop them or use the model's own tokenizer")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 37])))
    lines = []
    for i in range(n):
        t = templates[i % len(templates)]
        io, s, c = (names[k] for k in rng.choice(len(names), size=3, replace=False))
        first, second = (io, s) if i % 2 == 0 else (s, io)
        lines.append({"clean": t.format(a=first, b=second, s=s), "corrupted": t.format(a=first, b=second, s=c),
                      "answer": " " + io, "foil": " " + s, "meta": {"template": t, "order": "ABBA" if i % 2 == 0
                                                                    else "BABA"}})
    return lines


def prose_lines(tokenizer, stream: np.ndarray, *, n: int = 16, seed: int = 0, seq_len: int = 512,
                stride: int = 256) -> list[dict[str, Any]]:
    """``n`` token-id pairs of held-out prose windows (``[BOS]`` + ``seq_len - 1`` tokens of ``stream``, starts
    every ``stride`` tokens, ``n`` of them drawn with ``seed``); corrupted: the next drawn window."""
    from circuitry.zoo.text_corpus import heldout_windows

    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise bad_value("n", n, "an integer >= 2", "use n=16")
    win = heldout_windows(stream, seq_len=seq_len, stride=stride)
    if n > len(win):
        raise bad_value("n", n, f"at most {len(win)} windows of {seq_len} tokens every {stride} tokens",
                        f"use n={len(win)} or less")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 41])))
    pick = sorted(rng.choice(len(win), size=n, replace=False).tolist())
    lines = []
    for i, k in enumerate(pick):
        clean, corrupted = win[k].tolist(), win[pick[(i + 1) % n]].tolist()
        lines.append({"clean": clean, "corrupted": corrupted, "positions": list(range(seq_len - 1)),
                      "answers": clean[1:], "clean_text": tokenizer.decode(clean[1:]),
                      "corrupted_text": tokenizer.decode(corrupted[1:]), "meta": {"window_start": k * stride}})
    return lines


def build_text_task(task: str, *, n: int = 32, seed: int = 0) -> list[dict[str, Any]]:
    """The lines of text task ``task`` (:data:`TEXT_TASKS`) for the shipped KJV tokenizer, header first."""
    from circuitry.zoo.text_corpus import load_tokenizer, tokenizer_dir

    if task not in TEXT_TASKS:
        raise bad_value("task", task, f"one of {TEXT_TASKS}")
    tok = load_tokenizer(tokenizer_dir())
    if task == "kjv-prose":
        from circuitry.zoo.text_eval import heldout_tokens

        body = prose_lines(tok, heldout_tokens(), n=n, seed=seed)
        params = {"source": "held-out KJV prose (Joshua, Acts)", "seq_len": 512, "stride": 256}
    elif task == "kjv-induction":
        held = (tokenizer_dir() / "heldout.txt").read_text(encoding="utf-8")
        body = sentence_induction_lines(tok, held, n=n, seed=seed)
        params = {"source": "held-out KJV prose (Joshua, Acts)", "corrupt": "both"}
    else:
        body = ioi_lines(tok, n=n, seed=seed)
        params = {"names": list(KJV_NAMES), "templates": list(IOI_TEMPLATES), "corruption": "ABC"}
    header = {"header": {"task": task, "params": params, "seed": seed, "metric": "logit_diff"}}
    return [header, *body]


def write_text_task(task: str, path: str | Path, *, n: int = 32, seed: int = 0) -> Path:
    """Write text task ``task`` to ``path`` as JSONL (see :func:`build_text_task`)."""
    lines = build_text_task(task, n=n, seed=seed)
    return atomic_write_text(path, "".join(json.dumps(rec) + "\n" for rec in lines))


def main(argv: list[str] | None = None) -> int:
    """``python -m circuitry.prompts.text_tasks {kjv-induction,kjv-ioi} --out FILE [--n N] [--seed S]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m circuitry.prompts.text_tasks",
                                description="Write a text task file for the zoo's King James models.")
    p.add_argument("task", choices=TEXT_TASKS)
    p.add_argument("--out", required=True, help="the .jsonl file to write")
    p.add_argument("--n", type=int, default=None, help="pairs (default 32; kjv-prose 16)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    args = p.parse_args(argv)
    n = args.n if args.n is not None else 16 if args.task == "kjv-prose" else 32
    print(f"wrote {write_text_task(args.task, args.out, n=n, seed=args.seed)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
