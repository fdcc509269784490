"""The catalog: branches, sources, sinks, versions, tasks, tokens
and the config revision, behind a small repository interface
(:class:`~pushstream.catalog.base.Catalog`) with a SQLite implementation and a
PostgreSQL one (:mod:`pushstream.catalog.postgresql`, imported only in cluster
mode, so that one node never loads the PostgreSQL driver)."""

from pushstream.catalog.base import MAX_VERSIONS, Catalog, Reader, Transaction
from pushstream.catalog.models import (
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
from pushstream.catalog.sqlite import SqliteCatalog

#: The file name of the catalog in the data dir.
STATE_FILE = "state.sqlite"

__all__ = [
    "MAX_VERSIONS",
    "STATE_FILE",
    "By",
    "Catalog",
    "Disabled",
    "Event",
    "IngestSink",
    "IngestSource",
    "Reader",
    "Sink",
    "Source",
    "SqliteCatalog",
    "Task",
    "Token",
    "Transaction",
    "Version",
]
