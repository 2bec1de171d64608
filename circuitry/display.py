"""How results show themselves: a short text table (``repr``) and a compact HTML table (``_repr_html_``,
what Jupyter draws), both built from one :class:`Table`.

A result with thousands of sites (every head at every position, every edge of a graph) shows its few largest
rows by |effect| with their statistics (share of the gap, interval, adjusted p-value, the test) and a line
saying how many rows are not shown; the full data stay in the result (``to_records()``, ``to_frame()``, the
fields). A result class opts in by deriving from :class:`Displayed` and returning its :class:`Table` from
``_table()``; nothing here knows any result class, so every layer can use it.

>>> t = Table("patching", ("site", "share"), [("L0H3", 0.95), ("L1H0", -0.36), ("L1H2", 0.2)], k=2)
>>> print(t.text())
patching
site   share
L0H3   0.950
L1H0  -0.360
(1 more row)
"""

from __future__ import annotations

import html
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

TOP_ROWS = 10
"""Rows a table shows by default (the largest |effect| first); the rest are counted in one line."""
TEXT_NOTE_LINES = 10
"""Lines the notes take at most in the text table (each wrapped at :data:`TEXT_NOTE` characters, at most two
lines per note); the notes that do not fit are counted in the last line."""
TEXT_CELL = 48
"""Characters of one cell in the text table (longer text ends in '...'; the HTML table shows it whole)."""
TEXT_NOTE = 120
"""Characters of one line of a note in the text table."""

Cell = Any  # str, int, float or None ("–")


def fmt(x: Cell, digits: int = 3) -> str:
    """A cell as text: ``None`` and NaN as ``–``, floats to ``digits`` significant places in plain or
    scientific notation (p-values like ``3.4e-44`` keep their exponent), booleans as yes/no.

    >>> fmt(0.95), fmt(3.4e-44), fmt(None), fmt(True), fmt(1234.5)
    ('0.950', '3.4e-44', '–', 'yes', '1234.5')
    """
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 10 ** 5):
            return f"{x:.2g}"
        return f"{x:.{digits}f}" if abs(x) < 100 else f"{x:.1f}"
    return str(x)


def interval(low: float | None, high: float | None) -> str:
    """``[low, high]``, or ``–`` when either end is unbounded (``None``)."""
    return "–" if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"


def spread(mean: float | None, sd: float | None) -> str:
    """``mean ± sd`` (a null distribution, a baseline), each cell as :func:`fmt` writes it.

    >>> spread(0.25, 0.0412)
    '0.250 ± 0.041'
    """
    return f"{fmt(mean)} ± {fmt(sd)}"


def percent(confidence_level: float, what: str = "CI") -> str:
    """A confidence level as the header of its interval column.

    >>> percent(0.95), percent(0.999), percent(0.9, "of splits")
    ('95% CI', '99.9% CI', '90% of splits')
    """
    return f"{100 * confidence_level:.3g}% {what}"


def series_rows(n: int, marked: Sequence[int] = (), *, ends: int = 2) -> list[int]:
    """The indices of a time series to show, in order: the first and last ``ends`` points and the ``marked``
    ones (e.g. a phase change's window; out-of-range marks are ignored).

    >>> series_rows(20, marked=[7, 9])
    [0, 1, 7, 9, 18, 19]
    """
    keep = set(range(min(ends, n))) | set(range(max(n - ends, 0), n)) | {i for i in marked if 0 <= i < n}
    return sorted(keep)


def ranked(rows: Sequence[Any], key: Callable[[Any], float | None], *, absolute: bool = True) -> list[Any]:
    """``rows`` by decreasing ``|key(row)|`` (``absolute=False``: decreasing ``key(row)``; NaN and ``None``
    last), ties in their order.

    >>> ranked([-3, 1, 2], key=float), ranked([-3, 1, 2], key=float, absolute=False)
    ([-3, 2, 1], [2, 1, -3])
    """
    def size(r):
        v = key(r)
        return math.inf if v is None or v != v else -abs(v) if absolute else -v

    return sorted(rows, key=size)


