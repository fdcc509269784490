"""Rejected rows: rows of an imported file that the target refused (a NUL
character in PostgreSQL text, a value a constraint of the table does not allow).
The rest of their file is imported; they are kept, never dropped silently.

One file per imported file, ``rejected/<branch>/<source>/<sink>/<file>.ndjson``,
one JSON object per refused row::

    {"fileId": "...", "rejectedAt": "...", "reason": "...", "row": {"column": "value", ...}}

It is written (temporary file, fsync, rename) before the import commits, so a
crash never loses it; an import repeated after a crash writes the same rows again.
The files stay until the operator removes them; ``pushstream rejected`` lists them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from pushstream.catalog.models import format_time
from pushstream.targets.base import RejectedRow


def write_rejected(path: Path, file_id: str, columns: Sequence[str], rows: Sequence[RejectedRow]) -> None:
    """Writes the refused rows of one file durably (replacing an earlier attempt's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rejected_at = format_time(time.time_ns())
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        for row in rows:
            document = {
                "fileId": file_id,
                "rejectedAt": rejected_at,
                "reason": row.reason,
                "row": dict(zip(columns, row.values, strict=False)),
            }
            out.write(orjson.dumps(document) + b"\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def count_rejected(path: Path) -> int:
    """Rows in one file's rejected rows (0 when there are none)."""
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def read_rejected(directory: Path) -> Iterator[dict[str, Any]]:
    """Every rejected row of one sink (its directory), oldest file first."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.ndjson")):
        with path.open("rb") as f:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)
