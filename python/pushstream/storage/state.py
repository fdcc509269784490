"""The lifecycle of files and slices: their typed states, the transitions allowed
between them, and the values the storage state hands out.

Per sink there is always exactly one *writing* file with exactly one *writing*
slice while the sink is enabled:

- slice: ``writing`` (nodes append to ``slice-<node>.csv``) → ``closing`` (rotated;
  nodes close their writers) → ``uploaded`` (compressed into staging) →
  ``imported`` (its file was imported).
- file: ``writing`` → ``closing`` (rotated; its slices finish) → ``importing``
  (every slice uploaded; waiting for / running the import, retried with backoff)
  → ``imported``. A file that could not be imported for 7 days is dropped.

Every state change that moves where receivers write bumps the *storage revision*,
which receivers watch together with the config revision. The coordinator records
a transition before it touches the files on disk in the order it needs to resume
after a crash at any point (DESIGN §6): the staging file is written before its
slice is ``uploaded`` and the local parts are removed after; the target commits
before the file is ``imported`` and staging is pruned after.

The store of these states is :class:`pushstream.storage.base.StorageState`
(implemented on SQLite by :mod:`pushstream.storage.sqlite_state`, on PostgreSQL
by :mod:`pushstream.storage.pg_state`); every
implementation checks its transitions with :func:`check_slice` and
:func:`check_file`, so an illegal one raises
:class:`~pushstream.errors.IllegalTransitionError` instead of corrupting the state.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from pushstream.errors import IllegalTransitionError
from pushstream.storage.layout import SinkKey


class SliceState(StrEnum):
    """Where a slice is in its lifecycle (the values are stored as they are)."""

    WRITING = "writing"
    CLOSING = "closing"
    UPLOADED = "uploaded"
    IMPORTED = "imported"


class FileState(StrEnum):
    """Where a file is in its lifecycle (the values are stored, and reported by ``statistics/files``)."""

    WRITING = "writing"
    CLOSING = "closing"
    IMPORTING = "importing"
    IMPORTED = "imported"


#: The states a slice may move to from each state.
SLICE_TRANSITIONS: Mapping[SliceState, frozenset[SliceState]] = {
    SliceState.WRITING: frozenset({SliceState.CLOSING}),
    SliceState.CLOSING: frozenset({SliceState.UPLOADED}),
    SliceState.UPLOADED: frozenset({SliceState.IMPORTED}),
    SliceState.IMPORTED: frozenset(),
}

#: The states a file may move to from each state.
FILE_TRANSITIONS: Mapping[FileState, frozenset[FileState]] = {
    FileState.WRITING: frozenset({FileState.CLOSING}),
    FileState.CLOSING: frozenset({FileState.IMPORTING}),
    FileState.IMPORTING: frozenset({FileState.IMPORTED}),
    FileState.IMPORTED: frozenset(),
}


def check_slice(subject: object, current: str | None, new: SliceState) -> None:
    """Raises :class:`IllegalTransitionError` unless a slice in state ``current``
    (``None``: it does not exist) may move to ``new``."""
    _check("slice", subject, current, new, states=SliceState, transitions=SLICE_TRANSITIONS)


def check_file(subject: object, current: str | None, new: FileState) -> None:
    """Raises :class:`IllegalTransitionError` unless a file in state ``current``
    (``None``: it does not exist) may move to ``new``."""
    _check("file", subject, current, new, states=FileState, transitions=FILE_TRANSITIONS)


def require_file(subject: object, current: str | None, allowed: Iterable[FileState], action: str) -> None:
    """Raises :class:`IllegalTransitionError` unless a file is in one of the
    ``allowed`` states for ``action`` (e.g. a retry or a drop, which keep or end
    its lifecycle rather than move it on)."""
    states = tuple(allowed)
    if current is None:
        raise IllegalTransitionError(f"file {subject}: cannot {action}, it does not exist")
    if current not in states:
        expected = " or ".join(s.value for s in states)
        raise IllegalTransitionError(f"file {subject}: cannot {action} a {current} file (only {expected})")


_State = TypeVar("_State", bound=StrEnum)


def _check(
    kind: str,
    subject: object,
    current: str | None,
    new: _State,
    *,
    states: type[_State],
    transitions: Mapping[_State, frozenset[_State]],
) -> None:
    if current is None:
        raise IllegalTransitionError(f"{kind} {subject}: cannot move to {new.value}, it does not exist")
    allowed = transitions[states(current)]
    if new not in allowed:
        lifecycle = " → ".join(s.value for s in states)
        raise IllegalTransitionError(
            f"{kind} {subject}: cannot move from {current} to {new.value} (a {kind} goes {lifecycle})"
        )


@dataclass(frozen=True)
class FileRef:
    """One file of a sink."""

    sink: SinkKey
    file_id: str

    def __str__(self) -> str:
        return f"{self.sink}/{self.file_id}"


@dataclass(frozen=True)
class SliceRef:
    """One slice of a file of a sink."""

    sink: SinkKey
    file_id: str
    slice_id: str

    @property
    def file(self) -> FileRef:
        return FileRef(self.sink, self.file_id)

    def __str__(self) -> str:
        return f"{self.sink}/{self.file_id}/{self.slice_id}"


@dataclass(frozen=True)
class WritingSlice:
    """The slice of a sink that receivers append to, and the file it belongs to."""

    sink: SinkKey
    file_id: str
    slice_id: str
    table_id: str
    columns_json: str
    opened_ns: int


@dataclass(frozen=True)
class NodeSliceStats:
    """What one node wrote into one slice."""

    slice: SliceRef
    closed: bool
    records: int
    bytes: int
    first_record_ns: int | None
    last_record_ns: int | None


@dataclass(frozen=True)
class WritingSliceTotals:
    """A writing slice with what the nodes wrote into it and into its whole file
    so far (what the coordinator's rotation triggers look at)."""

    slice: SliceRef
    slice_opened_ns: int
    file_opened_ns: int
    records: int
    size: int
    file_records: int
    file_size: int


@dataclass(frozen=True)
class SliceNodes:
    """The nodes that reported writing a slice: still open, and closed."""

    open: frozenset[str]
    closed: frozenset[str]


@dataclass(frozen=True)
class ImportableFile:
    """A file ready to be imported (every slice uploaded, no backoff pending)."""

    file: FileRef
    table_id: str
    columns_json: str
    retry_attempt: int
    closing_ns: int | None


@dataclass(frozen=True)
class FileStatus:
    """Where a file is, as a flush reports it (an unknown file counts as imported:
    only imported files are forgotten)."""

    state: str
    retry_attempt: int
    retry_reason: str | None


@dataclass(frozen=True)
class FileRecord:
    """A file as ``statistics/files`` lists it."""

    file_id: str
    state: str
    opened_ns: int
    closing_ns: int | None
    importing_ns: int | None
    imported_ns: int | None
    retry_attempt: int
    retry_reason: str | None
    retry_after_ns: int | None
    #: Earliest and latest event time of the file's imported rows (sinks with an event-time column).
    first_event_ns: int | None = None
    last_event_ns: int | None = None


@dataclass(frozen=True)
class LevelCounts:
    """Rows of one level (local, staging or target) of a sink or a file; the
    event times only on the target level of a sink with an event-time column."""

    records: int
    compressed_size: int
    uncompressed_size: int
    first_record_ns: int | None
    last_record_ns: int | None
    first_event_ns: int | None = None
    last_event_ns: int | None = None


@dataclass
class SinkStateSummary:
    """How many files and slices of a sink are in each state, for the metrics.

    ``oldest_unimported_closed_ns``: when the oldest file of the sink that is
    closed but not imported (``closing`` or ``importing``) was closed, ``None``
    when there is none; ``retries_pending``: ``importing`` files with a failed
    attempt (waiting for a retry)."""

    sink: SinkKey
    files: dict[str, int] = field(default_factory=dict)
    slices: dict[str, int] = field(default_factory=dict)
    oldest_unimported_closed_ns: int | None = None
    retries_pending: int = 0


#: This machine's name, recorded with every node (a node's process is checked only on its own host).
HOST = socket.gethostname()

#: A node that has not sent a heartbeat for this long is considered gone.
NODE_TIMEOUT_NS = 15_000_000_000
#: A receiver node not heard from for this long, and not writing any slice that is
#: still tracked, is forgotten when another node registers (every worker process of
#: every start is a node: without this the list only grows).
FORGET_NODE_AFTER_NS = 24 * 3600 * 1_000_000_000


def node_alive(host: str, pid: int, heartbeat_ns: int, stopped: bool, now_ns: int) -> bool:
    """Whether a registered node is running: not stopped, heartbeat recent, and
    (on this host) its process exists."""
    if stopped or now_ns - heartbeat_ns > NODE_TIMEOUT_NS:
        return False
    return host != HOST or _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = [
    "FILE_TRANSITIONS",
    "HOST",
    "NODE_TIMEOUT_NS",
    "SLICE_TRANSITIONS",
    "FileRecord",
    "FileRef",
    "FileState",
    "FileStatus",
    "ImportableFile",
    "LevelCounts",
    "NodeSliceStats",
    "SliceNodes",
    "SliceRef",
    "SliceState",
    "WritingSlice",
    "WritingSliceTotals",
    "check_file",
    "check_slice",
    "node_alive",
    "require_file",
]
