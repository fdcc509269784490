"""The storage state on SQLite: files, slices and the nodes writing them, in the
tables ``storage_*`` of ``state.sqlite`` next to the catalog's (so that a config
change and its files' change commit in one SQLite transaction).

Implements :class:`pushstream.storage.base.StorageState`; the lifecycle and its
checks are :mod:`pushstream.storage.state`. Every storage revision bump is
announced in the data dir's revision file while the write lock is held (see
:mod:`pushstream.storage.revision`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from pushstream.catalog.connections import ThreadConnections
from pushstream.errors import IllegalTransitionError
from pushstream.storage.layout import SinkKey, new_id
from pushstream.storage.revision import RevisionFile, revision_file
from pushstream.storage.state import (
    FORGET_NODE_AFTER_NS,
    HOST,
    FileRecord,
    FileRef,
    FileState,
    FileStatus,
    ImportableFile,
    LevelCounts,
    NodeSliceStats,
    SinkStateSummary,
    SliceNodes,
    SliceRef,
    SliceState,
    WritingSlice,
    WritingSliceTotals,
    check_file,
    check_slice,
    node_alive,
    require_file,
)

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
    first_event_ns INTEGER,
    last_event_ns INTEGER,
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
CREATE TABLE IF NOT EXISTS storage_slice_parts (
    branch_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    sink_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    slice_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    records INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL,
    compressed_size INTEGER NOT NULL,
    uploaded_ns INTEGER NOT NULL,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id, slice_id, node_id)
) WITHOUT ROWID;
"""

_SINK = "branch_id = ? AND source_id = ? AND sink_id = ?"
_FILE = _SINK + " AND file_id = ?"
_SLICE = _FILE + " AND slice_id = ?"


