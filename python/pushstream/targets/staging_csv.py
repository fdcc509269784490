"""Staging files read into Arrow, for every target: zstd (or gzip) Keboola CSV
as one table of string columns (:func:`read_staging`) or as a stream of record
batches parsed while the database writes the previous ones (:class:`StagingStream`),
and the typed columns' canonical text converted to Arrow types (:class:`Conversion`)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import zstandard

from pushstream.targets.base import EventRange, TargetError, format_names

# Large blocks keep the number of chunks (and so of bind/COPY batches) small;
# pyarrow still parses blocks in parallel.
_BLOCK_SIZE = 16 << 20
#: pyarrow cannot parse a row longer than its block. A row that does not fit
#: (a huge body or template result) makes the reader try again with blocks this
#: many times larger, up to the largest block pyarrow takes (its block size is a
#: 32-bit int): so any row the receiver can accept is read, whatever its length.
_BLOCK_GROWTH = 4
_MAX_BLOCK_SIZE = 1 << 30


def _row_too_long(exc: BaseException) -> bool:
    """Whether pyarrow failed because a row is longer than its block."""
    return isinstance(exc, pa.ArrowInvalid) and "straddl" in str(exc)


def _larger_block(block_size: int, exc: BaseException) -> int:
    """The next block size to try after ``exc``, or 0 when a larger one cannot help."""
    if not _row_too_long(exc) or block_size >= _MAX_BLOCK_SIZE:
        return 0
    return min(block_size * _BLOCK_GROWTH, _MAX_BLOCK_SIZE)


class _Source:
    """A decompressing reader of one staging file that remembers its last two
    bytes: a Keboola CSV file ends with ``"\n``, anything else is a torn or
    truncated file (which the CSV parser alone would read as a last row).

    A plain object with ``read``: pyarrow pulls large blocks from it, and an
    ``io.RawIOBase`` would add a copy per block (measured 2x slower)."""

    def __init__(self, path: Path) -> None:
        self.raw = path.open("rb")
        name = path.name
        if name.endswith((".zst", ".zstd")):
            # read_across_frames: slices of several nodes are concatenated frames.
            self.inner: Any = zstandard.ZstdDecompressor().stream_reader(self.raw, read_across_frames=True)
        elif name.endswith(".gz"):
            self.inner = gzip.GzipFile(fileobj=self.raw, mode="rb")
        else:
            self.inner = self.raw
        self.tail = b""
        self.size = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.inner.read(size)
        if data:
            self.size += len(data)
            self.tail = (self.tail + data[-2:])[-2:]
        return data

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self.inner is not self.raw:
                self.inner.close()
        finally:
            self.raw.close()

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_options(names: list[str], block_size: int) -> tuple[Any, Any, Any]:
    read_options = pacsv.ReadOptions(column_names=names, block_size=block_size)
    parse_options = pacsv.ParseOptions(
        delimiter=",", quote_char='"', double_quote=True, escape_char=False, newlines_in_values=True
    )
    convert_options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
        check_utf8=True,
    )
    return read_options, parse_options, convert_options


def _file_error(path: Path, names: list[str], exc: BaseException) -> TargetError:
    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, pa.ArrowInvalid):
        return TargetError(f'staging file "{path}" is not CSV with columns {format_names(names)}: {exc}')
    return TargetError(f'cannot read staging file "{path}": {exc}')


_READ_ERRORS = (OSError, pa.ArrowException, zstandard.ZstdError, EOFError)


def _check_tail(path: Path, source: _Source) -> None:
    if source.size and source.tail != b'"\n':
        raise TargetError(f'staging file "{path}" ends inside a row (torn or truncated)')


def read_staging(paths: Sequence[Path], columns: Sequence[str]) -> pa.Table:
    """Reads staging files (Keboola CSV: every field quoted, ``"`` doubled, no header,
    UTF-8, newlines allowed inside fields; zstd or gzip by suffix, concatenated
    frames allowed) into one table of string columns named ``columns``.

    An empty field is an empty string, never null. A file that is not such CSV
    (wrong number of fields, bad UTF-8, torn last row) raises
    :class:`TargetError` naming the file."""
    names = list(columns)
    schema = pa.schema([(name, pa.string()) for name in names])
    tables = []
    for path in paths:
        table = _read_file(path, names)
        if table is not None:
            tables.append(table.cast(schema))
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _read_file(path: Path, names: list[str]) -> pa.Table | None:
    """One staging file as a table (``None`` when empty), with blocks large
    enough for its longest row."""
    block_size = _BLOCK_SIZE
    while True:
        read_options, parse_options, convert_options = _csv_options(names, block_size)
        try:
            with _Source(path) as source:
                table = pacsv.read_csv(
                    source, read_options=read_options, parse_options=parse_options, convert_options=convert_options
                )
                _check_tail(path, source)
            return table
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                return None
            block_size = _larger_block(block_size, exc)
            if not block_size:
                raise _file_error(path, names, exc) from exc
        except _READ_ERRORS as exc:
            raise _file_error(path, names, exc) from exc


class StagingStream:
    """The rows of staging files as a stream of record batches, parsed while the
    consumer (an ADBC bulk ingest) writes the previous ones, so reading and
    writing overlap on two cores. Same format and checks as :func:`read_staging`.

    After the stream was consumed, :attr:`rows` is the number of rows. When the
    consumer fails because the stream did, :attr:`error` holds the
    :class:`TargetError` to raise instead of the consumer's wrapped error."""

    # Smaller blocks than read_staging: the first batch reaches the writer sooner.
    BLOCK_SIZE = 1 << 20

    def __init__(self, paths: Sequence[Path], columns: Sequence[str]) -> None:
        self.paths = list(paths)
        self.names = list(columns)
        self.schema = pa.schema([(name, pa.string()) for name in self.names])
        self.rows = 0
        self.error: TargetError | None = None

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for path in self.paths:
            yield from self._file_batches(path)

    def _file_batches(self, path: Path) -> Iterator[pa.RecordBatch]:
        block_size = self.BLOCK_SIZE
        # Rows of this file already handed on: after a row too long for the
        # block, the file is read again with larger blocks from its start, and
        # these rows are skipped (pyarrow's skip_rows counts lines, not rows).
        done = 0
        while True:
            read_options, parse_options, convert_options = _csv_options(self.names, block_size)
            try:
                with _Source(path) as source:
                    try:
                        reader = pacsv.open_csv(
                            source,
                            read_options=read_options,
                            parse_options=parse_options,
                            convert_options=convert_options,
                        )
                    except pa.ArrowInvalid as exc:
                        if "Empty CSV file" in str(exc):
                            return
                        raise
                    skip = done
                    for batch in reader:
                        if skip:
                            if batch.num_rows <= skip:
                                skip -= batch.num_rows
                                continue
                            batch = batch.slice(skip)  # noqa: PLW2901
                            skip = 0
                        done += batch.num_rows
                        self.rows += batch.num_rows
                        yield batch
                    _check_tail(path, source)
                return
            except (TargetError, *_READ_ERRORS) as exc:
                block_size = _larger_block(block_size, exc)
                if block_size:
                    continue
                self.error = _file_error(path, self.names, exc)
                raise self.error from exc


