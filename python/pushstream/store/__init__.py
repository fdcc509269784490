"""The configuration store: branches, sources, sinks, versions, tasks, tokens
and the config revision, behind a small repository interface
(:class:`~pushstream.store.base.ConfigStore`) with a SQLite implementation."""

from pushstream.store.base import MAX_VERSIONS, ConfigStore, Reader, Transaction
from pushstream.store.models import (
    By,
    Disabled,
    Event,
    IngestSink,
    IngestSource,
    Sink,
    Source,
    Task,
    Token,
    Version,
)
from pushstream.store.sqlite import SqliteStore

#: The file name of the store in the data dir.
STATE_FILE = "state.sqlite"

__all__ = [
    "MAX_VERSIONS",
    "STATE_FILE",
    "By",
    "ConfigStore",
    "Disabled",
    "Event",
    "IngestSink",
    "IngestSource",
    "Reader",
    "Sink",
    "Source",
    "SqliteStore",
    "Task",
    "Token",
    "Transaction",
    "Version",
]