def init_schema(db: sqlite3.Connection) -> None:
    """Creates the storage tables (idempotent; inside a write transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(storage_files)")}
    if "rejected_records" not in columns:  # a data dir from before rejected rows
        db.execute("ALTER TABLE storage_files ADD COLUMN rejected_records INTEGER NOT NULL DEFAULT 0")
    for column in ("first_event_ns", "last_event_ns"):
        if column not in columns:  # a data dir from before event-time statistics
            db.execute(f"ALTER TABLE storage_files ADD COLUMN {column} INTEGER")


def revision_file_of(db: sqlite3.Connection) -> RevisionFile:
    """The revision file next to the database file of a connection."""
    database_file = db.execute("PRAGMA database_list").fetchone()[2]
    return revision_file(Path(database_file).parent)


def _file_params(file: FileRef) -> tuple[str, ...]:
    return (*file.sink.parts(), file.file_id)


def _slice_params(ref: SliceRef) -> tuple[str, ...]:
    return (*ref.sink.parts(), ref.file_id, ref.slice_id)


class _SqliteReader:
    """Reads shared by the storage state (a connection per thread) and transactions."""

    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def revision(self) -> int:
        return int(self._db().execute("SELECT value FROM storage_meta WHERE key = 'revision'").fetchone()[0])

    def writing_slice(self, sink: SinkKey) -> WritingSlice | None:
        row = (
            self._db()
            .execute(
                "SELECT s.file_id, s.slice_id, f.table_id, f.columns_json, s.opened_ns FROM storage_slices s"
                " JOIN storage_files f USING (branch_id, source_id, sink_id, file_id)"
                " WHERE s.branch_id = ? AND s.source_id = ? AND s.sink_id = ? AND s.state = 'writing'"
                " ORDER BY s.slice_id DESC LIMIT 1",
                (sink.branch_id, sink.source_id, sink.sink_id),
            )
            .fetchone()
        )
        return None if row is None else WritingSlice(sink, row[0], row[1], row[2], row[3], row[4])

    def file_states(self, files: Sequence[tuple[SinkKey, str]]) -> list[FileStatus]:
        db = self._db()
        result = []
        for key, file_id in files:
            row = db.execute(
                "SELECT state, retry_attempt, retry_reason FROM storage_files WHERE " + _FILE,
                (*key.parts(), file_id),
            ).fetchone()
            result.append(FileStatus(FileState.IMPORTED.value, 0, None) if row is None else FileStatus(*row))
        return result


class SqliteStorageTransaction(_SqliteReader):
    """The transitions of :class:`pushstream.storage.base.StorageTransaction` on the
    connection of an open SQLite write transaction."""

    def __init__(self, connection: sqlite3.Connection, revisions: RevisionFile) -> None:
        self._connection = connection
        self._revisions = revisions

    @classmethod
    def on_connection(cls, connection: sqlite3.Connection) -> SqliteStorageTransaction:
        """The storage state inside a transaction another component opened on
        ``state.sqlite`` (the catalog's): creates the tables if they are missing."""
        init_schema(connection)
        return cls(connection, revision_file_of(connection))

    def _db(self) -> sqlite3.Connection:
        return self._connection

    def _bump_revision(self) -> int:
        """Increments the storage revision and announces it to the receivers
        (before the commit, while the write lock is held)."""
        value = int(
            self._connection.execute(
                "UPDATE storage_meta SET value = value + 1 WHERE key = 'revision' RETURNING value"
            ).fetchone()[0]
        )
        self._revisions.announce(storage=value)
        return value

    def _slice_state(self, ref: SliceRef) -> str | None:
        row = self._connection.execute("SELECT state FROM storage_slices WHERE " + _SLICE, _slice_params(ref))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def _file_state(self, file: FileRef) -> str | None:
        row = self._connection.execute("SELECT state FROM storage_files WHERE " + _FILE, _file_params(file))
        found = row.fetchone()
        return None if found is None else str(found[0])

    # Where receivers write.

    def open_file(self, sink: SinkKey, table_id: str, columns_json: str) -> WritingSlice:
        db = self._connection
        current = self.writing_slice(sink)
        if current is not None:
            # One writing file per sink: a second one would split where receivers write.
            raise IllegalTransitionError(
                f"sink {sink}: cannot open a file, file {current.file_id} is still writing (close it first)"
            )
        last = db.execute("SELECT max(file_id) FROM storage_files WHERE " + _SINK, sink.parts()).fetchone()[0]
        file_id = new_id(last)
        now = time.time_ns()
        db.execute(
            "INSERT INTO storage_files (branch_id, source_id, sink_id, file_id, state, table_id, columns_json,"
            " opened_ns) VALUES (?, ?, ?, ?, 'writing', ?, ?, ?)",
            (sink.branch_id, sink.source_id, sink.sink_id, file_id, table_id, columns_json, now),
        )
        slice_id = self._open_slice(sink, file_id, now)
        self._bump_revision()
        return WritingSlice(sink, file_id, slice_id, table_id, columns_json, now)

    def _open_slice(self, sink: SinkKey, file_id: str, now: int) -> str:
        db = self._connection
        last = db.execute("SELECT max(slice_id) FROM storage_slices WHERE " + _SINK, sink.parts()).fetchone()[0]
        slice_id = new_id(last)
        db.execute(
            "INSERT INTO storage_slices (branch_id, source_id, sink_id, file_id, slice_id, state, opened_ns)"
            " VALUES (?, ?, ?, ?, ?, 'writing', ?)",
            (sink.branch_id, sink.source_id, sink.sink_id, file_id, slice_id, now),
        )
        return slice_id

    def ensure_writing(self, sink: SinkKey, table_id: str, columns_json: str) -> WritingSlice:
        current = self.writing_slice(sink)
        if current is not None:
            if current.table_id == table_id and current.columns_json == columns_json:
                return current
            self.close_file(sink)
        return self.open_file(sink, table_id, columns_json)

    def rotate_slice(self, sink: SinkKey) -> WritingSlice | None:
        current = self.writing_slice(sink)
        if current is None:
            return None
        now = time.time_ns()
        self._close_slice(current, now)
        slice_id = self._open_slice(sink, current.file_id, now)
        self._bump_revision()
        return WritingSlice(sink, current.file_id, slice_id, current.table_id, current.columns_json, now)

    def close_file(self, sink: SinkKey) -> str | None:
        current = self.writing_slice(sink)
        if current is None:
            return None
        now = time.time_ns()
        self._close_slice(current, now)
        file = FileRef(sink, current.file_id)
        check_file(file, self._file_state(file), FileState.CLOSING)
        self._connection.execute(
            "UPDATE storage_files SET state = 'closing', closing_ns = ? WHERE " + _FILE + " AND state = 'writing'",
            (now, *_file_params(file)),
        )
        self._bump_revision()
        return current.file_id

    def rotate_file(self, sink: SinkKey) -> WritingSlice | None:
        current = self.writing_slice(sink)
        if current is None:
            return None
        self.close_file(sink)
        return self.open_file(sink, current.table_id, current.columns_json)

    def _close_slice(self, current: WritingSlice, now: int) -> None:
        ref = SliceRef(current.sink, current.file_id, current.slice_id)
        check_slice(ref, self._slice_state(ref), SliceState.CLOSING)
        self._connection.execute(
            "UPDATE storage_slices SET state = 'closing', closing_ns = ? WHERE " + _SLICE,
            (now, *_slice_params(ref)),
        )

    def flush(
        self, branch_id: int | None = None, source_id: str | None = None, sink_id: str | None = None
    ) -> list[tuple[SinkKey, str]]:
        db = self._connection
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
            if self.writing_slice(key) is not None:
                self.rotate_file(key)
        db.execute("UPDATE storage_files SET retry_after_ns = NULL WHERE state = 'importing'" + where, params)
        return pending

    # The coordinator's steps.

    def mark_uploaded(self, ref: SliceRef, records: int, uncompressed_size: int, compressed_size: int) -> None:
        db = self._connection
        check_slice(ref, self._slice_state(ref), SliceState.UPLOADED)
        first, last = db.execute(
            "SELECT min(first_record_ns), max(last_record_ns) FROM storage_slice_nodes WHERE " + _SLICE,
            _slice_params(ref),
        ).fetchone()
        db.execute(
            "UPDATE storage_slices SET state = 'uploaded', uploaded_ns = ?, records = ?, uncompressed_size = ?,"
            " compressed_size = ?, first_record_ns = ?, last_record_ns = ? WHERE " + _SLICE + " AND state = 'closing'",
            (
                time.time_ns(),
                records,
                uncompressed_size,
                compressed_size,
                first if records else None,
                last if records else None,
                *_slice_params(ref),
            ),
        )
        self.ready_if_uploaded(ref.file)

    def mark_part_uploaded(
        self, ref: SliceRef, node_id: str, records: int, uncompressed_size: int, compressed_size: int
    ) -> bool:
        db = self._connection
        state = self._slice_state(ref)
        if state != SliceState.CLOSING:
            check_slice(ref, state, SliceState.UPLOADED)
        params = _slice_params(ref)
        db.execute(
            "INSERT OR REPLACE INTO storage_slice_parts (branch_id, source_id, sink_id, file_id, slice_id, node_id,"
            " records, uncompressed_size, compressed_size, uploaded_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*params, node_id, records, uncompressed_size, compressed_size, time.time_ns()),
        )
        # A part found on disk that its node never reported (it died first) counts as a writer of the slice.
        db.execute(
            "INSERT OR IGNORE INTO storage_slice_nodes (branch_id, source_id, sink_id, file_id, slice_id, node_id,"
            " closed) VALUES (?, ?, ?, ?, ?, ?, 1)",
            (*params, node_id),
        )
        missing = db.execute(
            "SELECT count(*) FROM storage_slice_nodes WHERE " + _SLICE + " AND node_id NOT IN"
            " (SELECT node_id FROM storage_slice_parts WHERE " + _SLICE + ")",
            params + params,
        ).fetchone()[0]
        if missing:
            return False
        totals = db.execute(
            "SELECT sum(records), sum(uncompressed_size), sum(compressed_size) FROM storage_slice_parts WHERE "
            + _SLICE,
            params,
        ).fetchone()
        self.mark_uploaded(ref, *totals)
        return True

    def ready_if_uploaded(self, file: FileRef) -> bool:
        db = self._connection
        pending = db.execute(
            "SELECT count(*) FROM storage_slices WHERE " + _FILE + " AND state IN ('writing', 'closing')",
            _file_params(file),
        ).fetchone()[0]
        if pending or self._file_state(file) != FileState.CLOSING:
            return False
        db.execute(
            "UPDATE storage_files SET state = 'importing', importing_ns = ? WHERE " + _FILE + " AND state = 'closing'",
            (time.time_ns(), *_file_params(file)),
        )
        return True

    def mark_imported(
        self,
        file: FileRef,
        rejected_records: int,
        first_event_ns: int | None = None,
        last_event_ns: int | None = None,
    ) -> None:
        db = self._connection
        check_file(file, self._file_state(file), FileState.IMPORTED)
        for slice_id, state in db.execute(
            "SELECT slice_id, state FROM storage_slices WHERE " + _FILE, _file_params(file)
        ).fetchall():
            check_slice(SliceRef(file.sink, file.file_id, slice_id), state, SliceState.IMPORTED)
        db.execute(
            "UPDATE storage_files SET state = 'imported', imported_ns = ?, retry_after_ns = NULL,"
            " rejected_records = ?, first_event_ns = ?, last_event_ns = ? WHERE " + _FILE,
            (time.time_ns(), rejected_records, first_event_ns, last_event_ns, *_file_params(file)),
        )
        db.execute("UPDATE storage_slices SET state = 'imported' WHERE " + _FILE, _file_params(file))

    def retry_later(self, file: FileRef, attempt: int, reason: str, retry_after_ns: int) -> None:
        require_file(file, self._file_state(file), (FileState.IMPORTING,), "retry the import of")
        self._connection.execute(
            "UPDATE storage_files SET retry_attempt = ?, retry_reason = ?, retry_after_ns = ? WHERE " + _FILE,
            (attempt, reason, retry_after_ns, *_file_params(file)),
        )

    def drop_file(self, file: FileRef) -> None:
        require_file(file, self._file_state(file), (FileState.IMPORTING,), "drop")
        self._connection.execute("DELETE FROM storage_slice_parts WHERE " + _FILE, _file_params(file))
        self._connection.execute("DELETE FROM storage_slices WHERE " + _FILE, _file_params(file))
        self._connection.execute("DELETE FROM storage_files WHERE " + _FILE, _file_params(file))

    def forget_imported(self, sink: SinkKey) -> None:
        db = self._connection
        db.execute(
            "DELETE FROM storage_slice_nodes WHERE (branch_id, source_id, sink_id, file_id) IN"
            " (SELECT branch_id, source_id, sink_id, file_id FROM storage_files"
            "  WHERE " + _SINK + " AND state = 'imported')",
            sink.parts(),
        )
        db.execute(
            "DELETE FROM storage_slice_parts WHERE (branch_id, source_id, sink_id, file_id) IN"
            " (SELECT branch_id, source_id, sink_id, file_id FROM storage_files"
            "  WHERE " + _SINK + " AND state = 'imported')",
            sink.parts(),
        )
        db.execute("DELETE FROM storage_slices WHERE " + _SINK + " AND state = 'imported'", sink.parts())
        db.execute("DELETE FROM storage_files WHERE " + _SINK + " AND state = 'imported'", sink.parts())


class SqliteStorageState(_SqliteReader):
    """The storage tables of one ``state.sqlite``, with a connection per thread
    (see :class:`pushstream.storage.base.StorageState`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._pool = ThreadConnections(self.path)
        with self.transaction() as db:
            init_schema(db)

    def _db(self) -> sqlite3.Connection:
        return self._pool.db()

    def db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; SQLite only, for maintenance and tests)."""
        return self._pool.db()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """An exclusive write transaction on the raw connection (SQLite only, for
        maintenance and tests; the transitions go through :meth:`atomic`)."""
        return self._pool.write()

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        return self._pool.read()

    @contextmanager
    def atomic(self) -> Iterator[SqliteStorageTransaction]:
        with self._pool.write() as db:
            yield SqliteStorageTransaction(db, revision_file_of(db))

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
            db.execute(
                "DELETE FROM storage_nodes WHERE heartbeat_ns < ?"
                " AND node_id NOT IN (SELECT node_id FROM storage_slice_nodes)",
                (now - FORGET_NODE_AFTER_NS,),
            )

    def report(self, node_id: str, stats: Sequence[NodeSliceStats], *, stopped: bool = False) -> None:
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
                        *_slice_params(s.slice),
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
        now = time.time_ns()
        return {
            node_id
            for node_id, host, pid, heartbeat, stopped in self._db().execute(
                "SELECT node_id, host, pid, heartbeat_ns, stopped FROM storage_nodes"
            )
            if node_alive(host, pid, heartbeat, bool(stopped), now)
        }

    # What the coordinator looks at.

    def has_closing_slices(self) -> bool:
        row = self._db().execute("SELECT 1 FROM storage_slices WHERE state = 'closing' LIMIT 1").fetchone()
        return row is not None

    def writing_slices(self) -> list[WritingSliceTotals]:
        db = self._db()
        writing = db.execute(
            "SELECT s.branch_id, s.source_id, s.sink_id, s.file_id, s.slice_id, s.opened_ns, f.opened_ns,"
            " coalesce(sum(n.records), 0), coalesce(sum(n.bytes), 0)"
            " FROM storage_slices s JOIN storage_files f USING (branch_id, source_id, sink_id, file_id)"
            " LEFT JOIN storage_slice_nodes n USING (branch_id, source_id, sink_id, file_id, slice_id)"
            " WHERE s.state = 'writing' GROUP BY s.branch_id, s.source_id, s.sink_id, s.file_id, s.slice_id"
        ).fetchall()
        result = []
        for branch_id, source_id, sink_id, file_id, slice_id, slice_opened, file_opened, records, size in writing:
            ref = SliceRef(SinkKey(branch_id, source_id, sink_id), file_id, slice_id)
            file_records, file_size = self._file_totals(ref.file, records, size)
            result.append(WritingSliceTotals(ref, slice_opened, file_opened, records, size, file_records, file_size))
        return result

    def _file_totals(self, file: FileRef, writing_records: int, writing_size: int) -> tuple[int, int]:
        """Records and uncompressed bytes of a writing file over all its slices."""
        db = self._db()
        uploaded = db.execute(
            "SELECT coalesce(sum(records), 0), coalesce(sum(uncompressed_size), 0) FROM storage_slices"
            " WHERE " + _FILE + " AND state != 'writing' AND state != 'closing'",
            _file_params(file),
        ).fetchone()
        closing = db.execute(
            "SELECT coalesce(sum(n.records), 0), coalesce(sum(n.bytes), 0) FROM storage_slices s"
            " JOIN storage_slice_nodes n USING (branch_id, source_id, sink_id, file_id, slice_id)"
            " WHERE s.branch_id = ? AND s.source_id = ? AND s.sink_id = ? AND s.file_id = ? AND s.state = 'closing'",
            _file_params(file),
        ).fetchone()
        return writing_records + uploaded[0] + closing[0], writing_size + uploaded[1] + closing[1]

    def closing_slices(self) -> list[SliceRef]:
        return [
            SliceRef(SinkKey(b, so, si), f, sl)
            for b, so, si, f, sl in self._db().execute(
                "SELECT branch_id, source_id, sink_id, file_id, slice_id FROM storage_slices WHERE state = 'closing'"
                " ORDER BY slice_id"
            )
        ]

    def slice_nodes(self, ref: SliceRef) -> SliceNodes:
        rows = (
            self._db()
            .execute("SELECT node_id, closed FROM storage_slice_nodes WHERE " + _SLICE, _slice_params(ref))
            .fetchall()
        )
        return SliceNodes(
            open=frozenset(node for node, closed in rows if not closed),
            closed=frozenset(node for node, closed in rows if closed),
        )

    def recently_uploaded_slices(self, since_ns: int) -> list[SliceRef]:
        return [
            SliceRef(SinkKey(b, so, si), f, sl)
            for b, so, si, f, sl in self._db()
            .execute(
                "SELECT branch_id, source_id, sink_id, file_id, slice_id FROM storage_slices"
                " WHERE state IN ('uploaded', 'imported') AND uploaded_ns > ?",
                (since_ns,),
            )
            .fetchall()
        ]

    def closing_files(self) -> list[FileRef]:
        return [
            FileRef(SinkKey(b, so, si), f)
            for b, so, si, f in self._db()
            .execute("SELECT branch_id, source_id, sink_id, file_id FROM storage_files WHERE state = 'closing'")
            .fetchall()
        ]

    def files_to_import(self, now_ns: int) -> list[ImportableFile]:
        rows = (
            self._db()
            .execute(
                "SELECT branch_id, source_id, sink_id, file_id, table_id, columns_json, retry_attempt, closing_ns"
                " FROM storage_files WHERE state = 'importing' AND (retry_after_ns IS NULL OR retry_after_ns <= ?)"
                " ORDER BY file_id",
                (now_ns,),
            )
            .fetchall()
        )
        return [
            ImportableFile(FileRef(SinkKey(b, so, si), f), table_id, columns_json, attempt, closing_ns)
            for b, so, si, f, table_id, columns_json, attempt, closing_ns in rows
        ]

    def uploaded_slices_with_rows(self, file: FileRef) -> list[str]:
        return [
            slice_id
            for (slice_id,) in self._db().execute(
                "SELECT slice_id FROM storage_slices WHERE " + _FILE + " AND state = 'uploaded' AND records > 0"
                " ORDER BY slice_id",
                _file_params(file),
            )
        ]

    def slice_parts(self, ref: SliceRef) -> dict[str, int]:
        return dict(
            self._db()
            .execute(
                "SELECT node_id, records FROM storage_slice_parts WHERE " + _SLICE + " ORDER BY node_id",
                _slice_params(ref),
            )
            .fetchall()
        )

    def imported_files(self, sink: SinkKey) -> list[str]:
        return [
            file_id
            for (file_id,) in self._db().execute(
                "SELECT file_id FROM storage_files WHERE " + _SINK + " AND state = 'imported' ORDER BY file_id DESC",
                sink.parts(),
            )
        ]

    # Statistics.

    def level_counts(self, sink: SinkKey, file_id: str | None = None) -> dict[str, LevelCounts]:
        file_filter = " AND s.file_id = ?" if file_id else ""
        params: tuple[Any, ...] = (*sink.parts(), file_id) if file_id else sink.parts()
        with self.snapshot() as db:
            local = db.execute(
                "SELECT coalesce(sum(n.records), 0), 0, coalesce(sum(n.bytes), 0), min(n.first_record_ns),"
                " max(n.last_record_ns) FROM storage_slices s"
                " JOIN storage_slice_nodes n USING (branch_id, source_id, sink_id, file_id, slice_id)"
                " WHERE s.branch_id = ? AND s.source_id = ? AND s.sink_id = ? AND s.state IN ('writing', 'closing')"
                + file_filter,
                params,
            ).fetchone()
            staging = db.execute(
                "SELECT coalesce(sum(records), 0), coalesce(sum(compressed_size), 0),"
                " coalesce(sum(uncompressed_size), 0), min(first_record_ns), max(last_record_ns)"
                " FROM storage_slices s WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'uploaded'"
                + file_filter,
                params,
            ).fetchone()
            target = db.execute(
                "SELECT coalesce(sum(records), 0), coalesce(sum(compressed_size), 0),"
                " coalesce(sum(uncompressed_size), 0), min(first_record_ns), max(last_record_ns)"
                " FROM storage_slices s WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'imported'"
                + file_filter,
                params,
            ).fetchone()
            events = db.execute(
                "SELECT min(first_event_ns), max(last_event_ns) FROM storage_files"
                " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'imported'"
                + (" AND file_id = ?" if file_id else ""),
                params,
            ).fetchone()
        return {
            "local": LevelCounts(*local),
            "staging": LevelCounts(*staging),
            "target": LevelCounts(*target, *events),
        }

    def rejected_records(self, sink: SinkKey, file_id: str | None = None) -> int:
        file_filter = " AND file_id = ?" if file_id else ""
        params: tuple[Any, ...] = (*sink.parts(), file_id) if file_id else sink.parts()
        row = (
            self._db()
            .execute(
                "SELECT coalesce(sum(rejected_records), 0) FROM storage_files WHERE " + _SINK + file_filter, params
            )
            .fetchone()
        )
        return int(row[0])

    def file_records(
        self, sink: SinkKey, *, failed_only: bool, limit: int, by_event_time: bool = False
    ) -> list[FileRecord]:
        condition = " AND state != 'imported' AND retry_attempt > 0" if failed_only else ""
        order = "last_event_ns IS NULL, last_event_ns DESC, file_id DESC" if by_event_time else "file_id DESC"
        rows = (
            self._db()
            .execute(
                "SELECT file_id, state, opened_ns, closing_ns, importing_ns, imported_ns, retry_attempt, retry_reason,"
                " retry_after_ns, first_event_ns, last_event_ns FROM storage_files WHERE "
                + _SINK
                + condition
                + f" ORDER BY {order} LIMIT ?",
                (*sink.parts(), limit),
            )
            .fetchall()
        )
        return [FileRecord(*row) for row in rows]

    def sinks_with_files(self, branch_id: int, source_id: str) -> list[str]:
        return [
            row[0]
            for row in self._db().execute(
                "SELECT DISTINCT sink_id FROM storage_files WHERE branch_id = ? AND source_id = ?",
                (branch_id, source_id),
            )
        ]

    def state_summary(self) -> list[SinkStateSummary]:
        summaries: dict[tuple[int, str, str], SinkStateSummary] = {}

        def summary(branch_id: int, source_id: str, sink_id: str) -> SinkStateSummary:
            key = (branch_id, source_id, sink_id)
            if key not in summaries:
                summaries[key] = SinkStateSummary(SinkKey(branch_id, source_id, sink_id))
            return summaries[key]

        with self.snapshot() as db:
            files = db.execute(
                "SELECT branch_id, source_id, sink_id, state, count(*),"
                " min(CASE WHEN state IN ('closing', 'importing') THEN closing_ns END),"
                " sum(state = 'importing' AND retry_attempt > 0)"
                " FROM storage_files GROUP BY branch_id, source_id, sink_id, state"
            ).fetchall()
            slices = db.execute(
                "SELECT branch_id, source_id, sink_id, state, count(*)"
                " FROM storage_slices GROUP BY branch_id, source_id, sink_id, state"
            ).fetchall()
        for branch_id, source_id, sink_id, state, count, closed_ns, retries in files:
            found = summary(branch_id, source_id, sink_id)
            found.files[state] = count
            oldest = found.oldest_unimported_closed_ns
            if closed_ns is not None and (oldest is None or closed_ns < oldest):
                found.oldest_unimported_closed_ns = closed_ns
            found.retries_pending += retries or 0
        for branch_id, source_id, sink_id, state, count in slices:
            summary(branch_id, source_id, sink_id).slices[state] = count
        return [summaries[key] for key in sorted(summaries)]


__all__ = ["SCHEMA", "SqliteStorageState", "SqliteStorageTransaction", "init_schema", "revision_file_of"]
