"""The catalog on one SQLite file (``state.sqlite`` in the data dir).

WAL mode, ``synchronous=FULL`` (a committed change survives a power loss), one
connection per thread, and ``BEGIN IMMEDIATE`` for writes so that writers in
several threads or processes queue on SQLite's lock instead of failing half-way.
Entities are stored as JSON documents next to the columns that queries filter on.
"""

from __future__ import annotations

import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pushstream.catalog import settings as settings_registry
from pushstream.catalog.base import MAX_VERSIONS
from pushstream.catalog.connections import ThreadConnections
from pushstream.catalog.models import (
    ROLES,
    IngestSink,
    IngestSource,
    Role,
    Sink,
    Source,
    Task,
    Token,
    Version,
    format_time,
    hash_token,
    now,
)
from pushstream.catalog.records import ALNUM as _ALNUM
from pushstream.catalog.records import dumps as _dumps
from pushstream.catalog.records import ingest_sink, ingest_source
from pushstream.catalog.records import owner as _owner
from pushstream.catalog.records import owner_alive_here as _owner_alive
from pushstream.catalog.records import parse_time_ns as _parse_time_ns
from pushstream.catalog.records import sink_from_data as _sink_from_data
from pushstream.catalog.records import sink_to_data as _sink_to_data
from pushstream.catalog.records import source_from_data as _source_from_data
from pushstream.catalog.records import source_to_data as _source_to_data
from pushstream.catalog.records import task_from_data as _task_from_data
from pushstream.catalog.records import task_to_data as _task_to_data
from pushstream.catalog.records import token_from_row as _token_from_row
from pushstream.errors import CatalogError

