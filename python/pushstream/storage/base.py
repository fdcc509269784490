"""The interface of the storage state: the one owner of the lifecycle of files and
slices (:mod:`pushstream.storage.state`), of the nodes that write them, and of the
queries the coordinator, the receivers and the statistics need.

:class:`SqliteStorageState <pushstream.storage.sqlite_state.SqliteStorageState>`
implements it on ``state.sqlite``, :class:`PgStorageState
<pushstream.storage.pg_state.PgStorageState>` on the PostgreSQL control plane of a
cluster; another database only needs another implementation of these three
protocols (:mod:`pushstream.wiring` picks one).
Callers hold the policy — when to rotate, when to retry and how long to back off
— and never see the database.

Transitions happen in a :class:`StorageTransaction`: from
:meth:`StorageState.atomic`, or bound to a catalog change
(:meth:`pushstream.catalog.base.Transaction.storage`), so that a sink change and
the change of its files and slices commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from pushstream.storage.layout import SinkKey
from pushstream.storage.state import (
    FileRecord,
    FileRef,
    FileStatus,
    ImportableFile,
    LevelCounts,
    NodeSliceStats,
    SinkStateSummary,
    SliceNodes,
    SliceRef,
    WritingSlice,
    WritingSliceTotals,
)


class StorageReader(Protocol):
    """Reads available on the storage state and inside a transaction."""

    def revision(self) -> int:
        """The storage revision: increases with every change of where receivers write."""
        ...

    def writing_slice(self, sink: SinkKey) -> WritingSlice | None:
        """The sink's writing slice (and its file), if it has one."""
        ...

    def file_states(self, files: Sequence[tuple[SinkKey, str]]) -> list[FileStatus]:
        """Where each of ``files`` is, in order."""
        ...


class StorageTransaction(StorageReader, Protocol):
    """The transitions of files and slices; all of one transaction commit together.
    Each raises :class:`~pushstream.errors.IllegalTransitionError` when the file or
    slice is not in a state it may leave that way."""

    # Where receivers write (the hooks of config changes, receivers, rotation).

    def open_file(self, sink: SinkKey, table_id: str, columns_json: str) -> WritingSlice:
        """Opens a new writing file with its first slice; the sink must have none."""
        ...

    def ensure_writing(self, sink: SinkKey, table_id: str, columns_json: str) -> WritingSlice:
        """The sink's writing slice; opens a file when there is none, or when the
        writing file was opened for other columns or another table (its data is
        imported with the columns it was written with)."""
        ...

    def rotate_slice(self, sink: SinkKey) -> WritingSlice | None:
        """Closes the writing slice and opens the next one in the same file."""
        ...

    def close_file(self, sink: SinkKey) -> str | None:
        """Closes the writing file (and its writing slice) without opening a new one;
        returns its id. The coordinator imports it once its slices are uploaded."""
        ...

    def rotate_file(self, sink: SinkKey) -> WritingSlice | None:
        """Closes the writing file and opens a new one for the same table and columns."""
        ...

    def flush(
        self, branch_id: int | None = None, source_id: str | None = None, sink_id: str | None = None
    ) -> list[tuple[SinkKey, str]]:
        """Closes the writing files of the matching sinks (a new one opens for each)
        and clears the backoff of files waiting for a retry, so that the coordinator
        imports everything now; returns (sink, file id) of every file that must be
        imported for the flush to be complete."""
        ...

    # The coordinator's steps.

    def mark_uploaded(self, ref: SliceRef, records: int, uncompressed_size: int, compressed_size: int) -> None:
        """A closing slice is in staging (``records`` rows); its file moves on to
        importing when this was its last slice not uploaded."""
        ...

    def mark_part_uploaded(
        self, ref: SliceRef, node_id: str, records: int, uncompressed_size: int, compressed_size: int
    ) -> bool:
        """With shared staging: one node's part of a closing slice is in the store
        (``records`` rows). The slice moves on to uploaded (with the totals of its
        parts) when every node that wrote to it has uploaded its part; whether it did.
        A part of a node that never reported the slice makes that node one of its writers."""
        ...

    def ready_if_uploaded(self, file: FileRef) -> bool:
        """Moves a closing file whose slices are all uploaded on to importing;
        whether it did."""
        ...

    def mark_imported(
        self,
        file: FileRef,
        rejected_records: int,
        first_event_ns: int | None = None,
        last_event_ns: int | None = None,
    ) -> None:
        """An importing file (and its slices) is in its table; ``rejected_records``
        rows of it were refused by the target; ``first_event_ns``/``last_event_ns``:
        the event-time range of its imported rows, when the sink has an event-time
        column (statistics report it)."""
        ...

    def retry_later(self, file: FileRef, attempt: int, reason: str, retry_after_ns: int) -> None:
        """Records a failed import attempt of an importing file and when to try again."""
        ...

    def drop_file(self, file: FileRef) -> None:
        """Forgets an importing file that could not be imported (with its slices)."""
        ...

    def forget_imported(self, sink: SinkKey) -> None:
        """Forgets the imported files of a sink (statistics ``clear``)."""
        ...


