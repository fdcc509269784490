"""Type stubs of the Rust core (``rust/python``). Checked by ``python -m mypy.stubtest pushstream._core``."""

import os
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingABC
from typing import Any, Final, Literal, TypeAlias, TypeVar, final

from pushstream.errors import MappingError

__version__: str

#: The column types a mapping compiles, as the Stream API names them (``id`` is ``uuid`` by another name).
COLUMN_TYPES: Final[tuple[str, ...]]
#: The data types of typed columns (``dataType``), ``string`` (untyped, the default) first.
DATA_TYPES: Final[tuple[str, ...]]

SinkOutcome: TypeAlias = Literal[
    "processed",
    "accepted",
    "malformed_body",
    "unsupported_content_type",
    "missing_value",
    "template",
    "row_too_large",
    "invalid_value",
    "writer_closed",
    "disk_full",
    "writer_failed",
]
"""What happened to a request in one sink (:meth:`SinkSet.ingest`): ``processed`` (written and
synced), ``accepted`` (written, the sync not waited for), why a record could not be mapped
(the ``kind`` of a :class:`pushstream.MappingError`, ``row_too_large`` included), or why the
slice writer refused the rows (``writer_closed``: the slice rotated meanwhile; ``disk_full``;
``writer_failed``)."""

#: Every :data:`SinkOutcome`, as the core names them.
SINK_OUTCOMES: Final[tuple[SinkOutcome, ...]]

#: Default largest record (a body, an NDJSON line, a CSV row as JSON), in bytes: 1MB, Keboola's default.
DEFAULT_MAX_RECORD_BYTES: Final[int]
#: Largest record limit a server may be configured with, in bytes (4MB).
MAX_RECORD_BYTES_LIMIT: Final[int]
#: Default largest batch request (NDJSON, CSV), in bytes (16MB).
DEFAULT_MAX_BATCH_BYTES: Final[int]
#: Default largest CSV row one record may map to in one sink, in bytes (8MB).
DEFAULT_MAX_ROW_BYTES: Final[int]

_Headers: TypeAlias = MappingABC[str, str] | Iterable[tuple[str, str]]
_CsvValue: TypeAlias = str | int | float | bool | None

@final
class Record:
    """One event: body bytes, request headers, client IP and receive time.

    Header names are canonicalised (``content-type`` → ``Content-Type``) and sorted;
    repeated headers are joined with ``", "``. Without ``headers`` the body is JSON
    (``Content-Type: application/json``); give ``headers`` (``{}`` for none) to say
    otherwise. ``received_at_ns`` defaults to now.
    """

    def __new__(
        cls, body: bytes, headers: _Headers | None = None, ip: str = "", received_at_ns: int | None = None
    ) -> Record: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def ip(self) -> str: ...
    @property
    def received_at_ns(self) -> int: ...
    @property
    def datetime(self) -> str:
        """Receive time as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC)."""
    @property
    def content_type(self) -> str | None: ...

@final
class EncodedBatch:
    """Rows of a batch as Keboola CSV, plus ``(index, MappingError)`` of the records that failed."""

    @property
    def csv(self) -> bytes: ...
    @property
    def rows(self) -> int: ...
    @property
    def errors(self) -> list[tuple[int, MappingError]]: ...

@final
class Mapping:
    """A sink mapping compiled once from column definitions (the Stream API's
    ``table.mapping.columns``, as a list of dicts or a JSON string).

    Raises :class:`pushstream.ConfigError` for an invalid definition.
    """

    def __new__(cls, columns: str | Sequence[MappingABC[str, Any]]) -> Mapping: ...
    @property
    def column_names(self) -> list[str]: ...
    @property
    def column_types(self) -> list[tuple[str, str]]: ...
    @property
    def data_types(self) -> list[str]:
        """The ``dataType`` of every column (``"string"`` for an untyped column)."""
    @property
    def nullable(self) -> list[bool]:
        """Whether each column takes NULL (``nullable``, default true; only typed columns write NULL)."""
    @property
    def primary_key(self) -> list[str]: ...
    @property
    def needs_parsed_body(self) -> bool:
        """Whether a column reads the parsed body (``path``, ``template``)."""
    @property
    def needs_headers(self) -> bool:
        """Whether a column may read request headers other than ``Content-Type`` (``headers``,
        ``template``): without one, :meth:`SinkSet.ingest` needs only the ``Content-Type``."""
    @property
    def columns_json(self) -> str: ...
    def map(self, record: Record | dict[str, Any]) -> list[str]:
        """The row of one record as strings (the NULL of a typed column is ``""``);
        a ``dict`` is an event as a JSON object, received now. Raises
        :class:`pushstream.MappingError`."""
    def encode(self, record: Record | dict[str, Any]) -> bytes:
        """One record (or ``dict``) as one Keboola CSV row; raises :class:`pushstream.MappingError`."""
    def encode_batch(self, records: Iterable[Record | dict[str, Any]]) -> EncodedBatch:
        """Many records (or ``dict`` s) in one call, with the GIL released while mapping."""