if TYPE_CHECKING:
    from pushstream.storage.sqlite_state import SqliteStorageTransaction

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', 1), ('revision', 0);
CREATE TABLE IF NOT EXISTS branches (
    branch_id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    branch_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    project_id INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (branch_id, source_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sources_by_id ON sources (source_id, project_id);
CREATE TABLE IF NOT EXISTS sinks (
    branch_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    sink_id TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (branch_id, source_id, sink_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    branch_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    sink_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    version BLOB NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (branch_id, source_id, sink_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    owner TEXT NOT NULL,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_ns);
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    data BLOB NOT NULL
) WITHOUT ROWID;
"""


class _SqliteReader:
    """Reads shared by the catalog (own connection per thread) and transactions."""

    _operator_settings: Mapping[str, Any]

    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def revision(self) -> int:
        row = self._db().execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return int(row[0])

    def branch_exists(self, branch_id: int) -> bool:
        return self._db().execute("SELECT 1 FROM branches WHERE branch_id = ?", (branch_id,)).fetchone() is not None

    def default_branch_id(self) -> int | None:
        row = self._db().execute("SELECT branch_id FROM branches WHERE is_default = 1").fetchone()
        return None if row is None else int(row[0])

    def get_source(self, branch_id: int, source_id: str, *, deleted: bool | None = False) -> Source | None:
        row = (
            self._db()
            .execute("SELECT data, deleted FROM sources WHERE branch_id = ? AND source_id = ?", (branch_id, source_id))
            .fetchone()
        )
        if row is None or (deleted is not None and bool(row[1]) != deleted):
            return None
        return _source_from_data(row[0])

    def page_sources(
        self, branch_id: int, *, deleted: bool = False, after_id: str = "", limit: int | None = None
    ) -> tuple[list[Source], int]:
        db = self._db()
        total = db.execute(
            "SELECT COUNT(*) FROM sources WHERE branch_id = ? AND deleted = ?", (branch_id, int(deleted))
        ).fetchone()[0]
        rows = db.execute(
            "SELECT data FROM sources WHERE branch_id = ? AND deleted = ? AND source_id > ? ORDER BY source_id LIMIT ?",
            (branch_id, int(deleted), after_id, -1 if limit is None else limit),
        ).fetchall()
        return [_source_from_data(r[0]) for r in rows], int(total)

    def count_sources(self, branch_id: int) -> int:
        row = self._db().execute("SELECT COUNT(*) FROM sources WHERE branch_id = ? AND deleted = 0", (branch_id,))
        return int(row.fetchone()[0])

    def get_sink(self, branch_id: int, source_id: str, sink_id: str, *, deleted: bool | None = False) -> Sink | None:
        row = (
            self._db()
            .execute(
                "SELECT data, deleted FROM sinks WHERE branch_id = ? AND source_id = ? AND sink_id = ?",
                (branch_id, source_id, sink_id),
            )
            .fetchone()
        )
        if row is None or (deleted is not None and bool(row[1]) != deleted):
            return None
        return _sink_from_data(row[0])

    def page_sinks(
        self, branch_id: int, source_id: str, *, deleted: bool = False, after_id: str = "", limit: int | None = None
    ) -> tuple[list[Sink], int]:
        db = self._db()
        total = db.execute(
            "SELECT COUNT(*) FROM sinks WHERE branch_id = ? AND source_id = ? AND deleted = ?",
            (branch_id, source_id, int(deleted)),
        ).fetchone()[0]
        rows = db.execute(
            "SELECT data FROM sinks WHERE branch_id = ? AND source_id = ? AND deleted = ? AND sink_id > ?"
            " ORDER BY sink_id LIMIT ?",
            (branch_id, source_id, int(deleted), after_id, -1 if limit is None else limit),
        ).fetchall()
        return [_sink_from_data(r[0]) for r in rows], int(total)

    def count_sinks(self, branch_id: int, source_id: str) -> int:
        row = self._db().execute(
            "SELECT COUNT(*) FROM sinks WHERE branch_id = ? AND source_id = ? AND deleted = 0", (branch_id, source_id)
        )
        return int(row.fetchone()[0])

    def page_versions(
        self, branch_id: int, source_id: str, sink_id: str = "", *, after: int = 0, limit: int | None = None
    ) -> tuple[list[Version], int]:
        db = self._db()
        key = (branch_id, source_id, sink_id)
        total = db.execute(
            "SELECT COUNT(*) FROM versions WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND number > ?",
            (*key, after),
        ).fetchone()[0]
        rows = db.execute(
            "SELECT version FROM versions WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND number > ?"
            " ORDER BY number LIMIT ?",
            (*key, after, -1 if limit is None else limit),
        ).fetchall()
        return [Version.from_json(orjson.loads(r[0])) for r in rows], int(total)

    def get_version(
        self, branch_id: int, source_id: str, sink_id: str, number: int
    ) -> tuple[Version, dict[str, Any]] | None:
        row = (
            self._db()
            .execute(
                "SELECT version, state FROM versions"
                " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND number = ?",
                (branch_id, source_id, sink_id, number),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Version.from_json(orjson.loads(row[0])), orjson.loads(row[1])

    def has_processing_task(self, prefix: str) -> bool:
        rows = self._db().execute(
            "SELECT owner FROM tasks WHERE status = 'processing' AND substr(task_id, 1, length(?)) = ?",
            (prefix, prefix),
        )
        return any(_owner_alive(owner) for (owner,) in rows.fetchall())

    def effective_settings(self, branch_id: int, source_id: str, sink_id: str | None = None) -> dict[str, Any]:
        source = self.get_source(branch_id, source_id, deleted=None)
        sink = self.get_sink(branch_id, source_id, sink_id, deleted=None) if sink_id else None
        return settings_registry.resolve(
            self._operator_settings,
            source.settings if source else None,
            sink.settings if sink else None,
        )


#: Called inside the transaction of every revision bump with the connection and the new revision.
RevisionListener = Callable[[sqlite3.Connection, int], object]


class SqliteTransaction(_SqliteReader):
    """A write transaction on one connection (see :class:`pushstream.catalog.base.Transaction`)."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        operator_settings: Mapping[str, Any],
        revision_listeners: Sequence[RevisionListener] = (),
    ) -> None:
        self._connection = connection
        self._operator_settings = operator_settings
        self._revision_listeners = revision_listeners
        self._storage: SqliteStorageTransaction | None = None

    def _db(self) -> sqlite3.Connection:
        return self._connection

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection of this transaction (SQLite only: for the revision
        listeners and tests; other components go through :meth:`storage`)."""
        return self._connection

    def storage(self) -> SqliteStorageTransaction:
        """The storage tables of ``state.sqlite``, written in this transaction."""
        if self._storage is None:
            # Imported here: the storage state shares the catalog's connections module.
            from pushstream.storage.sqlite_state import SqliteStorageTransaction

            self._storage = SqliteStorageTransaction.on_connection(self._connection)
        return self._storage

    def put_source(self, source: Source) -> None:
        self._connection.execute(
            "INSERT OR REPLACE INTO sources (branch_id, source_id, project_id, deleted, data) VALUES (?, ?, ?, ?, ?)",
            (source.branch_id, source.source_id, source.project_id, int(source.is_deleted), _source_to_data(source)),
        )

    def put_sink(self, sink: Sink) -> None:
        self._connection.execute(
            "INSERT OR REPLACE INTO sinks (branch_id, source_id, sink_id, deleted, enabled, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                sink.branch_id,
                sink.source_id,
                sink.sink_id,
                int(sink.is_deleted),
                int(sink.enabled),
                _sink_to_data(sink),
            ),
        )

    def add_version(
        self, branch_id: int, source_id: str, sink_id: str, version: Version, state: dict[str, Any]
    ) -> None:
        key = (branch_id, source_id, sink_id)
        self._connection.execute(
            "INSERT OR REPLACE INTO versions (branch_id, source_id, sink_id, number, version, state)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (*key, version.number, _dumps(version.to_json()), _dumps(state)),
        )
        self._connection.execute(
            "DELETE FROM versions WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND number <= ?",
            (*key, version.number - MAX_VERSIONS),
        )

    def purge_source(self, branch_id: int, source_id: str) -> None:
        key = (branch_id, source_id)
        for table in ("sources", "sinks", "versions"):
            self._connection.execute(f"DELETE FROM {table} WHERE branch_id = ? AND source_id = ?", key)

    def bump_revision(self) -> int:
        row = self._connection.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value"
        ).fetchone()
        revision = int(row[0])
        for listener in self._revision_listeners:
            listener(self._connection, revision)
        return revision

    def finish_task(
        self, task_id: str, status: str, *, result: str | None = None, error: str | None = None
    ) -> Task | None:
        return _finish_task(self._connection, task_id, status, result, error)

    def create_task(self, task: Task) -> None:
        _insert_task(self._connection, task)


def _insert_task(db: sqlite3.Connection, task: Task) -> None:
    db.execute(
        "INSERT INTO tasks (task_id, status, created_ns, owner, data) VALUES (?, ?, ?, ?, ?)",
        (task.task_id, task.status, _parse_time_ns(task.created_at), _owner(), _task_to_data(task)),
    )


def _finish_task(
    db: sqlite3.Connection, task_id: str, status: str, result: str | None, error: str | None
) -> Task | None:
    row = db.execute("SELECT data FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
    if row is None:
        return None
    task = _task_from_data(row[0])
    finished_ns = time.time_ns()
    duration = max(0, (finished_ns - _parse_time_ns(task.created_at)) // 1_000_000)
    task = replace(
        task,
        status="success" if status == "success" else "error",
        finished_at=format_time(finished_ns),
        duration_ms=duration,
        result=result,
        error=error,
    )
    db.execute("UPDATE tasks SET status = ?, data = ? WHERE task_id = ?", (task.status, _task_to_data(task), task_id))
    return task


class SqliteCatalog(_SqliteReader):
    """The catalog in the SQLite file ``path`` (created if missing).

    ``operator_settings`` are the operator's overrides of settings in API form
    (see :func:`pushstream.catalog.settings.parse_operator_settings`); they sit
    between the defaults and the overrides of sources and sinks.
    """

    def __init__(self, path: str | os.PathLike[str], operator_settings: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self._operator_settings = dict(operator_settings or {})
        self._pool = ThreadConnections(self.path)
        self._revision_listeners: list[RevisionListener] = []
        db = self._db()
        self._retry(lambda: db.execute("PRAGMA journal_mode = WAL"))
        with self._write() as tx:
            tx.executescript_in_tx(_SCHEMA)
            found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
            if int(found) > SCHEMA_VERSION:
                raise CatalogError(
                    f"{self.path} was written by a newer pushstream (schema {found}, this one knows {SCHEMA_VERSION})"
                )

    @property
    def operator_settings(self) -> dict[str, Any]:
        return dict(self._operator_settings)

    # Connections.

    def _db(self) -> sqlite3.Connection:
        return self._pool.db()

    @staticmethod
    def _retry(fn: Any) -> Any:
        # Switching to WAL needs a moment without other writers; another process
        # may be creating the schema at the same time.
        for attempt in range(50):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        return None

    @contextmanager
    def _write(self) -> Iterator[_ScriptTx]:
        with self._pool.write() as db:
            yield _ScriptTx(db)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        with self._write() as tx:
            yield SqliteTransaction(tx.connection, self._operator_settings, tuple(self._revision_listeners))

    def add_revision_listener(self, listener: RevisionListener) -> None:
        """Calls ``listener(connection, revision)`` inside the transaction of every
        config revision bump, before the commit (e.g. to announce the new revision to
        other processes while the write lock is held). An exception rolls the change back."""
        self._revision_listeners.append(listener)

    def close(self) -> None:
        """Closes every connection of this catalog (of all threads)."""
        self._pool.close()

    # Branches.

    def ensure_branch(self, project_id: int, branch_id: int, *, default: bool = False) -> None:
        with self._write() as tx:
            db = tx.connection
            db.execute(
                "INSERT OR IGNORE INTO branches (branch_id, project_id, is_default, created_at) VALUES (?, ?, 0, ?)",
                (branch_id, project_id, now()),
            )
            if default:
                db.execute("UPDATE branches SET is_default = (branch_id = ?)", (branch_id,))

    # The data plane.

    def get_sources_for_ingest(self, project_id: int, source_id: str) -> list[IngestSource]:
        rows = (
            self._db()
            .execute(
                "SELECT data FROM sources WHERE source_id = ? AND project_id = ? ORDER BY branch_id",
                (source_id, project_id),
            )
            .fetchall()
        )
        return [self._ingest_source(_source_from_data(r[0])) for r in rows]

    def get_source_for_ingest(
        self, project_id: int, source_id: str, branch_id: int | None = None
    ) -> IngestSource | None:
        branch = self.default_branch_id() if branch_id is None else branch_id
        if branch is None:
            return None
        source = self.get_source(branch, source_id, deleted=None)
        if source is None or source.project_id != project_id:
            return None
        return self._ingest_source(source)

    @staticmethod
    def _ingest_source(source: Source) -> IngestSource:
        return ingest_source(source)

    def list_sinks(self, branch_id: int, source_id: str, *, enabled_only: bool = True) -> list[IngestSink]:
        db = self._db()
        # One read transaction, so the source's and the sinks' states belong together
        # (unless this thread is inside a write transaction already, e.g. in a hook).
        own = not db.in_transaction
        if own:
            db.execute("BEGIN")
        try:
            source = self.get_source(branch_id, source_id, deleted=None)
            rows = db.execute(
                "SELECT data FROM sinks WHERE branch_id = ? AND source_id = ? AND deleted = 0"
                + (" AND enabled = 1" if enabled_only else "")
                + " ORDER BY sink_id",
                (branch_id, source_id),
            ).fetchall()
        finally:
            if own:
                db.execute("COMMIT")
        source_settings = source.settings if source else None
        result = []
        for row in rows:
            sink = _sink_from_data(row[0])
            result.append(ingest_sink(sink, self._operator_settings, source_settings))
        return result

    # Tasks.

    def create_task(self, task: Task) -> None:
        with self._write() as tx:
            _insert_task(tx.connection, task)

    def get_task(self, task_id: str) -> Task | None:
        row = self._db().execute("SELECT data, owner FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        task = _task_from_data(row[0])
        if task.status == "processing" and not _owner_alive(row[1]):
            self.fail_orphaned_tasks()
            return self.get_task(task_id)
        return task

    def finish_task(
        self, task_id: str, status: str, *, result: str | None = None, error: str | None = None
    ) -> Task | None:
        """Finishes a task in its own transaction (used when the change itself failed)."""
        with self._write() as tx:
            return _finish_task(tx.connection, task_id, status, result, error)

    def fail_orphaned_tasks(self) -> int:
        rows = self._db().execute("SELECT task_id, owner FROM tasks WHERE status = 'processing'").fetchall()
        orphaned = [task_id for task_id, owner in rows if not _owner_alive(owner)]
        for task_id in orphaned:
            with self._write() as tx:
                still = tx.connection.execute(
                    "SELECT 1 FROM tasks WHERE task_id = ? AND status = 'processing'", (task_id,)
                ).fetchone()
                if still:
                    message = "The task was interrupted: the server process stopped before it finished."
                    _finish_task(tx.connection, task_id, "error", message, message)
        return len(orphaned)

    def purge_tasks(self, older_than_seconds: float) -> int:
        limit = time.time_ns() - int(older_than_seconds * 1_000_000_000)
        with self._write() as tx:
            cursor = tx.connection.execute("DELETE FROM tasks WHERE created_ns < ?", (limit,))
            return cursor.rowcount

    # Tokens.

    def create_token(self, description: str, role: Role, user_id: str = "", user_name: str = "") -> tuple[Token, str]:
        if role not in ROLES:
            raise CatalogError(f'unknown role "{role}", expected one of {", ".join(ROLES)}')
        with self._write() as tx:
            db = tx.connection
            row = db.execute("SELECT MAX(CAST(token_id AS INTEGER)) FROM tokens").fetchone()
            token_id = str((row[0] or 0) + 1)
            secret = f"{token_id}-" + "".join(secrets.choice(_ALNUM) for _ in range(40))
            token = Token(token_id, description, role, now(), user_id, user_name)
            data = {
                "description": description,
                "createdAt": token.created_at,
                "userId": user_id,
                "userName": user_name,
            }
            db.execute(
                "INSERT INTO tokens (token_id, hash, role, data) VALUES (?, ?, ?, ?)",
                (token_id, hash_token(secret), role, _dumps(data)),
            )
        return token, secret

    def authenticate(self, secret: str) -> Token | None:
        digest = hash_token(secret)
        row = self._db().execute("SELECT token_id, hash, role, data FROM tokens WHERE hash = ?", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row[1], digest):
            return None
        return _token_from_row(row[0], row[2], row[3])

    def list_tokens(self) -> list[Token]:
        rows = (
            self._db().execute("SELECT token_id, role, data FROM tokens ORDER BY CAST(token_id AS INTEGER)").fetchall()
        )
        return [_token_from_row(*r) for r in rows]

    def delete_token(self, token_id: str) -> bool:
        with self._write() as tx:
            return tx.connection.execute("DELETE FROM tokens WHERE token_id = ?", (token_id,)).rowcount > 0


class _ScriptTx:
    """The raw connection of an open write transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def executescript_in_tx(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one instead.
        for statement in script.split(";"):
            if statement.strip():
                self.connection.execute(statement)


__all__ = ["SqliteCatalog", "SqliteTransaction", "hash_token"]
