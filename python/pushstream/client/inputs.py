"""Inputs of ``pushstream ingest``: files and stdin in NDJSON, JSON or CSV, plain or
compressed (gzip, zstd), checked completely before anything is sent.

Every input becomes a stream of NDJSON, one record per line:

- NDJSON passes through unchanged (so a ``body`` column gets the line as it was
  written): each line is checked to be UTF-8 and one JSON document by the
  receiver's own parser in the core (no Python objects, GIL released); large
  plain files are checked in place through a memory map by parallel processes.
- JSON (kamu's format translation): an array becomes one record per element, any
  other document is one record. Elements are passed through; an element written
  over several lines is compacted to one.
- CSV with a header row: one JSON object per row, values as strings, keys in header
  order, like the receiver's ``text/csv`` batches; the values of typed columns
  (:mod:`pushstream.client.csv_types`) as the JSON values of their type.

JSON and CSV are translated once, into a temporary file; stdin is spooled to a
temporary file first. :meth:`PreparedInput.open` then reads the NDJSON to send.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import mmap
import multiprocessing
import multiprocessing.connection
import os
import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

import msgspec
import orjson
import zstandard

from pushstream._core import check_ndjson
from pushstream.client.csv_types import CsvTypes, read_row
from pushstream.client.errors import InputError, UsageError
from pushstream.errors import BatchError

FORMATS = ("ndjson", "json", "csv")
_EXTENSIONS = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json", ".csv": "csv"}
_COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BOM = b"\xef\xbb\xbf"
STDIN_NAME = "<stdin>"

#: Bytes read and checked at a time.
BLOCK_SIZE = 8 << 20
#: Uncompressed NDJSON files at least this large are checked by several processes.
PARALLEL_THRESHOLD = 64 << 20

#: ``progress(bytes)`` is called as input is read.
Progress = Callable[[int], None]

_RAW_DECODER = msgspec.json.Decoder(msgspec.Raw)

# A CSV row is one record: as large as the server takes in a batch.
csv.field_size_limit(64 << 20)


def detect_format(name: str) -> tuple[str | None, str | None]:
    """(format, compression) from a file name: ``events.ndjson.gz`` → (``ndjson``, ``gzip``).
    ``None`` where the name does not tell."""
    path = Path(name.lower())
    compression = _COMPRESSED.get(path.suffix)
    if compression:
        path = path.with_suffix("")
    return _EXTENSIONS.get(path.suffix), compression


def sniff_compression(path: Path) -> str | None:
    """``gzip`` or ``zstd`` from the first bytes of a file, else ``None`` (the content
    decides, so a compressed stdin or a misnamed file is read right)."""
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def open_decompressed(path: Path, compression: str | None) -> IO[bytes]:
    """The bytes of a file, decompressed; full-size ``read(n)`` until the end."""
    if compression == "gzip":
        return io.BufferedReader(gzip.GzipFile(path, "rb"), buffer_size=1 << 20)
    if compression == "zstd":
        raw = path.open("rb")
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)
    return path.open("rb")


class Chunk(NamedTuple):
    """Whole lines of an input's NDJSON stream, checked together: the unit that is sent
    as one batch. ``offset`` is in the NDJSON stream; ``breaks`` counts its line breaks."""

    offset: int
    length: int
    records: int
    breaks: int


@dataclass
class PreparedInput:
    """One input after checking: what to send and how to name its lines in messages."""

    #: The name used in messages: the path as given, or ``<stdin>``.
    name: str
    format: str
    records: int
    #: Size of the NDJSON stream :meth:`open` returns.
    size: int
    #: The stream cut into batches of whole lines (of at most the chunk size asked for,
    #: unless a single line is longer).
    chunks: list[Chunk]
    _path: Path
    _compression: str | None = None
    _skip: int = 0
    #: Source line of each NDJSON line (translated CSV); ``None`` when lines are the input's own.
    _source_lines: array[int] | None = None
    _elements: bool = False

    def open(self) -> IO[bytes]:
        """The NDJSON to send (the caller closes it)."""
        stream = open_decompressed(self._path, self._compression)
        if self._skip:
            stream.read(self._skip)
        return stream

    @property
    def plain(self) -> bool:
        """Whether the NDJSON is a plain file (chunks can be sent straight from it)."""
        return self._compression is None

    def file_range(self, chunk: Chunk) -> tuple[Path, int]:
        """(file, offset) of a chunk of a :attr:`plain` input."""
        return self._path, self._skip + chunk.offset

    def where(self, line: int) -> str:
        """``name:line`` in the original input for a 1-based line of the NDJSON stream."""
        if self._elements:
            return f"{self.name}: element {line}"
        if self._source_lines is not None and 0 < line <= len(self._source_lines):
            return f"{self.name}:{self._source_lines[line - 1]}"
        return f"{self.name}:{line}"


@dataclass
class InputSet:
    """Checked inputs and the temporary files behind them; a context manager that removes them."""

    inputs: list[PreparedInput] = field(default_factory=list)
    _stack: ExitStack = field(default_factory=ExitStack)
    _tmpdir: Path | None = None

    @property
    def records(self) -> int:
        return sum(i.records for i in self.inputs)

    @property
    def size(self) -> int:
        return sum(i.size for i in self.inputs)

    def temp_path(self, suffix: str) -> Path:
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="pushstream-ingest-"))
            self._stack.callback(shutil.rmtree, self._tmpdir, True)
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self._tmpdir)
        os.close(fd)
        return Path(name)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> InputSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_inputs(
    files: list[str],
    *,
    stdin: BinaryIO | None = None,
    fmt: str | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    chunk_size: int = BLOCK_SIZE,
    csv_types: CsvTypes | None = None,
) -> InputSet:
    """Checks every input completely and returns them ready to send, cut into chunks
    of whole lines of at most ``chunk_size`` bytes (the batches). Raises
    :class:`InputError` at the first problem (naming the input and the line) and
    :class:`UsageError` when the format of a file cannot be told. ``jobs`` is the
    number of processes that check a large plain NDJSON file (default: the cores).
    ``csv_types`` types columns of CSV inputs (the others are strings)."""
    options = _Options(progress, jobs, chunk_size, csv_types or CsvTypes({}))
    result = InputSet()
    try:
        if stdin is not None:
            spool = result.temp_path(".stdin")
            with spool.open("wb") as out:
                shutil.copyfileobj(stdin, out, 1 << 20)
            result.inputs.append(_prepare(result, STDIN_NAME, spool, fmt or "ndjson", options))
        for name in files:
            path = Path(name)
            named_format, _ = detect_format(name)
            chosen = fmt or named_format
            if chosen is None:
                raise UsageError(
                    f'cannot tell the format of "{name}" from its name: use --format ndjson|json|csv '
                    "(or name it .ndjson, .jsonl, .json or .csv, optionally .gz or .zst)"
                )
            if not path.is_file():
                raise InputError(name, "no such file" if not path.exists() else "not a file")
            result.inputs.append(_prepare(result, name, path, chosen, options))
    except BaseException:
        result.close()
        raise
    return result


@dataclass(frozen=True)
class _Options:
    progress: Progress | None
    jobs: int | None
    chunk_size: int
    csv_types: CsvTypes


def _prepare(owner: InputSet, name: str, path: Path, fmt: str, options: _Options) -> PreparedInput:
    try:
        compression = sniff_compression(path)
        if fmt == "ndjson":
            return _prepare_ndjson(name, path, compression, options)
        if fmt == "json":
            return _prepare_json(owner, name, path, compression, options)
        if fmt == "csv":
            return _prepare_csv(owner, name, path, compression, options)
    except OSError as exc:
        raise InputError(name, _os_reason(exc)) from None
    except (EOFError, zstandard.ZstdError) as exc:
        raise InputError(name, f"cannot decompress: {exc}") from None
    raise UsageError(f'unknown format "{fmt}", expected one of {", ".join(FORMATS)}')


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, gzip.BadGzipFile):
        return f"cannot decompress: {exc}"
    return exc.strerror or str(exc)


# NDJSON.


def _prepare_ndjson(name: str, path: Path, compression: str | None, options: _Options) -> PreparedInput:
    skip = 0
    with open_decompressed(path, compression) as stream:
        if stream.read(3) == _BOM:
            skip = 3
    size = path.stat().st_size - skip
    workers = options.jobs if options.jobs is not None else (os.cpu_count() or 1)
    if compression is None and size >= PARALLEL_THRESHOLD and workers > 1:
        records, chunks = _check_ndjson_parallel(name, path, (skip, size), workers=workers, options=options)
    else:
        with open_decompressed(path, compression) as stream:
            stream.read(skip)
            records, size, _, chunks = check_ndjson_stream(
                stream, name, progress=options.progress, chunk_size=options.chunk_size
            )
    return PreparedInput(name, "ndjson", records, size, chunks, path, compression, skip)


def check_ndjson_stream(
    stream: IO[bytes],
    name: str,
    *,
    progress: Progress | None = None,
    limit: int | None = None,
    chunk_size: int = BLOCK_SIZE,
) -> tuple[int, int, int, list[Chunk]]:
    """Checks that every non-blank line is one JSON document; returns (records, bytes
    read, line breaks read, chunks of at most ``chunk_size`` bytes). Reads at most
    ``limit`` bytes. Raises :class:`InputError` naming the line (counted from the
    first line read)."""
    records = 0
    offset = 0
    line = 1
    chunks: list[Chunk] = []
    for chunk in iter_chunks(stream, chunk_size, limit=limit):
        found, breaks = check_ndjson_segment(chunk, name, line)
        chunks.append(Chunk(offset, len(chunk), found, breaks))
        records += found
        line += breaks
        offset += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return records, offset, line - 1, chunks


def check_ndjson_segment(segment: bytes | memoryview, name: str, first_line: int) -> tuple[int, int]:
    """Checks whole lines of NDJSON; returns (records (non-blank lines), line breaks)."""
    try:
        # The receiver's own parser, GIL released: what passes here is what the source takes.
        return check_ndjson(segment)
    except BatchError as exc:
        line = first_line + exc.line - 1
        if exc.message.startswith("not valid UTF-8"):
            raise InputError(name, exc.message, line) from None
        text = bytes(segment).split(b"\n")[exc.line - 1].strip()
        raise InputError(name, _line_reason(text, exc.message), line) from None


def _line_reason(text: bytes, message: str) -> str:
    """What is wrong with one line, in orjson's words where it has them."""
    try:
        _RAW_DECODER.decode(text)
    except msgspec.DecodeError as exc:
        return _json_reason(text, exc)
    return f"malformed JSON: {message}"


