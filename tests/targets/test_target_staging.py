"""Reading staging files and deduplicating on the key, against a reference."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from targethelpers import write_staging

from pushstream.targets.base import TargetError
from pushstream.targets.rows import dedup_last
from pushstream.targets.staging_csv import StagingStream, read_staging


def reference(rows: list[tuple[str, ...]], key: int | tuple[int, ...]) -> list[tuple[str, ...]]:
    """The last occurrence of every key, ordered by the key's UTF-8 bytes."""
    idx = (key,) if isinstance(key, int) else key
    last: dict[tuple[str, ...], tuple[str, ...]] = {}
    for row in rows:
        last[tuple(row[i] for i in idx)] = row
    return [last[k] for k in sorted(last, key=lambda k: tuple(v.encode() for v in k))]


def as_rows(table: pa.Table) -> list[tuple[str, ...]]:
    return list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))


keys = st.text(alphabet=st.sampled_from(["a", "b", "é", "\x00", "z", "🐎", " "]), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(keys, st.text(max_size=3)), max_size=40))
def test_dedup_single_key_matches_reference(rows: list[tuple[str, str]]) -> None:
    table = pa.table({"k": [r[0] for r in rows], "v": [r[1] for r in rows]})
    assert as_rows(dedup_last(table, ["k"])) == reference(rows, 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(keys, keys, st.text(max_size=3)), max_size=40))
def test_dedup_composite_key_matches_reference(rows: list[tuple[str, str, str]]) -> None:
    table = pa.table({"a": [r[0] for r in rows], "b": [r[1] for r in rows], "v": [r[2] for r in rows]})
    assert as_rows(dedup_last(table, ["a", "b"])) == reference(rows, (0, 1))


@pytest.mark.parametrize("width", [36, 64, 65, 200], ids=lambda w: f"width-{w}")
def test_dedup_many_chunked_rows(width: int) -> None:
    rnd = random.Random(width)
    rows = [(f"{rnd.randrange(5000):0{width}d}"[-width:], str(i)) for i in range(20_000)]
    rows += [(f"short-{i}", "s") for i in range(50)]
    batches = [
        pa.record_batch([[r[0] for r in rows[i : i + 3000]], [r[1] for r in rows[i : i + 3000]]], names=["k", "v"])
        for i in range(0, len(rows), 3000)
    ]
    table = pa.Table.from_batches(batches)
    assert as_rows(dedup_last(table, ["k"])) == reference(rows, 0)


def test_stream_and_table_read_the_same(tmp_path: Path) -> None:
    rows = [[str(i), f"line\n{i}", '"q"' * (i % 5), ""] for i in range(30_000)]
    paths = [write_staging(tmp_path / "a.csv.zst", rows[:10_000], frames=7), write_staging(tmp_path / "b.csv.zst", [])]
    paths.append(write_staging(tmp_path / "c.csv.zst", rows[10_000:], frames=3))
    columns = ["a", "b", "c", "d"]
    table = read_staging(paths, columns)
    stream = StagingStream(paths, columns)
    streamed = stream.reader().read_all()
    assert stream.rows == table.num_rows == 30_000
    assert as_rows(streamed) == as_rows(table) == [tuple(r) for r in rows]


@pytest.mark.parametrize("long_row_at", [0, 3, 9_999], ids=["first", "early", "last"])
def test_rows_longer_than_a_block_are_read(tmp_path: Path, long_row_at: int) -> None:
    """A row longer than the reader's block (a huge body or template result) is
    read by both readers, with the rows around it in order and none twice."""
    rows = [[str(i), f"v\n{i}"] for i in range(10_000)]
    # Quotes double in Keboola CSV: the row is longer than 2 x 20 MB on disk,
    # beyond the default block of both readers.
    rows[long_row_at] = [str(long_row_at), '"' * (20 << 20)]
    rows[5_000] = ["5000", "x" * (3 << 20)]
    path = write_staging(tmp_path / "long.csv.zst", rows, frames=3)
    columns = ["a", "b"]
    table = read_staging([path], columns)
    stream = StagingStream([path], columns)
    streamed = stream.reader().read_all()
    assert stream.rows == table.num_rows == len(rows)
    assert as_rows(streamed) == as_rows(table) == [tuple(r) for r in rows]


def test_a_torn_file_is_still_an_error_with_large_rows(tmp_path: Path) -> None:
    path = write_staging(tmp_path / "torn.csv.zst", [["1", "x" * (3 << 20)]])
    data = zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read()
    path.write_bytes(zstandard.ZstdCompressor().compress(data[:-2]))
    with pytest.raises(TargetError, match="ends inside a row"):
        read_staging([path], ["a", "b"])
    with pytest.raises(Exception, match="ends inside a row"):
        StagingStream([path], ["a", "b"]).reader().read_all()
