"""Storage levels of pushstream: the data dir layout, and the state of files and
slices shared by the receivers, which write local slices, and the coordinator,
which moves them to staging and imports them into targets.

The lifecycle is :mod:`pushstream.storage.state`, its store's interface
:mod:`pushstream.storage.base` (on SQLite: :mod:`pushstream.storage.sqlite_state`,
picked by :mod:`pushstream.wiring`)."""

from pushstream.storage.base import StorageReader, StorageState, StorageTransaction
from pushstream.storage.layout import Layout, SinkKey, new_id
from pushstream.storage.state import FileRef, FileState, NodeSliceStats, SliceRef, SliceState, WritingSlice

__all__ = [
    "FileRef",
    "FileState",
    "Layout",
    "NodeSliceStats",
    "SinkKey",
    "SliceRef",
    "SliceState",
    "StorageReader",
    "StorageState",
    "StorageTransaction",
    "WritingSlice",
    "new_id",
]
