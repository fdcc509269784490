"""Storage levels of pushstream: the data dir layout, and the state of files and
slices (``state.sqlite``) shared by the receivers, which write local slices, and
the coordinator, which moves them to staging and imports them into targets."""

from pushstream.storage.layout import Layout, SinkKey, new_id
from pushstream.storage.state import NodeSliceStats, SliceRef, StorageState, WritingSlice

__all__ = ["Layout", "NodeSliceStats", "SinkKey", "SliceRef", "StorageState", "WritingSlice", "new_id"]