@final
class SinkSet:
    """The enabled sinks of one source, ready to take requests: ``(sink_id, mapping, writer)``."""

    def __new__(cls, sinks: Sequence[tuple[str, Mapping, SliceWriter]]) -> SinkSet: ...
    @property
    def sink_ids(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def ingest(
        self,
        body: bytes,
        *,
        headers: _Headers | None = None,
        environ: dict[str, Any] | None = None,
        ip: str = "",
        received_at_ns: int | None = None,
        max_record_bytes: int | None = None,
        max_row_bytes: int | None = None,
    ) -> tuple[int, list[tuple[str, SinkOutcome, int, str]]]:
        """Take one request (one record, or a batch: see :func:`is_batch_content_type`) into every sink.

        Returns ``(records, outcomes)``, one ``(sink_id, outcome, rows, message)`` per sink (see
        :data:`SinkOutcome`). Raises :class:`pushstream.BatchError` for a batch
        that cannot be taken (nothing is written), with ``too_large`` set when a record of it is
        larger than ``max_record_bytes`` (default :data:`DEFAULT_MAX_RECORD_BYTES`). A record that
        maps to a row larger than ``max_row_bytes`` (default :data:`DEFAULT_MAX_ROW_BYTES`) in a
        sink fails that sink with ``row_too_large``. The GIL is released for all the work.
        """

    def ingest_otlp(
        self,
        body: bytes,
        signal: Literal["logs", "metrics", "traces"],
        encoding: Literal["protobuf", "json"],
        *,
        gzip: bool = False,
        headers: _Headers | None = None,
        environ: dict[str, Any] | None = None,
        ip: str = "",
        received_at_ns: int | None = None,
        max_body_bytes: int | None = None,
        max_record_bytes: int | None = None,
        max_row_bytes: int | None = None,
    ) -> tuple[int, list[tuple[str, SinkOutcome, int, str]]]:
        """Take one OpenTelemetry request (OTLP/HTTP, ``signal`` from its path) into every sink.

        The body is decompressed when ``gzip``, decoded from ``encoding`` and flattened into one
        JSON record per log record, metric data point or span (``docs/otlp.md``); every sink maps
        and writes them like an NDJSON batch. Returns ``(records, outcomes)`` as :meth:`ingest`.
        Raises :class:`pushstream.OtlpError` when the body cannot be taken (nothing is written):
        malformed, or over ``max_body_bytes`` (default :data:`DEFAULT_MAX_BATCH_BYTES`, also once
        decompressed) or a flattened record over ``max_record_bytes`` (``too_large``).
        """

@final
class SyncSettings:
    """``storage.level.local.encoding.sync.*``: mode ``disk`` (fdatasync) or ``cache``
    (write only), whether writes wait for the sync, and the triggers (seconds, rows,
    bytes) that bound how long rows of writers that do not wait stay in memory."""

    def __new__(
        cls,
        mode: str = "disk",
        wait: bool = True,
        check_interval: float = 0.005,
        count_trigger: int = 10000,
        bytes_trigger: int = 1048576,
        interval_trigger: float = 0.05,
    ) -> SyncSettings: ...
    @property
    def mode(self) -> str: ...
    @property
    def wait(self) -> bool: ...
    @property
    def check_interval(self) -> float: ...
    @property
    def count_trigger(self) -> int: ...
    @property
    def bytes_trigger(self) -> int: ...
    @property
    def interval_trigger(self) -> float: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class WriterStats:
    """Counters of a slice since it was opened (recovered rows included)."""

    @property
    def rows(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def synced_rows(self) -> int: ...
    @property
    def synced_bytes(self) -> int: ...
    @property
    def syncs(self) -> int:
        """Write (+ fdatasync) rounds so far; rows per round shows the group commit at work."""
    @property
    def first_record_ns(self) -> int | None: ...
    @property
    def last_record_ns(self) -> int | None: ...

@final
class RecoveredSlice:
    """What reopening a slice found: whole rows kept and bytes of a torn row cut off."""

    @property
    def rows(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def truncated(self) -> int: ...

@final
class SliceWriter:
    """An append-only slice file with eager group commit. Opening an existing file
    cuts off a torn trailing row first (see :attr:`recovered`)."""

    def __new__(cls, path: str | os.PathLike[str], settings: SyncSettings | None = None) -> SliceWriter: ...
    @property
    def path(self) -> str: ...
    @property
    def settings(self) -> SyncSettings: ...
    @property
    def recovered(self) -> RecoveredSlice: ...
    @property
    def stats(self) -> WriterStats: ...
    @property
    def closed(self) -> bool: ...
    def write(self, rows: Iterable[Iterable[_CsvValue]], record_time_ns: int | None = None) -> int:
        """Encode rows of values and append them; returns the number of rows.

        Strings are written as is, numbers in shortest form, booleans as
        ``true``/``false`` and ``None`` as an empty field. With ``wait`` the call
        returns once the rows are synced (the GIL is released while waiting).
        """
    def write_csv(self, data: bytes, rows: int, record_time_ns: int | None = None) -> int:
        """Append rows that are already Keboola CSV (whole rows only)."""
    def flush(self) -> None: ...
    def close(self) -> WriterStats: ...
    def __enter__(self) -> SliceWriter: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...

@final
class WriterTotals:
    """Counters of every slice writer of this process since it started."""

    @property
    def rows(self) -> int:
        """Rows written to slice files."""
    @property
    def bytes(self) -> int:
        """Bytes written to slice files."""
    @property
    def rounds(self) -> int:
        """Group-commit rounds written (one ``write`` each)."""
    @property
    def fsyncs(self) -> int:
        """``fdatasync`` calls completed."""
    @property
    def fsync_seconds(self) -> float:
        """Total seconds of those calls."""
    @property
    def fsync_buckets(self) -> list[tuple[float, int]]:
        """``(upper bound in seconds, count)`` per bucket, not cumulative; the last bound is ``inf``."""

def writer_totals() -> WriterTotals:
    """The totals of every slice writer of this process so far (read by the metrics at scrape time)."""

def recover_slice(path: str | os.PathLike[str]) -> RecoveredSlice:
    """Cut a torn trailing row off a slice file in place."""

def parse_csv(data: bytes) -> list[list[str]]:
    """Decode Keboola CSV into rows of strings."""

def check_ndjson(text: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Check that every non-blank line of an NDJSON text is one JSON document as a
    source parses it; return (records, line breaks).

    Raises :class:`pushstream.errors.BatchError` naming the first bad line (1-based).
    """

def otlp_response(
    signal: Literal["logs", "metrics", "traces"],
    encoding: Literal["protobuf", "json"],
    rejected: int = 0,
    message: str = "",
) -> bytes:
    """The OTLP ``Export{Logs,Metrics,Trace}ServiceResponse`` in ``encoding``: empty when nothing was
    rejected, else with ``partial_success`` (``rejected`` records and ``message``)."""

def is_batch_content_type(content_type: str | None) -> bool:
    """Whether a request with this ``Content-Type`` is a batch of records, as :meth:`SinkSet.ingest`
    splits it: ``application/x-ndjson`` (or ``application/ndjson``, ``application/jsonl``,
    ``application/x-jsonlines``) or ``text/csv``, in any case, parameters ignored."""

_P = TypeVar("_P", bound=str | os.PathLike[str])

def interleave_parts(parts: Sequence[tuple[_P, int]]) -> list[tuple[_P, int, int]]:
    """The byte ranges of the node parts of one slice in the order their rows were received.

    Takes ``(path, length)`` per part (its length after :func:`recover_slice`) and returns
    ``(path, start, end)`` ranges, ``path`` being the object given, read from each part's
    ``.idx`` (written by :class:`SliceWriter`). Ranges are ordered by receive time, then by
    the order of the parts given, then by position in the part; consecutive ranges of one part
    are merged. Rows that the index does not cover (its tail is lost after a power loss) keep
    their place after the part's last indexed append. A missing index reads as empty; an index
    that cannot be read raises :class:`OSError`. The GIL is released while reading.
    """

def validate_template(content: str) -> str | None:
    """Check the content of a Jsonnet ``template`` column without compiling a mapping.

    Returns ``None`` when the template is valid, otherwise the message to show the
    user: a length outside 1–4096 characters, a syntax error (``syntax error at
    line L, column C: ...``) or an unknown variable (``error at line L, column C:
    ...``). Never raises for invalid content.

    Templates see the globals ``Ip()``, ``Body([path[, default]])``, ``BodyStr()``,
    ``Header([name[, default]])``, ``HeaderStr()`` and ``Now([format])``; imports are
    disabled. ``Now(format)`` is ``strftime`` on the record time (UTC) with ``%f``
    meaning milliseconds.
    """
