"""The input side of ``ingest`` without a server: format detection, checking (also
in parallel processes), translation to NDJSON and batching."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from pushstream.client import inputs
from pushstream.client.errors import InputError
from pushstream.client.inputs import Chunk, detect_format, iter_chunks, prepare_inputs


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.ndjson", ("ndjson", None)),
        ("a.JSONL", ("ndjson", None)),
        ("dir.v2/a.json", ("json", None)),
        ("a.csv.gz", ("csv", "gzip")),
        ("a.ndjson.zst", ("ndjson", "zstd")),
        ("a.txt", (None, None)),
        ("a.gz", (None, "gzip")),
    ],
)
def test_detect_format(name: str, expected: tuple[str | None, str | None]) -> None:
    assert detect_format(name) == expected


def _lines(n: int) -> list[bytes]:
    return [orjson.dumps({"n": i, "pad": "x" * (i % 50)}) for i in range(n)]


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_parallel_check_counts_and_names_the_first_bad_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    monkeypatch.setattr(inputs, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(inputs, "BLOCK_SIZE", 4096)
    lines = _lines(20_000)
    lines[3000] = b""  # blank lines are not records
    lines[3001] = b"  \r"
    path = tmp_path / "a.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    with prepare_inputs([str(path)], jobs=jobs) as prepared:
        (item,) = prepared.inputs
        assert item.records == 19_998
        with item.open() as stream:
            assert stream.read() == b"\n".join(lines) + b"\n"
    # Two bad lines in different parts: the first one in the file is named.
    lines[12_345] = b'{"n": tru}'
    lines[17_000] = b"{"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError) as caught:
        prepare_inputs([str(path)], jobs=jobs)
    assert str(caught.value) == f"{path}:12346: malformed JSON: invalid literal, expected 'true' at column 7"
    # A line that is not UTF-8, in a later part.
    lines[12_345] = lines[17_000] = b"{}"
    lines[15_000] = b'{"n": "caf\xc3\xa9 \xff"}'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError) as caught:
        prepare_inputs([str(path)], jobs=jobs)
    assert str(caught.value) == f"{path}:15001: not valid UTF-8 (byte 0xff at column 14)"


def test_progress_reports_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "PARALLEL_THRESHOLD", 1)
    path = tmp_path / "a.ndjson"
    path.write_bytes(b"\n".join(_lines(5000)))
    seen: list[int] = []
    with prepare_inputs([str(path)], jobs=2, progress=seen.append):
        pass
    assert sum(seen) == path.stat().st_size


def test_number_beyond_double_range_is_valid(tmp_path: Path) -> None:
    # The server keeps such numbers as written; the check must not refuse them.
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'{"n": 1e400}\n{"n": 123456789012345678901234567890}\n')
    with prepare_inputs([str(path)]) as prepared:
        assert prepared.records == 2
    array = tmp_path / "b.json"
    array.write_bytes(b'[{"n":\n 1e400}]')
    with prepare_inputs([str(array)]) as prepared, prepared.inputs[0].open() as stream:
        assert stream.read() == b'{"n":  1e400}\n'


def test_lone_surrogate_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'{"s": "\\ud800"}\n')
    with pytest.raises(InputError, match=r"a.ndjson:1: malformed JSON: .*surrogate"):
        prepare_inputs([str(path)])


def test_csv_lines_map_to_the_source(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('a,b\n1,"x\ny"\n\n2,z\n')
    with prepare_inputs([str(path)]) as prepared:
        (item,) = prepared.inputs
        with item.open() as stream:
            assert stream.read() == b'{"a":"1","b":"x\\ny"}\n{"a":"2","b":"z"}\n'
        assert [item.where(1), item.where(2)] == [f"{path}:2", f"{path}:5"]


def test_stdin_is_spooled(tmp_path: Path) -> None:
    with prepare_inputs([], stdin=io.BytesIO(b'{"a":1}\n{"a":2}\n')) as prepared:
        (item,) = prepared.inputs
        assert (item.name, item.records) == ("<stdin>", 2)
        spool = item._path
        assert spool.exists()
    assert not spool.exists()


def test_chunks_are_whole_lines() -> None:
    data = b"".join(b'{"n":%d}\n' % i for i in range(1000))
    chunks = list(iter_chunks(io.BytesIO(data), 100))
    assert b"".join(chunks) == data
    assert all(len(c) <= 100 and c.endswith(b"\n") for c in chunks)
    # A line longer than a chunk goes alone; the last chunk needs no line break.
    data = b'{"a":1}\n{"long":"' + b"x" * 300 + b'"}\n{"b":2}'
    assert list(iter_chunks(io.BytesIO(data), 64)) == [b'{"a":1}\n', data[8:-7], b'{"b":2}']
    assert list(iter_chunks(io.BytesIO(data), 64, limit=20)) == [b'{"a":1}\n', data[8:20]]


@pytest.mark.parametrize("jobs", [1, 2])
def test_chunks_cover_the_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    monkeypatch.setattr(inputs, "PARALLEL_THRESHOLD", 1)
    lines = _lines(3000)
    lines[10] = b""
    path = tmp_path / "a.ndjson"
    path.write_bytes(b"\n".join(lines))  # no final line break
    with prepare_inputs([str(path)], jobs=jobs, chunk_size=4096) as prepared:
        (item,) = prepared.inputs
        assert item.plain
        content = path.read_bytes()
        assert b"".join(content[c.offset : c.offset + c.length] for c in item.chunks) == content
        assert all(c.length <= 4096 for c in item.chunks)
        assert sum(c.records for c in item.chunks) == item.records == 2999
        assert sum(c.breaks for c in item.chunks) == 2999
        assert item.chunks[0] == Chunk(0, item.chunks[0].length, item.chunks[0].breaks - 1, item.chunks[0].breaks)
