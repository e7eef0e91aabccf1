"""A small, pandas-free table that prints as aligned text and renders as HTML in notebooks."""
from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["Table", "fmt_bytes", "fmt_count"]


def fmt_count(n: float) -> str:
    """An integer with thousands separators: 266200 -> '266,200'."""
    return f"{int(n):,}"


def fmt_bytes(n: float) -> str:
    """A byte count in B, KB or MB (1 KB = 1000 B): 1066543 -> '1.07 MB'."""
    if n < 1000:
        return f"{int(n)} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} KB"
    return f"{n / 1_000_000:.2f} MB"


def _cell(value: Any, spec: str | None) -> str:
    """Format one cell: `spec` is a format spec ('.3f', ',') or a callable's name in `_FORMATTERS`."""
    if value is None:
        return "–"
    if spec in _FORMATTERS:
        return _FORMATTERS[spec](value)
    if spec:
        return format(value, spec)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_FORMATTERS = {"bytes": fmt_bytes, "count": fmt_count}


class Table:
    """Rows of values under named columns; `formats` maps a column to a format spec, 'bytes' or 'count'."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "",
                 formats: dict[str, str] | None = None, note: str = ""):
        self.columns = list(columns)
        self.rows = [tuple(r) for r in rows]
        for r in self.rows:
            if len(r) != len(self.columns):
                raise ValueError(f"row {r!r} has {len(r)} cells; the table has {len(self.columns)} columns")
        self.title = title
        self.formats = dict(formats or {})
        self.note = note

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (dict(zip(self.columns, r)) for r in self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Row `i` as a dict column -> value."""
        return dict(zip(self.columns, self.rows[i]))

    def column(self, name: str) -> list[Any]:
        """All values of one column."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns are {self.columns}")
        j = self.columns.index(name)
        return [r[j] for r in self.rows]

    def _cells(self) -> list[list[str]]:
        return [[_cell(v, self.formats.get(c)) for c, v in zip(self.columns, r)] for r in self.rows]

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(self.columns)]
        def line(values: Sequence[str]) -> str:
            return "  ".join(v.ljust(w) if j == 0 else v.rjust(w) for j, (v, w) in enumerate(zip(values, widths)))
        out = [self.title] if self.title else []
        out += [line(self.columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
        if self.note:
            out.append(self.note)
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f'<td style="text-align:{"left" if j == 0 else "right"}">{esc(v)}</td>'
                             for j, v in enumerate(row)) + "</tr>"
            for row in self._cells())
        caption = f"<caption>{esc(self.title)}</caption>" if self.title else ""
        note = f"<p><small>{esc(self.note)}</small></p>" if self.note else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
