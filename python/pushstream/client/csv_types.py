"""Typed CSV for ``pushstream ingest``: which CSV columns hold which data type, and
reading their text as JSON values of that type before the rows are sent.

A CSV file carries only text, while the same data as NDJSON carries numbers,
booleans and nulls. So that both give the same rows, a CSV value of a typed column
is sent as the JSON value it stands for (``"49.28"`` → ``49.28``, ``"true"`` →
``true``, an empty field → ``null``). The types come from ``--schema`` (kamu's
read schema, SQL type names) or, without it, from the enabled sinks of the
source: a ``path`` column with a ``dataType`` whose path is one top-level key
names the CSV column of that key.

The checks are the core's conversion rules on the client: a value that cannot be
read as its type is an input error (file, line, column, value) before anything
is sent. Timestamps and dates stay strings (the core converts them) unless a
timestamp is a number, seconds since the Unix epoch.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from pushstream.client.errors import AmbiguityError, InputError, UsageError
from pushstream.wire import DATA_TYPES

#: kamu / SQL type names of ``--schema`` (case-insensitive) and the data type each one
#: reads as; the seven data type names are taken as well.
SQL_TYPES: dict[str, str] = {
    **{name: name for name in DATA_TYPES},
    **dict.fromkeys(("STRING", "TEXT", "VARCHAR", "CHAR", "UTF8"), "string"),
    **dict.fromkeys(("BIGINT", "INT", "INT8", "INT16", "INT32", "INT64", "SMALLINT", "TINYINT", "LONG"), "integer"),
    **dict.fromkeys(("DOUBLE", "FLOAT", "FLOAT32", "FLOAT64", "REAL"), "number"),
    **dict.fromkeys(("BOOLEAN", "BOOL"), "boolean"),
    **dict.fromkeys(("TIMESTAMP", "TIMESTAMPTZ", "DATETIME"), "timestamp"),
    "DATE": "date",
    "JSON": "json",
}
_SQL_TYPES_FOLDED = {name.casefold(): data_type for name, data_type in SQL_TYPES.items()}

#: Reads one CSV value; raises ValueError when the text is not of the type.
Reader = Callable[[str], Any]

_SCHEMA_ITEM = re.compile(r"\s*(?:`([^`]+)`|\"([^\"]+)\"|([^\s,]+))\s+([A-Za-z][A-Za-z0-9_]*)\s*")
_INTEGER = re.compile(r"-?[0-9]+")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# What Rust's f64 parser takes besides JSON numbers ("+1", ".5", "5."); inf and NaN are not finite.
_LOOSE_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# The core's forms: a date alone, or with `T`, `t` or a space, `HH:MM`, optional
# `:SS` and a fraction after `.` or `,`, and `Z`, `z`, `±HH:MM`, `±HHMM` or `±HH`.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?"
    r"(?:[Zz]|[+-]([0-9]{2})(?::?([0-9]{2}))?)?)?"
)
_INT64 = 2**63


# Bound methods: these run once per value.
_is_integer = _INTEGER.fullmatch
_is_json_number = _JSON_NUMBER.fullmatch
_Fragment = orjson.Fragment


def _integer(text: str) -> int:
    if not _is_integer(text):
        raise ValueError(text)
    value = int(text)
    # 18 digits and a sign always fit.
    if len(text) > 18 and not -_INT64 <= value < _INT64:
        raise ValueError(text)
    return value


def _number(text: str) -> Any:
    if _is_json_number(text):
        # Only an exponent or hundreds of digits can leave the double range (1e400).
        if (len(text) > 300 or "e" in text or "E" in text) and not math.isfinite(float(text)):
            raise ValueError(text)
        # The digits as written, like the same number in NDJSON.
        return _Fragment(text)
    if _LOOSE_NUMBER.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
    raise ValueError(text)


def _boolean(text: str) -> bool:
    folded = text.lower()
    if folded == "true":
        return True
    if folded == "false":
        return False
    raise ValueError(text)


def _timestamp(text: str) -> Any:
    if _JSON_NUMBER.fullmatch(text):
        # A number is seconds since the Unix epoch (as a JSON number in NDJSON).
        return _number(text)
    found = _TIMESTAMP.fullmatch(text)
    if found is None:
        raise ValueError(text)
    _check_date(text[:10])
    hour, minute, second, offset_hours, offset_minutes = found.groups()
    if hour is not None and (int(hour) > 23 or int(minute) > 59 or (second is not None and int(second) > 59)):
        raise ValueError(text)
    if offset_hours is not None and (int(offset_hours) > 23 or int(offset_minutes or 0) > 59):
        raise ValueError(text)
    return text


@functools.lru_cache(maxsize=4096)
def _check_date(text: str) -> None:
    """Raises ValueError unless ``YYYY-MM-DD`` is a day of the calendar (few distinct days
    recur in a file: they are checked once)."""
    dt.date(int(text[:4]), int(text[5:7]), int(text[8:10]))


def _date(text: str) -> str:
    if not _DATE.fullmatch(text):
        raise ValueError(text)
    _check_date(text)
    return text


_JSON_DECODER = msgspec.json.Decoder(msgspec.Raw)


def _json(text: str) -> Any:
    try:
        _JSON_DECODER.decode(text)
    except msgspec.DecodeError:
        raise ValueError(text) from None
    stripped = text.strip()
    if "\n" not in stripped and "\r" not in stripped:
        return _Fragment(stripped)
    # One record per line: a value written over several lines is compacted (or, beyond
    # what orjson holds, its line breaks become spaces: outside strings they are
    # whitespace, and JSON strings hold none).
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return orjson.Fragment(stripped.replace("\r", " ").replace("\n", " "))


_READERS: dict[str, Reader] = {
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "date": _date,
    "json": _json,
}


def parse_schema(text: str) -> dict[str, str]:
    """``--schema 't TIMESTAMP, lat DOUBLE, n BIGINT'`` → ``{"t": "timestamp", "lat": "number",
    "n": "integer"}``. Names may be quoted with backticks or double quotes."""
    result: dict[str, str] = {}
    for item in _split_items(text):
        found = _SCHEMA_ITEM.fullmatch(item)
        if found is None:
            raise UsageError(f'invalid --schema item "{item.strip()}": expected NAME TYPE, e.g. "lat DOUBLE"')
        name = next(group for group in found.groups()[:3] if group is not None)
        type_name = found.group(4)
        data_type = _SQL_TYPES_FOLDED.get(type_name.casefold())
        if data_type is None:
            raise UsageError(
                f'invalid --schema: unknown type "{type_name}" of column "{name}", expected one of '
                + ", ".join(t for t in SQL_TYPES if t not in DATA_TYPES)
                + " (or a data type: "
                + ", ".join(DATA_TYPES)
                + ")"
            )
        if name in result:
            raise UsageError(f'invalid --schema: column "{name}" is given twice')
        result[name] = data_type
    if not result:
        raise UsageError('invalid --schema: expected NAME TYPE pairs separated by commas, e.g. "t TIMESTAMP, n BIGINT"')
    return result


def _split_items(text: str) -> list[str]:
    """Items separated by commas outside quotes."""
    items: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in '`"':
            quote = char
        elif char == ",":
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item for item in items if item.strip()]


def _top_level_key(path: str) -> str | None:
    """The key of a path that is one top-level key (``total``), else None (``order.total``, ``a[0]``)."""
    return None if any(c in path for c in ".[]") else path


@dataclass(frozen=True)
class CsvTypes:
    """Data types of CSV columns by name (``string`` columns are sent as text).

    ``explicit`` types come from ``--schema``: each named column must be in the
    header of every CSV input. Types taken from sinks apply where a CSV has the
    column; ``conflicts`` are the columns the sinks give two types, with the message
    that stops a CSV input that has one (other inputs are not concerned).
    """

    types: Mapping[str, str]
    explicit: bool = False
    conflicts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_schema(cls, text: str) -> CsvTypes:
        return cls(parse_schema(text), explicit=True)

    @classmethod
    def from_sinks(cls, sinks: Iterable[dict[str, Any]]) -> CsvTypes:
        """The types the enabled ``sinks`` (as the API shows them) declare for top-level
        paths; a key with two different types is a conflict."""
        found: dict[str, tuple[str, str]] = {}
        conflicts: dict[str, str] = {}
        for sink in sinks:
            if sink.get("disabled"):
                continue
            columns = ((sink.get("table") or {}).get("mapping") or {}).get("columns") or []
            for column in columns:
                data_type = column.get("dataType")
                key = _top_level_key(str(column.get("path", ""))) if column.get("type") == "path" else None
                if data_type is None or not key:
                    continue
                where = f'sink "{sink.get("sinkId")}" column "{column.get("name")}"'
                first = found.setdefault(key, (data_type, where))
                if first[0] != data_type and key not in conflicts:
                    conflicts[key] = (
                        f'CSV column "{key}" has two data types: {first[0]} in {first[1]} and {data_type} in {where}; '
                        "give the column's type with --schema"
                    )
        return cls({key: data_type for key, (data_type, _) in found.items()}, conflicts=conflicts)

    def readers(self, name: str, header: list[str]) -> list[tuple[int, str, str, Reader]]:
        """(index, column, data type, reader) of each typed column of a CSV file's header
        (``string`` columns are left as they are). A column the sinks give two types is
        an :class:`AmbiguityError`."""
        if self.explicit:
            missing = [column for column in self.types if column not in header]
            if missing:
                names = ", ".join(f'"{column}"' for column in missing)
                raise InputError(name, f"--schema names columns that are not in the header row: {names}", 1)
        result = []
        for index, column in enumerate(header):
            conflict = self.conflicts.get(column)
            if conflict is not None:
                raise AmbiguityError(f"{name}: {conflict}")
            data_type = self.types.get(column)
            if data_type is not None and data_type != "string":
                result.append((index, column, data_type, _READERS[data_type]))
        return result


def read_row(
    record: dict[str, Any], row: list[str], readers: list[tuple[int, str, str, Reader]], name: str, line: int
) -> None:
    """Replaces the text of the typed columns of ``record`` (a CSV row as a dict) by their values;
    an empty field is null."""
    for index, column, data_type, reader in readers:
        text = row[index]
        try:
            record[column] = reader(text) if text else None
        except ValueError:
            value = orjson.dumps(text).decode()
            raise InputError(name, f'column "{column}": cannot convert {value} to {data_type}', line) from None