def _json_reason(text: bytes, exc: msgspec.DecodeError) -> str:
    """What is wrong with one JSON document (one line), in orjson's words where it has them."""
    reason, line, column = _json_problem(text, exc)
    return f"{reason} at line {line} column {column}" if line > 1 else f"{reason} at column {column}"


def _json_problem(text: bytes, exc: msgspec.DecodeError) -> tuple[str, int, int]:
    """(reason, line, column) of a JSON document that did not decode."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as err:
        return f"malformed JSON: {err.msg}", err.lineno, err.colno
    # orjson takes it (a number beyond the double range, say): msgspec's words and offset.
    message = str(exc).removeprefix("JSON is malformed: ")
    offset = len(text)
    if message.endswith(")") and " (byte " in message:
        message, _, rest = message.rpartition(" (byte ")
        if rest[:-1].isdigit():
            offset = int(rest[:-1])
    line = text.count(b"\n", 0, offset) + 1
    column = offset - (text.rfind(b"\n", 0, offset) + 1) + 1
    return f"malformed JSON: {message[:1].lower()}{message[1:]}", line, column


def _check_range(path: str, name: str, part: tuple[int, int, int], counter: Any, answer: Any) -> None:
    """Worker process: checks bytes ``start:end`` (whole lines) of a file in chunks of
    ``chunk_size`` and sends (records, line breaks, chunks, error) with lines and
    offsets relative to ``start``; ``part`` is (start, end, chunk_size)."""

    def progress(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    start, end, chunk_size = part
    result: tuple[int, int, list[Chunk], tuple[str, int | None] | None]
    try:
        records, breaks, chunks = check_ndjson_mapped(path, name, (start, end), chunk_size, progress)
        result = (records, breaks, chunks, None)
    except InputError as exc:
        result = (0, 0, [], (exc.reason, exc.line))
    except Exception as exc:  # reported by the parent
        result = (0, 0, [], (f"cannot read: {exc}", None))
    answer.send(result)
    answer.close()
    # Leave without the interpreter's exit path: a forked child must not flush the
    # parent's stdio buffers, whose locks another thread (the progress bar) may hold.
    os._exit(0)


def check_ndjson_mapped(
    path: str, name: str, span: tuple[int, int], chunk_size: int, progress: Progress | None = None
) -> tuple[int, int, list[Chunk]]:
    """Checks the lines of ``path`` between the offsets ``span`` (a line start and a
    line end or the end of the file) in place, through a memory map: no copy of
    the file is made. Returns (records, line breaks, chunks of whole lines of at
    most ``chunk_size`` bytes, offsets relative to the span's start); messages count
    lines from the span's start."""
    start, end = span
    records = 0
    line = 1
    chunks: list[Chunk] = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        mapped.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(mapped)
        try:
            position = start
            while position < end:
                cut = mapped.rfind(b"\n", position, min(position + chunk_size, end)) + 1
                if cut <= position:  # a line longer than a chunk: a chunk of its own
                    cut = mapped.find(b"\n", position, end) + 1 or end
                part = view[position:cut]
                try:
                    found, breaks = check_ndjson_segment(part, name, line)
                finally:
                    part.release()
                chunks.append(Chunk(position - start, cut - position, found, breaks))
                records += found
                line += breaks
                if progress is not None:
                    progress(cut - position)
                position = cut
        finally:
            view.release()
    return records, line - 1, chunks


def _check_ndjson_parallel(
    name: str, path: Path, span: tuple[int, int], *, workers: int, options: _Options
) -> tuple[int, list[Chunk]]:
    """Splits a large plain file at line starts and checks the parts in ``workers``
    processes. Line numbers in messages are the file's own."""
    skip, size = span
    bounds = [skip]
    with path.open("rb") as f:
        for k in range(1, workers):
            f.seek(skip + size * k // workers)
            f.readline()
            position = f.tell()
            if bounds[-1] < position < skip + size:
                bounds.append(position)
    bounds.append(skip + size)
    # Fork where there is fork: the workers need nothing but this module, already loaded.
    context: Any = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    counter = context.Value("q", 0)
    parts = []
    for part in itertools.pairwise(bounds):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_check_range, args=(str(path), name, (*part, options.chunk_size), counter, sender), daemon=True
        )
        process.start()
        sender.close()
        parts.append((receiver, process))
    outcomes: dict[Any, tuple[int, int, list[Chunk], tuple[str, int | None] | None]] = {}
    progress = options.progress
    reported = 0
    try:
        while len(outcomes) < len(parts):
            ready: list[Any] = multiprocessing.connection.wait([r for r, _ in parts if r not in outcomes], 0.1)
            for receiver in ready:
                try:
                    outcomes[receiver] = receiver.recv()
                except EOFError:
                    raise InputError(name, "checking the file failed (a worker process died)") from None
            if progress is not None:
                done = counter.value
                progress(done - reported)
                reported = done
    finally:
        for receiver, process in parts:
            receiver.close()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    total = 0
    lines_before = 0
    chunks: list[Chunk] = []
    for (receiver, _), start in zip(parts, bounds, strict=False):
        records, breaks, part_chunks, error = outcomes[receiver]
        if error is not None:
            # Parts are taken in file order: the first error is the first bad line.
            reason, line = error
            raise InputError(name, reason, None if line is None else lines_before + line)
        total += records
        lines_before += breaks
        chunks.extend(c._replace(offset=c.offset + start - skip) for c in part_chunks)
    return total, chunks


# JSON.


def _prepare_json(owner: InputSet, name: str, path: Path, compression: str | None, options: _Options) -> PreparedInput:
    with open_decompressed(path, compression) as stream:
        data = stream.read()
    if options.progress is not None:
        options.progress(len(data))
    if data.startswith(_BOM):
        data = data[3:]
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise InputError(name, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})", line) from None
    stripped = data.lstrip()
    if not stripped:
        raise InputError(name, "empty file, expected a JSON array or document")
    try:
        elements: list[msgspec.Raw] = (
            msgspec.json.decode(data, type=list[msgspec.Raw]) if stripped[:1] == b"[" else [_RAW_DECODER.decode(data)]
        )
    except msgspec.DecodeError as exc:
        raise _json_file_error(name, data, exc) from None
    out_path = owner.temp_path(".ndjson")
    size = 0
    with out_path.open("wb") as out:
        lines: list[bytes] = []
        for element in elements:
            text = bytes(element)
            if b"\n" in text or b"\r" in text:
                text = _compact(text)
            lines.append(text)
            if len(lines) >= 10_000:
                size += _write_lines(out, lines)
        size += _write_lines(out, lines)
    chunks = _spool_chunks(out_path, options.chunk_size)
    return PreparedInput(name, "json", len(elements), size, chunks, out_path, _elements=stripped[:1] == b"[")


