"""``interleave_parts``: the core's reading of slice indexes, against a reference
in Python (the coordinator's former implementation) on hand-made index files."""

from __future__ import annotations

import itertools
import random
import struct
from pathlib import Path

import pytest

from pushstream import SliceWriter, _core


def reference_appends(path: Path, length: int) -> list[tuple[int, int, int]]:
    """(receive time, start, end) of every append of a part, from its index."""
    index = path.with_suffix(".idx")
    raw = index.read_bytes() if index.exists() else b""
    appends = []
    start = 0
    time_ns = 0
    for end, time_ns in struct.iter_unpack("<Qq", raw[: len(raw) // 16 * 16]):
        if end > length or end <= start:
            break
        appends.append((time_ns, start, end))
        start = end
    if start < length:
        appends.append((time_ns, start, length))
    return appends


def reference_interleave(parts: list[tuple[Path, int]]) -> list[tuple[Path, int, int]]:
    """Byte ranges of several parts in receive order; consecutive ranges of one part merged."""
    appends = sorted(
        (time_ns, part, start, end)
        for part, (path, length) in enumerate(parts)
        for time_ns, start, end in reference_appends(path, length)
    )
    ranges: list[tuple[Path, int, int]] = []
    for _, part, start, end in appends:
        path = parts[part][0]
        if ranges and ranges[-1][0] == path and ranges[-1][2] == start:
            ranges[-1] = (path, ranges[-1][1], end)
        else:
            ranges.append((path, start, end))
    return ranges


def part(directory: Path, name: str, entries: list[tuple[int, int]] | None, tail: bytes = b"") -> Path:
    """A part whose index holds ``entries`` (``None``: no index file) plus ``tail`` bytes."""
    path = directory / f"slice-{name}.csv"
    path.write_bytes(b"")
    if entries is not None:
        path.with_suffix(".idx").write_bytes(b"".join(struct.pack("<Qq", e, t) for e, t in entries) + tail)
    return path


CASES: dict[str, list[tuple[list[tuple[int, int]] | None, bytes, int]]] = {
    # name: [(index entries, torn tail, part length), ...]
    "two parts interleaved": [([(4, 100), (8, 300)], b"", 8), ([(3, 200), (9, 400)], b"", 9)],
    "torn tail": [([(4, 100), (8, 300)], b"\x01" * 9, 8), ([(3, 200)], b"\x02" * 15, 3)],
    "rows past the index": [([(4, 100)], b"", 10), ([(3, 50), (6, 150)], b"", 6)],
    "index longer than the part": [([(4, 100), (8, 300), (12, 500)], b"", 6), ([(3, 200)], b"", 3)],
    "empty index": [([], b"", 5), ([(3, 10)], b"", 3)],
    "no index file": [(None, b"", 5), ([(3, 10)], b"", 3)],
    "entry that does not move forward": [([(4, 100), (4, 250), (8, 300)], b"", 8), ([(3, 200)], b"", 3)],
    "equal times: part order, then file order": [([(2, 7), (4, 7)], b"", 4), ([(1, 7), (5, 1)], b"", 5)],
    "negative and unsorted times": [([(2, -5), (4, -10), (6, 3)], b"", 6), ([(5, -7)], b"", 5)],
    "three parts, one empty": [([(4, 1)], b"", 4), ([], b"", 0), ([(2, 0), (4, 2)], b"", 4)],
    "largest times": [([(1, 2**63 - 1)], b"", 1), ([(1, -(2**63))], b"", 1)],
}


@pytest.mark.parametrize("case", CASES)
def test_hand_made_indexes_read_as_the_reference_reads_them(case: str, tmp_path: Path) -> None:
    parts = [(part(tmp_path, str(i), entries, tail), length) for i, (entries, tail, length) in enumerate(CASES[case])]
    assert _core.interleave_parts(parts) == reference_interleave(parts)


def test_random_indexes_read_as_the_reference_reads_them(tmp_path: Path) -> None:
    rng = random.Random(13)
    for round_ in range(300):
        directory = tmp_path / str(round_)
        directory.mkdir()
        parts = []
        for i in range(rng.randint(1, 4)):
            ends = list(itertools.accumulate(rng.choice([0, 1, 1, 5]) for _ in range(rng.randint(0, 6))))
            entries = [(end, rng.randint(0, 5)) for end in ends]
            length = max(ends, default=0) + rng.randint(-3, 3)
            tail = bytes(rng.randint(0, 15)) if rng.random() < 0.2 else b""
            parts.append((part(directory, str(i), entries, tail), max(length, 0)))
        assert _core.interleave_parts(parts) == reference_interleave(parts), parts


def test_parts_written_by_slice_writers(tmp_path: Path) -> None:
    a, b = tmp_path / "slice-a.csv", tmp_path / "slice-b.csv"
    with SliceWriter(a) as writer_a, SliceWriter(b) as writer_b:
        writer_b.write([["1"]], record_time_ns=100)
        writer_a.write([["2"], ["3"]], record_time_ns=200)
        writer_b.write([["4"]], record_time_ns=300)
        writer_b.write([["5"]], record_time_ns=400)
    parts = [(a, a.stat().st_size), (b, b.stat().st_size)]
    assert _core.interleave_parts(parts) == [(b, 0, 4), (a, 0, 8), (b, 4, 12)]
    assert _core.interleave_parts(parts) == reference_interleave(parts)


def test_paths_come_back_as_given(tmp_path: Path) -> None:
    path = part(tmp_path, "a", [(3, 1)])
    text = str(path)
    ((given, start, end),) = _core.interleave_parts([(text, 3)])
    assert (given, start, end) == (text, 0, 3)
    assert given is text
    assert _core.interleave_parts([]) == []


def test_an_unreadable_index_raises(tmp_path: Path) -> None:
    path = part(tmp_path, "a", [])
    path.with_suffix(".idx").unlink()
    path.with_suffix(".idx").mkdir()
    with pytest.raises(OSError, match=r"slice index .*slice-a\.idx"):
        _core.interleave_parts([(path, 0)])