@dataclass(frozen=True)
class Table:
    """A titled table with a few lines of notes, showing the first ``k`` of its rows.

    ``rows`` are the rows in the order to show (rank them first, e.g. with :func:`ranked`); ``total`` the
    number of rows the result holds when only some were passed (default ``len(rows)``); ``noun`` what a
    row is, for the "N more rows" line."""

    title: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Cell]]
    notes: Sequence[str] = ()
    k: int = TOP_ROWS
    total: int | None = None
    noun: str = "row"
    footer: Sequence[str] = field(default_factory=tuple)
    #: lines the notes may take in the text table (the HTML shows every note whole)
    note_lines: int = TEXT_NOTE_LINES

    def _shown(self) -> tuple[list[list[str]], int]:
        shown = [[fmt(c) for c in r] for r in list(self.rows)[: self.k]]
        total = len(self.rows) if self.total is None else self.total
        return shown, total - len(shown)

    def _more(self, n: int) -> str:
        return f"({n} more {self.noun}{'' if n == 1 else 's'})"

    def text(self) -> str:
        """The plain-text table: at most ``1 + note_lines + 1 + k + 1 + len(footer)`` lines, each cell cut at
        :data:`TEXT_CELL` characters, each note wrapped at :data:`TEXT_NOTE` (two lines at most)."""
        shown, more = self._shown()
        cut = [[_cut(c, TEXT_CELL) for c in r] for r in shown]
        widths = [max([len(h)] + [len(r[i]) for r in cut]) for i, h in enumerate(self.columns)]
        numeric = [all(_is_number(r[i]) for r in cut) and bool(cut) for i in range(len(self.columns))]

        def line(cells):
            return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

        out = [self.title, *_wrapped(list(self.notes), self.note_lines)]
        if self.columns and (cut or not self.rows):
            out.append(line(self.columns))
            out += [line(r) for r in cut]
        if more > 0:
            out.append(self._more(more))
        out += [_cut(f, TEXT_NOTE) for f in self.footer]
        return "\n".join(out)

    def html(self) -> str:
        """The HTML table (every string escaped): title, notes, header, the shown rows, "N more rows"."""
        shown, more = self._shown()
        e = html.escape
        parts = [f'<div class="circuitry-result"><p style="margin:0"><b>{e(self.title)}</b></p>']
        parts += [f'<p style="margin:0;font-size:90%">{e(n)}</p>' for n in self.notes]
        if self.columns and shown:
            parts.append('<table style="font-size:90%"><thead><tr>'
                         + "".join(f"<th>{e(c)}</th>" for c in self.columns) + "</tr></thead><tbody>")
            for r in shown:
                parts.append("<tr>" + "".join(
                    f'<td style="text-align:{"right" if _is_number(c) else "left"}">{e(c)}</td>' for c in r)
                    + "</tr>")
            parts.append("</tbody></table>")
        if more > 0:
            parts.append(f'<p style="margin:0;font-size:90%"><i>{e(self._more(more))}</i></p>')
        parts += [f'<p style="margin:0;font-size:90%">{e(f)}</p>' for f in self.footer]
        return "".join(parts) + "</div>"


class Displayed:
    """Mixin for a result class: ``repr`` (and ``str``, unless the class defines its own) is :meth:`Table.text`
    of ``self._table()``, Jupyter's display :meth:`Table.html`. Put it first among the bases
    (``class R(Displayed, Frozen)``) so it replaces pydantic's field-by-field repr and str, which print every
    number of the result."""

    def _table(self) -> Table:  # pragma: no cover - every subclass defines it
        raise TypeError(f"{type(self).__name__} derives from Displayed but defines no _table()")

    def _shown_table(self) -> Table:
        # results are frozen, so the table is built once per object (Jupyter asks for the text and the HTML,
        # and a table's statistics over thousands of sites take seconds); dropped with the object
        key = id(self)
        table = _TABLES.get(key)
        if table is None:
            table = _TABLES[key] = self._table()
            weakref.finalize(self, _TABLES.pop, key, None)
        return table

    def __repr__(self) -> str:
        return self._shown_table().text()

    def __str__(self) -> str:  # pydantic's str() prints every field too; a class may define its own summary
        return self._shown_table().text()

    def _repr_html_(self) -> str:
        return self._shown_table().html()


_TABLES: dict[int, Table] = {}


def _wrapped(notes: list[str], limit: int) -> list[str]:
    """``notes`` wrapped at :data:`TEXT_NOTE` characters, two lines each at most, ``limit`` lines in all (the last
    one counting the notes left out)."""
    import textwrap

    out: list[str] = []
    for i, note in enumerate(notes):
        lines = textwrap.wrap(note, TEXT_NOTE, subsequent_indent="  ") or [""]
        if len(lines) > 2:
            lines = [lines[0], _cut(lines[1] + " " + " ".join(lines[2:]), TEXT_NOTE)]
        room = limit - len(out) - (i < len(notes) - 1)
        if len(lines) > room:
            out.append(f"... and {len(notes) - i} more notes")
            break
        out += lines
    return out


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _is_number(s: str) -> bool:
    if s in ("–", "inf", "-inf"):
        return True
    try:
        float(s)
    except ValueError:
        return False
    return True