def _compact(text: bytes) -> bytes:
    try:
        return orjson.dumps(orjson.loads(text))
    except orjson.JSONDecodeError:
        # Numbers beyond what orjson takes (1e400): outside strings a line break is
        # just whitespace, and inside strings JSON has none, so a space keeps the meaning.
        return text.replace(b"\r", b" ").replace(b"\n", b" ")


def _spool_chunks(path: Path, chunk_size: int) -> list[Chunk]:
    """Chunks of a translated file (one record per line, no blank lines)."""
    chunks = []
    offset = 0
    with path.open("rb") as f:
        for chunk in iter_chunks(f, chunk_size):
            breaks = chunk.count(b"\n")
            chunks.append(Chunk(offset, len(chunk), breaks, breaks))
            offset += len(chunk)
    return chunks


def _write_lines(out: BinaryIO, lines: list[bytes]) -> int:
    if not lines:
        return 0
    chunk = b"\n".join(lines) + b"\n"
    out.write(chunk)
    lines.clear()
    return len(chunk)


def _json_file_error(name: str, data: bytes, exc: msgspec.DecodeError) -> InputError:
    reason, line, column = _json_problem(data, exc)
    reason = f"{reason} at column {column}"
    if "trailing" in reason or "after document" in reason:
        reason += " (one JSON document per line is NDJSON: use --format ndjson or name the file .ndjson)"
    return InputError(name, reason, line)


