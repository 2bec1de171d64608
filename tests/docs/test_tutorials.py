"""Every number README.md and docs/tutorials/*.md quote comes from the command the doc shows.

How a doc marks what it quotes (HTML comments, invisible when rendered):

* ``<!-- output: CMD -->`` on the line before a fenced block: the block is what ``CMD`` printed.
  ``<!-- output: CMD => FILE -->``: what ``CMD`` wrote to ``FILE`` (relative to where it ran, e.g.
  ``circuitry-results/report.md``). Each line of the block must match a line of the output, in order (other
  output lines may come between); ``...`` in a doc line stands for any text. Text must be equal (runs of
  spaces count as one); numbers are compared as numbers, at the doc's precision: the run's value rounded
  to the doc's decimals must be the doc's value.
* ``<!-- numbers: CMD -->`` ... ``<!-- /numbers -->`` around prose or a table: every number in between
  must restate a number of a block marked ``output: CMD`` in the same doc (the same value, or that value
  rounded to fewer decimals). Numbers inside words (``L0H3``, ``top-1``, ``2-layer``) are not numbers.
* ``<!-- output, slow: CMD -->``: a command too slow for CI (minutes); its blocks and regions are checked
  only with ``CIRCUITRY_DOCS_SLOW=1`` (run it so before changing such a doc or the code behind it).
* ``CMD`` must appear verbatim in a code block of the doc (``$ `` prompts and ``\\`` line breaks aside),
  so the doc shows exactly the command whose numbers it quotes.

Each distinct command runs once per session (``tests/docs/runs.py``: a process-wide cache, so docs sharing a
command, and ``tests/test_examples.py``, share its run), as a subprocess in a temporary folder, with no
wall-clock timeout. The comparison is exact, with no tolerance: every quoted command is deterministic at
its printed precision (fixed seeds and named random streams; the examples set one torch thread; ``analyze``
and ``discover`` print the same digits with 1 and 2 threads, measured). A value that starts to depend on the
thread count should fail here, not be hidden by a tolerance.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.docs.runs import REPO, run

DOCS = [REPO / "README.md", *sorted((REPO / "docs" / "tutorials").glob("*.md"))]

NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
                    r"(?![\w])(?!-[A-Za-z])")  # not in L0H3, top-1, 2-layer
OUTPUT = re.compile(r"^<!--\s*output(?P<slow>,\s*slow)?:\s*(?P<cmd>.+?)(?:\s*=>\s*(?P<file>\S+))?\s*-->\s*$")
SLOW = os.environ.get("CIRCUITRY_DOCS_SLOW") == "1"
NUMBERS_OPEN = re.compile(r"^<!--\s*numbers:\s*(?P<cmd>.+?)\s*-->\s*$")
NUMBERS_CLOSE = re.compile(r"^<!--\s*/numbers\s*-->\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass
class Block:
    """A quoted output: the doc lines (number, text) of a fenced block and where the output comes from."""

    command: str
    file: str | None
    marker_line: int
    lines: list[tuple[int, str]]
    slow: bool = False


@dataclass
class Prose:
    command: str
    numbers: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Doc:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    prose: list[Prose] = field(default_factory=list)
    code: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.path.relative_to(REPO))


def normalise(text: str) -> str:
    return " ".join(text.replace("\u2212", "-").split())


def parse(path: Path) -> Doc:
    doc = Doc(path)
    lines = path.read_text().splitlines()
    i, prose, pending = 0, None, None
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            j = i + 1
            while j < len(lines) and not FENCE.match(lines[j]):
                j += 1
            body = [(k + 1, lines[k]) for k in range(i + 1, j)]
            doc.code.append(normalise(" ".join(t.rstrip("\\").removeprefix("$ ") for _, t in body)))
            if pending is not None:
                pending.lines = [(n, t) for n, t in body if t.strip()]
                doc.blocks.append(pending)
                pending = None
            i = j + 1
            continue
        if m := OUTPUT.match(line.strip()):
            pending = Block(m["cmd"].strip(), m["file"], i + 1, [], slow=bool(m["slow"]))
        elif m := NUMBERS_OPEN.match(line.strip()):
            prose = Prose(m["cmd"].strip())
            doc.prose.append(prose)
        elif NUMBERS_CLOSE.match(line.strip()):
            prose = None
        elif prose is not None and not line.lstrip().startswith("<!--"):
            prose.numbers += [(i + 1, n) for n in NUMBER.findall(line.replace("\u2212", "-"))]
        i += 1
    assert pending is None, f"{doc.name}:{pending.marker_line}: an output marker without a fenced block after it"
    assert prose is None, f"{doc.name}: a <!-- numbers: ... --> region is not closed"
    return doc


PARSED = [parse(p) for p in DOCS]
MARKED = [d for d in PARSED if d.blocks]


def decimals(number: str) -> int:
    frac = number.split("e")[0].split("E")[0]
    return len(frac.split(".")[1]) if "." in frac else 0


def value(number: str) -> float:
    return float(number.replace(",", ""))


def same(doc_number: str, run_number: str) -> bool:
    """The run's number, rounded as the doc rounds it, is the doc's number."""
    d, r = value(doc_number), value(run_number)
    if "e" in doc_number.lower():  # scientific: the doc's significant digits
        digits = len(doc_number.lower().split("e")[0].replace("-", "").replace(".", "").lstrip("0")) or 1
        return f"{d:.{digits - 1}e}" == f"{r:.{digits - 1}e}"
    return abs(d - r) <= 0.5 * 10 ** -decimals(doc_number) * (1 + 1e-9)


def template(doc_line: str, *, literal: bool = False) -> tuple[re.Pattern, list[str]]:
    """A regex for ``doc_line``: its text literal, ``...`` any text, each number a group matching any number
    (or, with ``literal``, the doc's digits themselves: a ``...`` then cannot swallow the wrong number)."""
    text = normalise(doc_line)
    parts, numbers, pos = [], [], 0
    for m in NUMBER.finditer(text):
        parts.append(re.escape(text[pos:m.start()]))
        parts.append("(" + (re.escape(m.group()) if literal else
                            r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|inf|nan") + ")")
        numbers.append(m.group())
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    pattern = "".join(parts).replace(re.escape("..."), ".*?")
    return re.compile(pattern), numbers


def shows(doc: Doc, command: str) -> bool:
    """``command`` is one whole command of a code block of ``doc`` (alone or in a ``&&``/``;`` chain)."""
    pattern = re.compile(r"(?:^|[\s;&|])" + re.escape(normalise(command)) + r"(?:$|[\s;&|])")
    return any(pattern.search(code) for code in doc.code)


def check_block(doc: Doc, block: Block) -> tuple[list[str], list[str]]:
    """Mismatches of one quoted block against its run, and the run's numbers it quoted (for the prose)."""
    r = run(block.command)
    where = f"{doc.name}:{block.marker_line}"
    if r.returncode not in (0, 1):
        return [f"{where}: `{block.command}` exited {r.returncode}: {r.stderr[-2000:]}"], []
    try:
        out = [normalise(t) for t in r.text(block.file).splitlines()]
    except OSError as exc:
        return [f"{where}: `{block.command}` did not write {block.file}: {exc}"], []
    errors, quoted, at = [], [], 0
    for n, line in block.lines:
        if normalise(line) in ("...", ""):
            continue
        literal, doc_numbers = template(line, literal=True)
        hit = next(((k, m) for k in range(at, len(out)) if (m := literal.fullmatch(out[k]))), None)
        if hit is not None:  # the doc's digits as printed
            quoted += list(hit[1].groups())
            at = hit[0] + 1
            continue
        pattern, _ = template(line)
        candidates = [(k, m) for k in range(at, len(out)) if (m := pattern.fullmatch(out[k]))]
        if not candidates:
            errors.append(f"{doc.name}:{n}: no line of the output of `{block.command}`"
                          f"{' => ' + block.file if block.file else ''} (after line {at}) matches:\n  doc: {line.strip()}")
            continue
        exact = [(k, m) for k, m in candidates if all(same(d, g) for d, g in zip(doc_numbers, m.groups()))]
        k, m = (exact or candidates)[0]
        if not exact:
            diffs = ", ".join(f"doc {d} vs run {g}" for d, g in zip(doc_numbers, m.groups()) if not same(d, g))
            errors.append(f"{doc.name}:{n}: {diffs}\n  doc: {line.strip()}\n  run: {out[k]}")
        quoted += list(m.groups())
        at = k + 1
    return errors, quoted


@pytest.mark.parametrize("doc", MARKED, ids=[d.name for d in MARKED])
def test_quoted_numbers_come_from_the_command(doc):
    errors, quoted = [], {}
    for block in doc.blocks:
        if not shows(doc, block.command):
            errors.append(f"{doc.name}:{block.marker_line}: the doc does not show `{block.command}` in a code block")
        if block.slow and not SLOW:
            continue
        e, q = check_block(doc, block)
        errors += e
        quoted.setdefault(block.command, []).extend(q)
    for prose in doc.prose:
        shown = quoted.get(prose.command)
        if shown is None and not SLOW and all(b.slow for b in doc.blocks if b.command == prose.command):
            continue
        if shown is None:
            errors.append(f"{doc.name}: a numbers region names `{prose.command}`, which no output block quotes")
            continue
        for n, number in prose.numbers:
            if not any(same(number, s) for s in shown):
                near = min(shown, key=lambda s: abs(value(s) - value(number)), default="none")
                errors.append(f"{doc.name}:{n}: {number} is not in the quoted output of `{prose.command}` "
                              f"(nearest run value {near})")
    assert not errors, "\n".join(errors)


def test_every_tutorial_marks_what_it_quotes():
    unmarked = [d.name for d in PARSED if not d.blocks]
    assert not unmarked, f"docs without an output marker: {unmarked}"
