"""Storage state: files, slices and the nodes writing them, in ``state.sqlite``.

Lifecycle (per sink there is always exactly one *writing* file with exactly one
*writing* slice while the sink is enabled):

- slice: ``writing`` (nodes append to ``slice-<node>.csv``) → ``closing`` (rotated;
  nodes close their writers) → ``uploaded`` (compressed into staging) →
  ``imported`` (its file was imported).
- file: ``writing`` → ``closing`` (rotated; its slices finish) → ``importing``
  (every slice uploaded; waiting for / running the import) → ``imported``.

Every state change that moves where receivers write bumps the *storage revision*,
which receivers watch together with the config revision. Transitions are written
before the files on disk are touched in the order the coordinator needs to resume
after a crash at any point.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pushstream.catalog.connections import ThreadConnections
from pushstream.storage.layout import SinkKey, new_id
from pushstream.storage.revision import revision_file_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS storage_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO storage_meta (key, value) VALUES ('revision', 0);
CREATE TABLE IF NOT EXISTS storage_files (
    branch_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    sink_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    state TEXT NOT NULL,
    table_id TEXT NOT NULL,
    columns_json TEXT NOT NULL,
    opened_ns INTEGER NOT NULL,
    closing_ns INTEGER,
    importing_ns INTEGER,
    imported_ns INTEGER,
    retry_attempt INTEGER NOT NULL DEFAULT 0,
    retry_reason TEXT,
    retry_after_ns INTEGER,
    rejected_records INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS storage_files_by_state ON storage_files (state);
CREATE TABLE IF NOT EXISTS storage_slices (
    branch_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    sink_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    slice_id TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_ns INTEGER NOT NULL,
    closing_ns INTEGER,
    uploaded_ns INTEGER,
    records INTEGER NOT NULL DEFAULT 0,
    uncompressed_size INTEGER NOT NULL DEFAULT 0,
    compressed_size INTEGER NOT NULL DEFAULT 0,
    first_record_ns INTEGER,
    last_record_ns INTEGER,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id, slice_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS storage_slices_by_state ON storage_slices (state);
CREATE TABLE IF NOT EXISTS storage_slice_nodes (
    branch_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    sink_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    slice_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    first_record_ns INTEGER,
    last_record_ns INTEGER,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id, slice_id, node_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS storage_nodes (
    node_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_ns INTEGER NOT NULL,
    heartbeat_ns INTEGER NOT NULL,
    stopped INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""

HOST = socket.gethostname()

#: A node that has not sent a heartbeat for this long is considered gone.
NODE_TIMEOUT_NS = 15_000_000_000


def init_schema(db: sqlite3.Connection) -> None:
    """Creates the storage tables (idempotent)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(storage_files)")}
    if "rejected_records" not in columns:  # a data dir from before rejected rows
        db.execute("ALTER TABLE storage_files ADD COLUMN rejected_records INTEGER NOT NULL DEFAULT 0")


@dataclass(frozen=True)
class SliceRef:
    sink: SinkKey
    file_id: str
    slice_id: str


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