# CSV.


def _prepare_csv(owner: InputSet, name: str, path: Path, compression: str | None, options: _Options) -> PreparedInput:
    out_path = owner.temp_path(".ndjson")
    source_lines: array[int] = array("Q")
    records = 0
    size = 0
    with open_decompressed(path, compression) as raw:
        counted = io.BufferedReader(_CountingReader(raw, options.progress), buffer_size=1 << 20)
        text = io.TextIOWrapper(counted, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        line = 1
        try:
            header = next(reader, None)
            if header is None or not any(header):
                raise InputError(name, "a CSV file needs a header row", 1)
            if header[0].lstrip().startswith(("{", "[")):
                # No CSV header starts like that: JSON read as CSV would be 0 records, or garbage.
                raise InputError(name, "this is JSON, not CSV: use --format json or --format ndjson", 1)
            seen: set[str] = set()
            for column in header:
                if column in seen:
                    raise InputError(name, f'duplicate column "{column}" in the header row', 1)
                seen.add(column)
            readers = options.csv_types.readers(name, header)
            width = len(header)
            line = reader.line_num + 1
            with out_path.open("wb") as out:
                lines: list[bytes] = []
                dumps = orjson.dumps
                for row in reader:
                    if not row:
                        line = reader.line_num + 1
                        continue
                    if len(row) != width:
                        raise InputError(name, f"expected {width} fields like the header row, found {len(row)}", line)
                    record = dict(zip(header, row, strict=True))
                    if readers:
                        read_row(record, row, readers, name, line)
                    lines.append(dumps(record))
                    source_lines.append(line)
                    line = reader.line_num + 1
                    if len(lines) >= 10_000:
                        records += len(lines)
                        size += _write_lines(out, lines)
                records += len(lines)
                size += _write_lines(out, lines)
        except csv.Error as exc:
            if line == 1 and text_start(path, compression).startswith((b"{", b"[")):
                raise InputError(name, "this is JSON, not CSV: use --format json or --format ndjson", 1) from None
            raise InputError(name, f"malformed CSV: {exc}", line) from None
        except UnicodeDecodeError as exc:
            raise InputError(name, f"not valid UTF-8 ({exc.reason})", line) from None
    chunks = _spool_chunks(out_path, options.chunk_size)
    return PreparedInput(name, "csv", records, size, chunks, out_path, _source_lines=source_lines)


class _CountingReader(io.RawIOBase):
    """Reports bytes read to a progress callback."""

    def __init__(self, inner: IO[bytes], progress: Progress | None) -> None:
        self.inner = inner
        self.progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if self.progress is not None and n:
            self.progress(n)
        return n


def iter_chunks(stream: IO[bytes], size: int, *, limit: int | None = None) -> Iterator[bytes]:
    """Every byte of ``stream`` (at most ``limit``) in chunks of whole lines of at
    most ``size`` bytes; a line longer than ``size`` is a chunk of its own, and the
    last chunk may end without a line break."""
    carry = b""
    remaining = limit
    while True:
        want = max(size - len(carry), 1)
        if remaining is not None:
            want = min(want, remaining)
        block = stream.read(want) if want > 0 else b""
        if remaining is not None:
            remaining -= len(block)
        if not block:
            if carry:
                yield carry
            return
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < size:
                carry = data
                continue
            # One line longer than a chunk: read to its end.
            pieces = [data]
            carry = b""
            while True:
                want = 1 << 20 if remaining is None else min(1 << 20, remaining)
                more = stream.read(want) if want > 0 else b""
                if remaining is not None:
                    remaining -= len(more)
                if not more:
                    break
                newline = more.find(b"\n") + 1
                if newline:
                    pieces.append(more[:newline])
                    carry = more[newline:]
                    break
                pieces.append(more)
            yield b"".join(pieces)
            continue
        carry = data[cut:]
        yield data if cut == len(data) else data[:cut]


def text_start(path: Path, compression: str | None) -> bytes:
    """The first bytes of an input, without leading white space or a BOM."""
    with open_decompressed(path, compression) as raw:
        return raw.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
