"""Inputs of ``pushstream ingest``: files and stdin in NDJSON, JSON or CSV, plain or
compressed (gzip, zstd), checked completely before anything is sent.

Every input becomes a stream of NDJSON, one record per line:

- NDJSON passes through unchanged (so a ``body`` column gets the line as it was
  written): each line is checked to be one JSON document, without building Python
  objects (``msgspec`` decodes to ``Raw``), in parallel processes for large files.
- JSON (kamu's format translation): an array becomes one record per element, any
  other document is one record. Elements are passed through; an element written
  over several lines is compacted to one.
- CSV with a header row: one JSON object per row, values as strings, keys in header
  order, like the receiver's ``text/csv`` batches.

JSON and CSV are translated once, into a temporary file; stdin is spooled to a
temporary file first. :meth:`PreparedInput.open` then reads the NDJSON to send.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
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
from typing import IO, Any, BinaryIO

import msgspec
import orjson
import zstandard

from pushstream.client.errors import InputError, UsageError

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


@dataclass
class PreparedInput:
    """One input after checking: what to send and how to name its lines in messages."""

    #: The name used in messages: the path as given, or ``<stdin>``.
    name: str
    format: str
    records: int
    #: Size of the NDJSON stream :meth:`open` returns.
    size: int
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
) -> InputSet:
    """Checks every input completely and returns them ready to send. Raises
    :class:`InputError` at the first problem (naming the input and the line) and
    :class:`UsageError` when the format of a file cannot be told."""
    result = InputSet()
    try:
        if stdin is not None:
            spool = result.temp_path(".stdin")
            with spool.open("wb") as out:
                shutil.copyfileobj(stdin, out, 1 << 20)
            result.inputs.append(_prepare(result, STDIN_NAME, spool, fmt or "ndjson", progress=progress, jobs=jobs))
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
            result.inputs.append(_prepare(result, name, path, chosen, progress=progress, jobs=jobs))
    except BaseException:
        result.close()
        raise
    return result


def _prepare(
    owner: InputSet, name: str, path: Path, fmt: str, *, progress: Progress | None, jobs: int | None
) -> PreparedInput:
    try:
        compression = sniff_compression(path)
        if fmt == "ndjson":
            return _prepare_ndjson(name, path, compression, progress, jobs)
        if fmt == "json":
            return _prepare_json(owner, name, path, compression, progress)
        if fmt == "csv":
            return _prepare_csv(owner, name, path, compression, progress)
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


def _prepare_ndjson(
    name: str, path: Path, compression: str | None, progress: Progress | None, jobs: int | None
) -> PreparedInput:
    skip = 0
    with open_decompressed(path, compression) as stream:
        if stream.read(3) == _BOM:
            skip = 3
    size = path.stat().st_size - skip
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if compression is None and size >= PARALLEL_THRESHOLD and workers > 1:
        records = _check_ndjson_parallel(name, path, (skip, size), workers=workers, progress=progress)
    else:
        with open_decompressed(path, compression) as stream:
            stream.read(skip)
            records, size, _ = check_ndjson_stream(stream, name, progress=progress)
    return PreparedInput(name, "ndjson", records, size, path, compression, skip)


def check_ndjson_stream(
    stream: IO[bytes], name: str, *, progress: Progress | None = None, limit: int | None = None
) -> tuple[int, int, int]:
    """Checks that every non-blank line is one JSON document; returns (records, bytes
    read, line breaks read). Reads at most ``limit`` bytes. Raises :class:`InputError`
    naming the line (counted from the first line read)."""
    records = 0
    total = 0
    line = 1
    carry = b""
    remaining = limit
    while True:
        want = BLOCK_SIZE if remaining is None else min(BLOCK_SIZE, remaining)
        block = stream.read(want) if want > 0 else b""
        if remaining is not None:
            remaining -= len(block)
        total += len(block)
        if not block:
            if carry:
                records += check_ndjson_segment(carry, name, line)[0]
            return records, total, line - 1
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            carry += block
        else:
            segment = carry + block[:cut] if carry else block[:cut]
            carry = block[cut:]
            found, breaks = check_ndjson_segment(segment, name, line)
            records += found
            line += breaks
        if progress is not None:
            progress(len(block))


def check_ndjson_segment(segment: bytes, name: str, first_line: int) -> tuple[int, int]:
    """Checks whole lines of NDJSON; returns (records (non-blank lines), line breaks)."""
    if not segment.isascii():
        try:
            segment.decode("utf-8")
        except UnicodeDecodeError as exc:
            start = segment.rfind(b"\n", 0, exc.start) + 1
            raise InputError(
                name,
                f"not valid UTF-8 (byte 0x{segment[exc.start]:02x} at column {exc.start - start + 1})",
                first_line + segment.count(b"\n", 0, exc.start),
            ) from None
    lines = segment.split(b"\n")
    decode = _RAW_DECODER.decode
    try:
        for text in lines:
            if text:
                decode(text)
    except msgspec.DecodeError:
        # Rare: a blank line of whitespace, or a bad line. Walk again, naming the line.
        records = 0
        for index, text in enumerate(lines):
            if not text.strip():
                continue
            try:
                decode(text)
            except msgspec.DecodeError as exc:
                raise InputError(name, _json_reason(text, exc), first_line + index) from None
            records += 1
        return records, len(lines) - 1
    return len(lines) - lines.count(b""), len(lines) - 1


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


def _check_range(path: str, name: str, span: tuple[int, int], counter: Any, answer: Any) -> None:
    """Worker process: checks bytes ``start:end`` (whole lines) of a file and sends
    (records, line breaks, error) with line numbers relative to ``start``."""

    def progress(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    start, end = span
    result: tuple[int, int, tuple[str, int | None] | None]
    try:
        with open(path, "rb") as f:
            f.seek(start)
            records, _, breaks = check_ndjson_stream(f, name, progress=progress, limit=end - start)
        result = (records, breaks, None)
    except InputError as exc:
        result = (0, 0, (exc.reason, exc.line))
    except Exception as exc:  # reported by the parent
        result = (0, 0, (f"cannot read: {exc}", None))
    answer.send(result)
    answer.close()
    # Leave without the interpreter's exit path: a forked child must not flush the
    # parent's stdio buffers, whose locks another thread (the progress bar) may hold.
    os._exit(0)


def _check_ndjson_parallel(
    name: str, path: Path, span: tuple[int, int], *, workers: int, progress: Progress | None
) -> int:
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
        process = context.Process(target=_check_range, args=(str(path), name, part, counter, sender), daemon=True)
        process.start()
        sender.close()
        parts.append((receiver, process))
    outcomes: dict[Any, tuple[int, int, tuple[str, int | None] | None]] = {}
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
    for receiver, _ in parts:
        records, breaks, error = outcomes[receiver]
        if error is not None:
            # Parts are taken in file order: the first error is the first bad line.
            reason, line = error
            raise InputError(name, reason, None if line is None else lines_before + line)
        total += records
        lines_before += breaks
    return total


# JSON.


def _prepare_json(
    owner: InputSet, name: str, path: Path, compression: str | None, progress: Progress | None
) -> PreparedInput:
    with open_decompressed(path, compression) as stream:
        data = stream.read()
    if progress is not None:
        progress(path.stat().st_size)
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
    return PreparedInput(name, "json", len(elements), size, out_path, _elements=stripped[:1] == b"[")


def _compact(text: bytes) -> bytes:
    try:
        return orjson.dumps(orjson.loads(text))
    except orjson.JSONDecodeError:
        # Numbers beyond what orjson takes (1e400): outside strings a line break is
        # just whitespace, and inside strings JSON has none, so a space keeps the meaning.
        return text.replace(b"\r", b" ").replace(b"\n", b" ")


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


def _prepare_csv(
    owner: InputSet, name: str, path: Path, compression: str | None, progress: Progress | None
) -> PreparedInput:
    out_path = owner.temp_path(".ndjson")
    source_lines: array[int] = array("Q")
    records = 0
    size = 0
    with open_decompressed(path, compression) as raw:
        counted = io.BufferedReader(_CountingReader(raw, progress), buffer_size=1 << 20)
        text = io.TextIOWrapper(counted, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        line = 1
        try:
            header = next(reader, None)
            if header is None or not any(header):
                raise InputError(name, "a CSV file needs a header row", 1)
            seen: set[str] = set()
            for column in header:
                if column in seen:
                    raise InputError(name, f'duplicate column "{column}" in the header row', 1)
                seen.add(column)
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
                    lines.append(dumps(dict(zip(header, row, strict=True))))
                    source_lines.append(line)
                    line = reader.line_num + 1
                    if len(lines) >= 10_000:
                        records += len(lines)
                        size += _write_lines(out, lines)
                records += len(lines)
                size += _write_lines(out, lines)
        except csv.Error as exc:
            raise InputError(name, f"malformed CSV: {exc}", line) from None
        except UnicodeDecodeError as exc:
            raise InputError(name, f"not valid UTF-8 ({exc.reason})", line) from None
    return PreparedInput(name, "csv", records, size, out_path, _source_lines=source_lines)


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


def iter_batches(stream: IO[bytes], batch_size: int) -> Iterator[tuple[bytes, int]]:
    """Whole lines of ``stream`` in batches of at most ``batch_size`` bytes (a single
    longer line is a batch of its own); yields (batch, lines in it)."""
    carry = b""
    while True:
        block = stream.read(max(batch_size - len(carry), 1))
        if not block:
            if carry.strip():
                yield carry, carry.count(b"\n") + (0 if carry.endswith(b"\n") else 1)
            return
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < batch_size:
                carry = data
                continue
            # One line longer than a batch: read to its end and send it alone.
            rest = stream.readline()
            data += rest
            yield data, 1
            carry = b""
            continue
        carry = data[cut:]
        yield data[:cut], data.count(b"\n", 0, cut)
