"""Helpers of the target tests: staging files in Keboola CSV + zstd, import
requests, and raw SQL on a target's database."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import zstandard

from pushstream.targets.base import ImportRequest, SinkIdentity, TableSpec


def encode_rows(rows: Sequence[Sequence[str]]) -> bytes:
    """Keboola CSV: every field quoted, quotes doubled, ``\\n`` after every row."""
    return "".join(",".join('"' + v.replace('"', '""') + '"' for v in row) + "\n" for row in rows).encode()


def write_staging(path: Path, rows: Sequence[Sequence[str]], frames: int = 1) -> Path:
    """Writes ``rows`` as zstd-compressed Keboola CSV, split into ``frames``
    concatenated zstd frames (like slices of several nodes)."""
    compressor = zstandard.ZstdCompressor(level=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = max(1, min(frames, len(rows) or 1))
    size = -(-len(rows) // frames) if rows else 0
    with path.open("wb") as f:
        if not rows:
            f.write(compressor.compress(b""))
        for start in range(0, len(rows), size or 1):
            f.write(compressor.compress(encode_rows(rows[start : start + size])))
    return path


class Staging:
    """Makes staging files and import requests in a temp dir."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.counter = itertools.count(1)

    def file(self, rows: Sequence[Sequence[str]], frames: int = 1) -> Path:
        return write_staging(self.base / f"file-{next(self.counter)}.csv.zst", rows, frames)

    def request(
        self,
        spec: TableSpec,
        *row_sets: Sequence[Sequence[str]],
        import_id: str | None = None,
        sink: SinkIdentity | None = None,
        frames: int = 1,
    ) -> ImportRequest:
        paths = [self.file(rows, frames) for rows in row_sets]
        return ImportRequest(
            spec=spec,
            import_id=import_id or f"import-{next(self.counter)}",
            paths=paths,
            sink=sink or SinkIdentity(1, "source", "sink"),
        )