#: The Arrow type each data type is loaded as. ``json`` is text here; a target
#: may ask for Arrow's json extension type instead (:class:`Conversion`'s
#: ``json_type``: the PostgreSQL driver copies it into jsonb).
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "json": pa.string(),
}


class Conversion:
    """The staged text of typed columns (the core's canonical text, see
    docs/tables.md) as Arrow values of the column's type, built once per import.

    An empty field of a typed column is NULL; ``string`` columns pass through
    untouched (an empty field stays an empty string). ``text_types`` are data
    types the target stores as their canonical text (SQLite: timestamp, date,
    json): their values are checked by the same cast but loaded as text.
    ``json_type`` is the Arrow type of json columns: text, or Arrow's json
    extension type over text (``pa.json_()``, which ADBC's PostgreSQL driver
    copies into jsonb: measured ~3x faster than text staged and cast in SQL).

    ``event_time`` names the event-time column (a timestamp column): every
    value converted is folded into :attr:`event_range`, the min and max over
    the rows converted so far (Arrow's ``min_max`` on the typed column, one
    call per batch)."""

    def __init__(
        self,
        names: Sequence[str],
        data_types: Sequence[str],
        text_types: Sequence[str] = (),
        json_type: pa.DataType | None = None,
        event_time: str | None = None,
    ) -> None:
        self.names = list(names)
        self.data_types = list(data_types)
        self.text_types = frozenset(text_types) | {"string"}
        self.json_type = json_type if json_type is not None else pa.string()
        self.typed = [i for i, t in enumerate(self.data_types) if t != "string"]
        self.event_time_index = self.names.index(event_time) if event_time is not None else None
        #: Min and max of the event-time column over the rows converted so far
        #: (microseconds since the epoch), ``None`` before any non-null value.
        self.event_range: EventRange | None = None
        #: The conversion error of :meth:`reader`'s batches (the consumer, a
        #: database driver, reports its own error instead).
        self.error: TargetError | None = None
        self.schema = pa.schema(
            [
                (name, pa.string() if t in self.text_types else self.json_type if t == "json" else ARROW_TYPES[t])
                for name, t in zip(self.names, self.data_types, strict=True)
            ]
        )

    def __bool__(self) -> bool:
        """Whether any column needs converting."""
        return bool(self.typed)

    def _column(self, i: int, text: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        data_type = self.data_types[i]
        # Empty field → NULL: the core writes "" for a NULL of a typed column.
        values = pc.if_else(pc.equal(pc.utf8_length(text), 0), pa.scalar(None, pa.string()), text)
        if data_type == "json":
            if data_type in self.text_types or self.json_type == pa.string():
                return values
            if isinstance(values, pa.ChunkedArray):
                chunks = [pa.ExtensionArray.from_storage(self.json_type, c) for c in values.chunks]
                return pa.chunked_array(chunks, type=self.json_type)
            return pa.ExtensionArray.from_storage(self.json_type, values)
        try:
            converted = pc.cast(values, ARROW_TYPES[data_type])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            self.error = TargetError(
                f'staged column "{self.names[i]}" has a value that is not {data_type}: {str(exc).splitlines()[0]}'
            )
            raise self.error from exc
        if i == self.event_time_index:
            self._fold_event_range(converted)
        return values if data_type in self.text_types else converted

    def _fold_event_range(self, times: pa.Array | pa.ChunkedArray) -> None:
        found = pc.min_max(times.cast(pa.int64()))
        low, high = found["min"].as_py(), found["max"].as_py()
        if low is None or high is None:
            return
        self.event_range = EventRange(low, high).union(self.event_range)

    def table(self, table: pa.Table) -> pa.Table:
        """``table`` (string columns named as :attr:`names`, maybe more after
        them) with every typed column converted."""
        for i in self.typed:
            table = table.set_column(i, self.schema.field(i), self._column(i, table.column(i)))
        return table

    def batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One record batch of string columns, converted."""
        if not self.typed:
            return batch
        arrays = list(batch.columns)
        for i in self.typed:
            arrays[i] = self._column(i, arrays[i])
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def reader(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """A stream of string batches, converted batch by batch as it is read."""
        if not self.typed:
            return reader
        return pa.RecordBatchReader.from_batches(self.schema, (self.batch(b) for b in reader))
