"""Slice upload: a closed slice (one CSV per node that wrote it) becomes one
compressed staging file.

Several nodes' parts are interleaved append by append in receive order (the
core reads each part's ``.idx``: :func:`pushstream._core.interleave_parts`), so
that a primary key's last write is the last received one, whichever node took it.

Crash safety: node parts are recovered first (a torn trailing row of a node that
died is cut off), the staging file is written to a temporary name, fsync'd and
renamed, and only then is the slice marked ``uploaded``; the local parts are
removed after that commit. A crash at any point leaves either the old state (the
upload is redone, overwriting the same staging file) or the new one (leftover
local parts are removed later).
"""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from pushstream import recover_slice
from pushstream._core import interleave_parts
from pushstream.storage.layout import Layout
from pushstream.storage.state import SliceRef

#: zstd level: fast enough to keep up with the receivers, ~5x smaller CSV.
ZSTD_LEVEL = 3
_CHUNK = 1 << 20


@dataclass(frozen=True)
class UploadResult:
    records: int
    uncompressed_size: int
    compressed_size: int
    #: Bytes of torn rows cut off node parts (only after a node crashed).
    truncated: int
    staging_path: Path | None


def node_parts(layout: Layout, ref: SliceRef) -> dict[str, Path]:
    """The node parts of a slice on disk: node id → path."""
    directory = layout.slice_dir(ref.sink, ref.file_id, ref.slice_id)
    if not directory.is_dir():
        return {}
    return {p.stem.removeprefix("slice-"): p for p in sorted(directory.glob("slice-*.csv"))}


def upload(layout: Layout, ref: SliceRef) -> UploadResult:
    """Compresses every node part of a closed slice into its staging file."""
    parts = node_parts(layout, ref)
    records = uncompressed = truncated = 0
    recovered = []
    for path in parts.values():
        found = recover_slice(path)
        records += found.rows
        uncompressed += found.bytes
        truncated += found.truncated
        recovered.append((path, found.bytes))
    if records == 0:
        return UploadResult(0, 0, 0, truncated, None)

    target = layout.staging_path(ref.sink, ref.file_id, ref.slice_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    parts_with_rows = [(path, length) for path, length in recovered if length > 0]
    compressed_size = write_in_receive_order(parts_with_rows, target, compress=True)
    _fsync_dir(target.parent)
    return UploadResult(records, uncompressed, compressed_size, truncated, target)


def compress_part(path: Path, target: Path) -> UploadResult:
    """Compresses one node part (after cutting a torn trailing row off it) into
    ``target`` (durable); the part's own rows only, for shared staging."""
    found = recover_slice(path)
    if found.rows == 0:
        return UploadResult(0, 0, 0, found.truncated, None)
    size = write_in_receive_order([(path, found.bytes)], target, compress=True)
    return UploadResult(found.rows, found.bytes, size, found.truncated, target)


def write_in_receive_order(parts: list[tuple[Path, int]], target: Path, *, compress: bool) -> int:
    """Writes the first ``length`` bytes of each ``(path, length)`` part into
    ``target``, appends of several parts interleaved by receive time (read from
    their ``.idx``); zstd-compressed when ``compress``. Written to a temporary
    name, fsync'd and renamed; returns the size of ``target``."""
    temporary = target.with_name(target.name + ".tmp")
    ranges = [(path, 0, length) for path, length in parts] if len(parts) == 1 else interleave_parts(parts)
    try:
        with ExitStack() as files:
            out = files.enter_context(open(temporary, "wb"))
            writer: Any = out
            if compress:
                compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
                writer = files.enter_context(compressor.stream_writer(out, closefd=False))
            # Each part is opened once: a slice that several nodes took turns at has many ranges.
            sources = {path: files.enter_context(open(path, "rb")) for path, _ in parts}
            for path, start, end in ranges:
                _copy(sources[path], start, end, writer)
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        # A full disk fails the upload: the partial file would only keep the
        # space taken that the next attempt needs.
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, target)
    return target.stat().st_size


def index_of(part: Path) -> Path:
    """The append index the writer keeps next to a part (see ``SliceWriter``)."""
    return part.with_suffix(".idx")


def _copy(source: BinaryIO, start: int, end: int, writer: Any) -> None:
    source.seek(start)
    remaining = end - start
    while remaining > 0:
        chunk = source.read(min(_CHUNK, remaining))
        if not chunk:
            break
        writer.write(chunk)
        remaining -= len(chunk)


def remove_local(layout: Layout, ref: SliceRef) -> None:
    """Deletes the local parts of an uploaded slice (and empty parent dirs)."""
    directory = layout.slice_dir(ref.sink, ref.file_id, ref.slice_id)
    shutil.rmtree(directory, ignore_errors=True)
    _prune_empty(directory.parent, layout.local_dir)


def _prune_empty(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