class StorageState(StorageReader, Protocol):
    """The storage state of an installation, shared by every process."""

    def atomic(self) -> AbstractContextManager[StorageTransaction]:
        """A write transaction (exclusive among writers): commits when the block
        ends normally, rolls back when it raises."""
        ...

    def close(self) -> None: ...

    # Nodes.

    def register_node(self, node_id: str) -> None:
        """Records a starting node (this process)."""
        ...

    def report(self, node_id: str, stats: Sequence[NodeSliceStats], *, stopped: bool = False) -> None:
        """Heartbeat of a node with what it wrote into its slices so far."""
        ...

    def live_nodes(self) -> set[str]:
        """Nodes that are running (see :func:`pushstream.storage.state.node_alive`)."""
        ...

    # What the coordinator looks at.

    def has_closing_slices(self) -> bool: ...

    def writing_slices(self) -> list[WritingSliceTotals]:
        """Every writing slice with its rows and its file's rows so far."""
        ...

    def closing_slices(self) -> list[SliceRef]:
        """Slices waiting for their nodes to let go of them, oldest first."""
        ...

    def slice_nodes(self, ref: SliceRef) -> SliceNodes:
        """The nodes that reported writing a slice."""
        ...

    def recently_uploaded_slices(self, since_ns: int) -> list[SliceRef]:
        """Uploaded (or imported) slices uploaded after ``since_ns``."""
        ...

    def closing_files(self) -> list[FileRef]: ...

    def files_to_import(self, now_ns: int) -> list[ImportableFile]:
        """Importing files whose backoff (if any) is over, oldest first."""
        ...

    def uploaded_slices_with_rows(self, file: FileRef) -> list[str]:
        """The ids of a file's uploaded slices that have rows, in order."""
        ...

    def slice_parts(self, ref: SliceRef) -> dict[str, int]:
        """With shared staging: the uploaded parts of a slice, node id → rows."""
        ...

    def imported_files(self, sink: SinkKey) -> list[str]:
        """Ids of a sink's imported files, newest first."""
        ...

    # Statistics.

    def level_counts(self, sink: SinkKey, file_id: str | None = None) -> dict[str, LevelCounts]:
        """Rows of a sink (or one of its files) per level: ``local``, ``staging``,
        ``target`` — read in one snapshot."""
        ...

    def rejected_records(self, sink: SinkKey, file_id: str | None = None) -> int:
        """Rows of imported files the target refused."""
        ...

    def file_records(
        self, sink: SinkKey, *, failed_only: bool, limit: int, by_event_time: bool = False
    ) -> list[FileRecord]:
        """A sink's files, newest first; ``failed_only``: not imported, with a failed attempt;
        ``by_event_time``: by their last event time, latest first (files without one
        after them, newest first)."""
        ...

    def sinks_with_files(self, branch_id: int, source_id: str) -> list[str]:
        """Ids of the sinks of a source that have files."""
        ...

    def state_summary(self) -> list[SinkStateSummary]:
        """Per sink with files: its files and slices counted by state, its oldest
        closed file not imported yet and its files waiting for an import retry,
        read in one snapshot (the metrics call it at each scrape: keep it to a few
        grouped queries)."""
        ...
