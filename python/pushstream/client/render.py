"""Output of the command line: tables drawn with box-drawing characters (like
``kamu tail``), CSV, JSON and NDJSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson
from rich.cells import cell_len

OUTPUTS = ("table", "csv", "json", "ndjson")

#: Cell value → text in a table: line breaks and tabs would break the grid.
_CELL_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text.translate(_CELL_ESCAPES)


def box_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A grid with a header row; widths are terminal cells (wide characters count twice)."""
    header = [_cell(c) for c in columns]
    body = [[_cell(v) for v in row] for row in rows]
    widths = [cell_len(h) for h in header]
    for row in body:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], cell_len(text))

    def line(left: str, middle: str, right: str) -> str:
        return left + middle.join("─" * (w + 2) for w in widths) + right

    def cells(values: list[str]) -> str:
        return "│" + "│".join(f" {v}{' ' * (w - cell_len(v))} " for v, w in zip(values, widths, strict=True)) + "│"

    out = [line("┌", "┬", "┐"), cells(header), line("├", "┼", "┤")]
    out.extend(cells(row) for row in body)
    out.append(line("└", "┴", "┘"))
    return "\n".join(out) + "\n"


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns without lines, for lists (``sources list``)."""
    header = [c.upper() for c in columns]
    body = [[_cell(v) for v in row] for row in rows]
    widths = [cell_len(h) for h in header]
    for row in body:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], cell_len(text))
    out = []
    for values in [header, *body]:
        padded = [v + " " * (w - cell_len(v)) for v, w in zip(values, widths, strict=True)]
        out.append("  ".join(padded).rstrip())
    return "\n".join(out) + "\n"


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header row (RFC 4180 quoting where needed; null is an empty field)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue()


def records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def json_text(value: Any) -> str:
    """Indented JSON and a line break."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n"


def ndjson_text(items: Sequence[Any]) -> str:
    """One compact JSON document per line."""
    return "".join(orjson.dumps(item).decode() + "\n" for item in items)


def rows_text(output: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows in one of :data:`OUTPUTS`."""
    if output == "csv":
        return csv_text(columns, rows)
    if output == "json":
        return json_text(records(columns, rows))
    if output == "ndjson":
        return ndjson_text(records(columns, rows))
    return box_table(columns, rows)
