"""pushstream — self-hosted data streams, wire-compatible with Keboola's Stream API.

The hot path lives in the Rust core (:mod:`pushstream._core`): a sink mapping is
compiled once into a :class:`Mapping`, records are mapped into Keboola CSV rows in
batches, and :class:`SliceWriter` appends rows to durable local slices with eager
group commit. Example::

    from pushstream import Mapping, Record, SliceWriter

    mapping = Mapping([{"type": "datetime", "name": "at"}, {"type": "path", "name": "user", "path": "user.id"}])
    record = Record(b'{"user": {"id": 7}}', headers={"Content-Type": "application/json"}, ip="10.0.0.1")
    mapping.map(record)  # ['2026-11-22T10:00:00.000Z', '7']
    with SliceWriter("slice.csv") as writer:
        writer.write_csv(mapping.encode(record), rows=1)  # returns once the row is on disk
"""

from pushstream._core import (
    EncodedBatch,
    Mapping,
    Record,
    RecoveredSlice,
    SinkSet,
    SliceWriter,
    SyncSettings,
    WriterStats,
    __version__,
    parse_csv,
    recover_slice,
    validate_template,
)
from pushstream.errors import (
    BatchError,
    ConfigError,
    MappingError,
    OtlpError,
    PushstreamError,
    WriterClosedError,
    WriterError,
)

__all__ = [
    "BatchError",
    "ConfigError",
    "EncodedBatch",
    "Mapping",
    "MappingError",
    "OtlpError",
    "PushstreamError",
    "Record",
    "RecoveredSlice",
    "SinkSet",
    "SliceWriter",
    "SyncSettings",
    "WriterClosedError",
    "WriterError",
    "WriterStats",
    "__version__",
    "parse_csv",
    "recover_slice",
    "validate_template",
]
