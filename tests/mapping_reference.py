"""A pure-Python reference of the column semantics (orjson + the csv module).

It is what a user would write by hand, and it serves two purposes: the oracle of
the differential tests of the Rust core, and the baseline of the mapping
benchmark. It is not used on any serving path.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


def parse_path(path: str) -> list[str | int]:
    """``a.b[0].c`` → ``["a", "b", 0, "c"]`` (syntax errors are not diagnosed here)."""
    return [key if key else int(index) for key, index in _PATH_TOKEN.findall(path)]


def canonical_header_name(name: str) -> str:
    """``content-type`` → ``Content-Type``; names with characters outside the token set stay as they are."""
    if not name or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+", name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def canonical_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    merged: dict[str, str] = {}
    for name, value in sorted(((canonical_header_name(n), v) for n, v in items), key=lambda p: p[0]):
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def format_datetime(received_at_ns: int) -> str:
    moment = datetime.fromtimestamp(received_at_ns // 1_000_000 / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{received_at_ns // 1_000_000 % 1000:03d}Z"


def uuid7() -> str:
    ms = time.time_ns() // 1_000_000
    raw = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(raw)))


def _form(body: bytes) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body.decode(), keep_blank_values=True):
        if key.endswith("[]") and len(key) > 2:
            result.setdefault(key[:-2], []).append(value)
        else:
            result[key] = value
    return result


class ReferenceMapping:
    """Maps records like :class:`pushstream.Mapping`, one Python call per field."""

    def __init__(self, columns: Sequence[Mapping[str, Any]]) -> None:
        self.columns = [dict(c) for c in columns]
        for column in self.columns:
            if column["type"] == "path":
                column["_path"] = parse_path(column["path"])

    def map(self, body: bytes, headers: Mapping[str, str], ip: str, received_at_ns: int) -> list[str]:
        canonical = canonical_headers(headers)
        parsed: Any = _MISSING
        row = []
        for column in self.columns:
            kind = column["type"]
            if kind in ("uuid", "id"):
                row.append(uuid7())
            elif kind == "datetime":
                row.append(format_datetime(received_at_ns))
            elif kind == "ip":
                row.append(ip)
            elif kind == "body":
                row.append(body.decode())
            elif kind == "headers":
                row.append(orjson.dumps(canonical).decode())
            elif kind == "path":
                if parsed is _MISSING:
                    content_type = canonical.get("Content-Type", "").split(";")[0].strip().lower()
                    parsed = _form(body) if content_type == "application/x-www-form-urlencoded" else orjson.loads(body)
                value: Any = parsed
                for step in column["_path"]:
                    in_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
                    if in_list or (isinstance(step, str) and isinstance(value, dict) and step in value):
                        value = value[step]
                    else:
                        value = _MISSING
                        break
                if value is _MISSING:
                    if "defaultValue" not in column:
                        raise KeyError(f'path "{column["path"]}" not found in the body')
                    value = column["defaultValue"]
                if column.get("rawString") and isinstance(value, str):
                    row.append(value)
                else:
                    row.append(orjson.dumps(value).decode())
            else:
                raise ValueError(f"the reference does not implement column type {kind!r}")
        return row

    def encode_batch(self, records: Iterable[tuple[bytes, Mapping[str, str], str, int]]) -> bytes:
        """Keboola CSV of many records: every field quoted, rows end with ``\\n``."""
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for body, headers, ip, received_at_ns in records:
            writer.writerow(self.map(body, headers, ip, received_at_ns))
        return out.getvalue().encode()