def storage_revision(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT value FROM storage_meta WHERE key = 'revision'").fetchone()[0])


def bump_storage_revision(db: sqlite3.Connection) -> int:
    """Increments the storage revision inside a write transaction and announces
    it to the receivers (see :mod:`pushstream.storage.revision`)."""
    value = int(
        db.execute("UPDATE storage_meta SET value = value + 1 WHERE key = 'revision' RETURNING value").fetchone()[0]
    )
    revision_file_of(db).announce(storage=value)
    return value


def writing_slice(db: sqlite3.Connection, sink: SinkKey) -> WritingSlice | None:
    row = db.execute(
        "SELECT s.file_id, s.slice_id, f.table_id, f.columns_json, s.opened_ns FROM storage_slices s"
        " JOIN storage_files f USING (branch_id, source_id, sink_id, file_id)"
        " WHERE s.branch_id = ? AND s.source_id = ? AND s.sink_id = ? AND s.state = 'writing'"
        " ORDER BY s.slice_id DESC LIMIT 1",
        (sink.branch_id, sink.source_id, sink.sink_id),
    ).fetchone()
    return None if row is None else WritingSlice(sink, row[0], row[1], row[2], row[3], row[4])


def open_file(db: sqlite3.Connection, sink: SinkKey, table_id: str, columns_json: str) -> WritingSlice:
    """Opens a new writing file with its first slice (inside a write transaction)."""
    last = db.execute(
        "SELECT max(file_id) FROM storage_files WHERE branch_id = ? AND source_id = ? AND sink_id = ?",
        (sink.branch_id, sink.source_id, sink.sink_id),
    ).fetchone()[0]
    file_id = new_id(last)
    now = time.time_ns()
    db.execute(
        "INSERT INTO storage_files (branch_id, source_id, sink_id, file_id, state, table_id, columns_json, opened_ns)"
        " VALUES (?, ?, ?, ?, 'writing', ?, ?, ?)",
        (sink.branch_id, sink.source_id, sink.sink_id, file_id, table_id, columns_json, now),
    )
    slice_id = _open_slice(db, sink, file_id, now)
    bump_storage_revision(db)
    return WritingSlice(sink, file_id, slice_id, table_id, columns_json, now)


def _open_slice(db: sqlite3.Connection, sink: SinkKey, file_id: str, now: int) -> str:
    last = db.execute(
        "SELECT max(slice_id) FROM storage_slices WHERE branch_id = ? AND source_id = ? AND sink_id = ?",
        (sink.branch_id, sink.source_id, sink.sink_id),
    ).fetchone()[0]
    slice_id = new_id(last)
    db.execute(
        "INSERT INTO storage_slices (branch_id, source_id, sink_id, file_id, slice_id, state, opened_ns)"
        " VALUES (?, ?, ?, ?, ?, 'writing', ?)",
        (sink.branch_id, sink.source_id, sink.sink_id, file_id, slice_id, now),
    )
    return slice_id


def ensure_writing(db: sqlite3.Connection, sink: SinkKey, table_id: str, columns_json: str) -> WritingSlice:
    """The sink's writing slice; opens a file when there is none, or when the
    writing file was opened for other columns or another table (its data is
    imported with the columns it was written with)."""
    current = writing_slice(db, sink)
    if current is not None:
        if current.table_id == table_id and current.columns_json == columns_json:
            return current
        close_file(db, sink)
    return open_file(db, sink, table_id, columns_json)


def rotate_slice(db: sqlite3.Connection, sink: SinkKey) -> WritingSlice | None:
    """Closes the writing slice and opens the next one in the same file."""
    current = writing_slice(db, sink)
    if current is None:
        return None
    now = time.time_ns()
    _close_slice(db, current, now)
    slice_id = _open_slice(db, sink, current.file_id, now)
    bump_storage_revision(db)
    return WritingSlice(sink, current.file_id, slice_id, current.table_id, current.columns_json, now)


def close_file(db: sqlite3.Connection, sink: SinkKey) -> str | None:
    """Closes the writing file (and its writing slice) without opening a new one;
    returns its id. The coordinator imports it once its slices are uploaded."""
    current = writing_slice(db, sink)
    if current is None:
        return None
    now = time.time_ns()
    _close_slice(db, current, now)
    db.execute(
        "UPDATE storage_files SET state = 'closing', closing_ns = ?"
        " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND file_id = ? AND state = 'writing'",
        (now, sink.branch_id, sink.source_id, sink.sink_id, current.file_id),
    )
    bump_storage_revision(db)
    return current.file_id


def rotate_file(db: sqlite3.Connection, sink: SinkKey) -> WritingSlice | None:
    """Closes the writing file and opens a new one for the same table and columns."""
    current = writing_slice(db, sink)
    if current is None:
        return None
    close_file(db, sink)
    return open_file(db, sink, current.table_id, current.columns_json)


def _close_slice(db: sqlite3.Connection, current: WritingSlice, now: int) -> None:
    sink = current.sink
    db.execute(
        "UPDATE storage_slices SET state = 'closing', closing_ns = ?"
        " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND file_id = ? AND slice_id = ?",
        (now, sink.branch_id, sink.source_id, sink.sink_id, current.file_id, current.slice_id),
    )


def flush(
    db: sqlite3.Connection, branch_id: int | None = None, source_id: str | None = None, sink_id: str | None = None
) -> list[tuple[SinkKey, str]]:
    """Closes the writing files of the matching sinks (a new one opens for each) and
    clears the backoff of files waiting for a retry, so that the coordinator imports
    everything now. Inside a write transaction; returns (sink, file id) of every
    file that must be imported for the flush to be complete."""
    conditions, params = [], []
    for column, value in (("branch_id", branch_id), ("source_id", source_id), ("sink_id", sink_id)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    where = "".join(f" AND {c}" for c in conditions)
    pending = [
        (SinkKey(b, so, si), f)
        for b, so, si, f in db.execute(
            "SELECT branch_id, source_id, sink_id, file_id FROM storage_files WHERE state != 'imported'" + where,
            params,
        ).fetchall()
    ]
    for key in {key for key, _ in pending}:
        if writing_slice(db, key) is not None:
            rotate_file(db, key)
    db.execute("UPDATE storage_files SET retry_after_ns = NULL WHERE state = 'importing'" + where, params)
    return pending


def file_states(db: sqlite3.Connection, files: Sequence[tuple[SinkKey, str]]) -> list[tuple[str, int, str | None]]:
    """(state, retry attempt, retry reason) of files, in order."""
    result = []
    for key, file_id in files:
        row = db.execute(
            "SELECT state, retry_attempt, retry_reason FROM storage_files"
            " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND file_id = ?",
            (*key.parts(), file_id),
        ).fetchone()
        result.append(("imported", 0, None) if row is None else (row[0], row[1], row[2]))
    return result


class StorageState:
    """The storage tables of one ``state.sqlite``, with a connection per thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._pool = ThreadConnections(self.path)
        with self.transaction() as db:
            init_schema(db)

    def db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; use :meth:`transaction` to write)."""
        return self._pool.db()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """An exclusive write transaction; commits at the end of the block, rolls back on error."""
        return self._pool.write()

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        return self._pool.read()

    def close(self) -> None:
        self._pool.close()

    # Nodes.

    def register_node(self, node_id: str) -> None:
        now = time.time_ns()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO storage_nodes (node_id, host, pid, started_ns, heartbeat_ns, stopped)"
                " VALUES (?, ?, ?, ?, ?, 0)",
                (node_id, HOST, os.getpid(), now, now),
            )

    def report(self, node_id: str, stats: Sequence[NodeSliceStats], *, stopped: bool = False) -> None:
        """Heartbeat of a node with what it wrote into its slices so far."""
        with self.transaction() as db:
            db.execute(
                "UPDATE storage_nodes SET heartbeat_ns = ?, stopped = ? WHERE node_id = ?",
                (time.time_ns(), int(stopped), node_id),
            )
            db.executemany(
                "INSERT INTO storage_slice_nodes (branch_id, source_id, sink_id, file_id, slice_id, node_id, closed,"
                " records, bytes, first_record_ns, last_record_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET closed = max(closed, excluded.closed), records = excluded.records,"
                " bytes = excluded.bytes, first_record_ns = excluded.first_record_ns,"
                " last_record_ns = excluded.last_record_ns",
                [
                    (
                        *s.slice.sink.parts(),
                        s.slice.file_id,
                        s.slice.slice_id,
                        node_id,
                        int(s.closed),
                        s.records,
                        s.bytes,
                        s.first_record_ns,
                        s.last_record_ns,
                    )
                    for s in stats
                ],
            )

    def live_nodes(self) -> set[str]:
        """Nodes that are running: not stopped, heartbeat recent, and (on this
        host) their process exists."""
        now = time.time_ns()
        alive = set()
        for node_id, host, pid, heartbeat, stopped in self.db().execute(
            "SELECT node_id, host, pid, heartbeat_ns, stopped FROM storage_nodes"
        ):
            if stopped or now - heartbeat > NODE_TIMEOUT_NS:
                continue
            if host == HOST and not _pid_alive(pid):
                continue
            alive.add(node_id)
        return alive

    def revision(self) -> int:
        return storage_revision(self.db())


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


def rows(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return list(db.execute(sql, params))
