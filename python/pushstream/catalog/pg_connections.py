"""Connections to the PostgreSQL control plane (``pushstream serve --cluster URL``),
and its schema. The catalog (:mod:`pushstream.catalog.postgresql`) and the storage
state (:mod:`pushstream.storage.pg_state`) share this, as the SQLite ones share
:mod:`pushstream.catalog.connections`.

**The URL** is a libpq URL (``postgresql://user:password@host:5432/db?sslmode=...``)
with one parameter of pushstream's own, ``schema`` (default ``pushstream``): the
PostgreSQL schema that holds every table of an installation (catalog, storage
state, statistics and the ``nodes`` of the cluster). It is removed before the
URL reaches libpq, and every connection runs with ``search_path`` set to it; two
installations may share a database with two schemas.

**Connections** come from a small pool per process (:class:`PgConnections`), at
most ``max_connections`` at once, in autocommit mode:

- a read outside a transaction is one statement on a borrowed connection and
  sees the last committed state;
- :meth:`PgConnections.write` is a write transaction that first takes
  ``pg_advisory_xact_lock`` on the installation's writer key (the analogue of
  SQLite's ``BEGIN IMMEDIATE``): writers of every process on every node queue
  there, so a transaction never fails half-way on a conflict and never needs a
  retry (which the change hooks, with their side effects on the target, could not
  survive). The lock costs no extra round trip: it is sent with ``BEGIN``.
  ``SERIALIZABLE`` with retries was measured as the alternative
  (``bench/bench_control_plane.py``): every transition bumps the one storage
  revision row, so concurrent writers conflict anyway; they committed no more
  transitions per second and retried each about three times;
- :meth:`PgConnections.read` is one ``REPEATABLE READ`` snapshot (statistics).

Inside a transaction, every statement of the same thread on the same
:class:`PgConnections` runs in it (as SQLite's per-thread connection does), so a
read in a change hook sees the change.

**Outages**: when PostgreSQL is down or restarts, statements fail with
:class:`~pushstream.errors.StoreUnavailableError` (HTTP 503) at once, never
hanging; a connection broken by a restart is dropped from the pool and the
statement, if nothing of it ran yet, is retried once on a new connection, so the
first requests after PostgreSQL is back succeed. Nothing needs a restart of
pushstream.

**Change propagation**: every config or storage revision bump sends
``NOTIFY pushstream_revision, '{"config": n, "storage": m}'`` in its transaction
(PostgreSQL delivers it at commit, and only then): see :data:`REVISION_CHANNEL`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from pushstream.errors import CatalogError, StoreUnavailableError

#: The schema of an installation when the URL names none.
DEFAULT_SCHEMA = "pushstream"

#: The channel of ``NOTIFY`` sent with every revision bump; the payload is
#: ``{"config": <config revision>, "storage": <storage revision>, "schema": <schema>}``
#: after the bump (the channel is the database's: installations in other schemas
#: of the same database hear it too and skip it by its schema).
REVISION_CHANNEL = "pushstream_revision"

#: The schema version this pushstream writes; a newer one is refused.
SCHEMA_VERSION = 1

#: Seconds a statement waits for a lock (the writer lock, a row) before it fails,
#: as SQLite's busy timeout: a deadlock of a thread with itself ends in an error.
LOCK_TIMEOUT_S = 60

#: Seconds to wait for a TCP connection to PostgreSQL.
CONNECT_TIMEOUT_S = 5

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Every table of an installation. Text keys collate as bytes ("C"), as SQLite
# compares them, so that pages ordered by id are the same on both.
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('schema', {version}), ('revision', 0), ('storage_revision', 0)
    ON CONFLICT (key) DO NOTHING;
CREATE TABLE IF NOT EXISTS branches (
    branch_id BIGINT PRIMARY KEY,
    project_id BIGINT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    branch_id BIGINT NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    project_id BIGINT NOT NULL,
    deleted INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (branch_id, source_id)
);
CREATE INDEX IF NOT EXISTS sources_by_id ON sources (source_id, project_id);
CREATE TABLE IF NOT EXISTS sinks (
    branch_id BIGINT NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    sink_id TEXT COLLATE "C" NOT NULL,
    deleted INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (branch_id, source_id, sink_id)
);
CREATE TABLE IF NOT EXISTS versions (
    branch_id BIGINT NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    sink_id TEXT COLLATE "C" NOT NULL,
    number BIGINT NOT NULL,
    version BYTEA NOT NULL,
    state BYTEA NOT NULL,
    PRIMARY KEY (branch_id, source_id, sink_id, number)
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT COLLATE "C" PRIMARY KEY,
    status TEXT NOT NULL,
    created_ns BIGINT NOT NULL,
    owner TEXT NOT NULL,
    data BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_ns);
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT COLLATE "C" PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS storage_files (
    branch_id BIGINT NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    sink_id TEXT COLLATE "C" NOT NULL,
    file_id TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    table_id TEXT NOT NULL,
    columns_json TEXT NOT NULL,
    opened_ns BIGINT NOT NULL,
    closing_ns BIGINT,
    importing_ns BIGINT,
    imported_ns BIGINT,
    retry_attempt BIGINT NOT NULL DEFAULT 0,
    retry_reason TEXT,
    retry_after_ns BIGINT,
    rejected_records BIGINT NOT NULL DEFAULT 0,
    first_event_ns BIGINT,
    last_event_ns BIGINT,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id)
);
CREATE INDEX IF NOT EXISTS storage_files_by_state ON storage_files (state);
CREATE TABLE IF NOT EXISTS storage_slices (
    branch_id BIGINT NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    sink_id TEXT COLLATE "C" NOT NULL,
    file_id TEXT COLLATE "C" NOT NULL,
    slice_id TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    opened_ns BIGINT NOT NULL,
    closing_ns BIGINT,
    uploaded_ns BIGINT,
    records BIGINT NOT NULL DEFAULT 0,
    uncompressed_size BIGINT NOT NULL DEFAULT 0,
    compressed_size BIGINT NOT NULL DEFAULT 0,
    first_record_ns BIGINT,
    last_record_ns BIGINT,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id, slice_id)
);
CREATE INDEX IF NOT EXISTS storage_slices_by_state ON storage_slices (state);
CREATE TABLE IF NOT EXISTS storage_slice_nodes (
    branch_id BIGINT NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    sink_id TEXT COLLATE "C" NOT NULL,
    file_id TEXT COLLATE "C" NOT NULL,
    slice_id TEXT COLLATE "C" NOT NULL,
    node_id TEXT COLLATE "C" NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    records BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    first_record_ns BIGINT,
    last_record_ns BIGINT,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id, slice_id, node_id)
);
CREATE TABLE IF NOT EXISTS storage_nodes (
    node_id TEXT COLLATE "C" PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_ns BIGINT NOT NULL,
    heartbeat_ns BIGINT NOT NULL,
    stopped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS storage_nodes_by_process ON storage_nodes (host, pid);
CREATE TABLE IF NOT EXISTS storage_slice_parts (
    branch_id BIGINT NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    sink_id TEXT COLLATE "C" NOT NULL,
    file_id TEXT COLLATE "C" NOT NULL,
    slice_id TEXT COLLATE "C" NOT NULL,
    node_id TEXT COLLATE "C" NOT NULL,
    records BIGINT NOT NULL,
    uncompressed_size BIGINT NOT NULL,
    compressed_size BIGINT NOT NULL,
    uploaded_ns BIGINT NOT NULL,
    PRIMARY KEY (branch_id, source_id, sink_id, file_id, slice_id, node_id)
);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT COLLATE "C" PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_ns BIGINT NOT NULL,
    heartbeat_ns BIGINT NOT NULL,
    stopped INTEGER NOT NULL DEFAULT 0,
    config_revision_acked BIGINT NOT NULL DEFAULT 0,
    api_url TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS nodes_by_process ON nodes (host, pid)
"""
"""The tables of one installation's schema. ``nodes`` are the ``pushstream
serve`` instances of a cluster (one row per node: where it runs, its heartbeat,
the config revision it routes by; written by :mod:`pushstream.cluster.postgresql`);
``storage_nodes`` are the processes writing slices and ``storage_slice_parts``
their parts in shared staging (as in SQLite). ``*_ns`` times are nanoseconds
since the epoch."""


def parse_url(url: str) -> tuple[str, str]:
    """The libpq URL without pushstream's own parameters, and the schema it names.
    Raises :class:`CatalogError` for a URL that is not ``postgresql://`` or
    ``postgres://``, or a schema name that is not a plain lowercase identifier."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise CatalogError(f'the cluster URL must start with postgresql:// or postgres://, found "{url}"')
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.match(schema):
        raise CatalogError(f'the schema of the cluster URL must be a lowercase identifier, found "{schema}"')
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def lock_key(schema: str, purpose: str) -> int:
    """A stable 64-bit advisory lock key of an installation (``purpose``: ``writer``,
    ``schema``, or a key the cluster's own locks choose, e.g. ``coordinator``).
    Derived from the schema, so that installations sharing a database do not share locks."""
    digest = hashlib.blake2b(f"pushstream/{schema}/{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def connect_options(url: str, application_name: str) -> tuple[str, dict[str, Any]]:
    """The libpq URL and the options of a connection to an installation: autocommit,
    ``search_path`` on its schema (so that unqualified table names are its tables),
    the lock and connect timeouts, TCP keepalives (a dead peer is noticed within
    about 11 s) and ``application_name`` (at most 63 bytes)."""
    conninfo, schema = parse_url(url)
    return conninfo, {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "application_name": application_name[:63],
        "options": f"-c search_path={schema} -c lock_timeout={LOCK_TIMEOUT_S * 1000}",
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
    }


def connect(url: str, application_name: str) -> psycopg.Connection[Any]:
    """One connection of its own to an installation (see :func:`connect_options`),
    e.g. for ``LISTEN`` or a session advisory lock; the pool is :class:`PgConnections`."""
    conninfo, options = connect_options(url, application_name)
    try:
        return psycopg.connect(conninfo, **options)
    except psycopg.OperationalError as exc:
        raise _unavailable(exc) from exc


class Rows:
    """The rows of one statement, fetched (the connection is back in the pool)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        """The first row (a tuple), or ``None``."""
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


def _unavailable(exc: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(f"The configuration store (PostgreSQL) is unavailable: {_first_line(exc)}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(connection: psycopg.Connection[Any], query: str, params: Sequence[Any] | None) -> Rows:
    cursor = connection.execute(query, params)
    rows = cursor.fetchall() if cursor.description is not None else []
    return Rows(rows, cursor.rowcount)


class PgSession:
    """The connection of one open transaction: every statement runs in it."""

    def __init__(self, connection: psycopg.Connection[Any], owner: PgConnections) -> None:
        self._connection = connection
        self._owner = owner

    @property
    def in_transaction(self) -> bool:
        return self._connection.info.transaction_status != TransactionStatus.IDLE

    def execute(self, query: str, params: Sequence[Any] | None = None) -> Rows:
        """Runs one statement in the transaction; a lost connection raises
        :class:`StoreUnavailableError` (the transaction is rolled back by the server)."""
        self._owner.round_trips += 1
        try:
            return _run(self._connection, query, params)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc

    def executemany(self, query: str, params: Iterable[Sequence[Any]]) -> None:
        """Runs one statement per parameter set (pipelined: one round trip)."""
        params = list(params)
        if not params:
            return
        self._owner.round_trips += 1
        try:
            with self._connection.cursor() as cursor:
                cursor.executemany(query, params)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc


class PgConnections:
    """A pool of connections of this process to one installation's schema (see the
    module docstring). Thread-safe."""

    def __init__(self, url: str, *, max_connections: int = 8, application_name: str = "pushstream") -> None:
        self.schema = parse_url(url)[1]
        self._conninfo, self._connect_options = connect_options(url, application_name)
        self.writer_key = lock_key(self.schema, "writer")
        self._idle: list[psycopg.Connection[Any]] = []
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False
        #: Statements sent to PostgreSQL (each is one round trip), for the benchmark.
        self.round_trips = 0

    # The pool.

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._conninfo, **self._connect_options)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc

    def _acquire(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection, and whether it was idle in the pool (it may have been
        broken by a restart of PostgreSQL since)."""
        if self._closed:
            raise CatalogError("the PostgreSQL control plane connections are closed")
        if not self._slots.acquire(timeout=LOCK_TIMEOUT_S):
            raise StoreUnavailableError("The configuration store (PostgreSQL) has no free connection.")
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            return connection, True
        try:
            return self._connect(), False
        except BaseException:
            self._slots.release()
            raise

    def _release(self, connection: psycopg.Connection[Any]) -> None:
        reusable = (
            not self._closed
            and not connection.closed
            and not connection.broken
            and connection.info.transaction_status == TransactionStatus.IDLE
        )
        if reusable:
            with self._lock:
                self._idle.append(connection)
        else:
            connection.close()
        self._slots.release()

    def _discard_after_restart(self, connection: psycopg.Connection[Any]) -> None:
        """Drops a connection PostgreSQL closed, and every idle one: they are from
        before the same restart, so the retry gets a new connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for stale in (connection, *idle):
            stale.close()
        self._slots.release()

    def _session(self) -> PgSession | None:
        session: PgSession | None = getattr(self._local, "session", None)
        return session

    def in_transaction(self) -> bool:
        """Whether this thread has a transaction open on these connections."""
        return self._session() is not None

    # Statements.

    def execute(self, query: str, params: Sequence[Any] | None = None) -> Rows:
        """Runs one statement: in this thread's open transaction, or on its own
        (autocommit, seeing the last committed state)."""
        session = self._session()
        if session is not None:
            return session.execute(query, params)
        for attempt in (1, 2):
            connection, was_idle = self._acquire()
            self.round_trips += 1
            try:
                result = _run(connection, query, params)
            except psycopg.OperationalError as exc:
                if was_idle and connection.broken and attempt == 1:
                    # A pooled connection that PostgreSQL dropped (a restart): try a new one.
                    self._discard_after_restart(connection)
                    continue
                self._release(connection)
                raise _unavailable(exc) from exc
            except BaseException:
                self._release(connection)
                raise
            self._release(connection)
            return result
        raise AssertionError("unreachable")

    def _begin(self, statement: str) -> psycopg.Connection[Any]:
        """A connection with a transaction begun by ``statement`` (retried once on a
        new connection when a pooled one was broken by a restart)."""
        for attempt in (1, 2):
            connection, was_idle = self._acquire()
            self.round_trips += 1
            try:
                connection.execute(statement)
            except psycopg.OperationalError as exc:
                if was_idle and connection.broken and attempt == 1:
                    self._discard_after_restart(connection)
                    continue
                self._release_after_failure(connection)
                raise _unavailable(exc) from exc
            except BaseException:
                self._release_after_failure(connection)
                raise
            return connection
        raise AssertionError("unreachable")

    def _release_after_failure(self, connection: psycopg.Connection[Any]) -> None:
        if not connection.broken and connection.info.transaction_status != TransactionStatus.IDLE:
            with suppress(psycopg.Error):
                connection.execute("ROLLBACK")
        self._release(connection)

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[PgSession]:
        if self._session() is not None:
            raise CatalogError("a transaction of this thread is already open; nested transactions are not supported")
        connection = self._begin(begin)
        session = self._local.session = PgSession(connection, self)
        try:
            yield session
            self.round_trips += 1
            connection.execute("COMMIT")
        except psycopg.OperationalError as exc:
            # A COMMIT that lost its connection may or may not have committed; the
            # caller reports a failure, as for any lost reply.
            self._release_after_failure(connection)
            raise _unavailable(exc) from exc
        except BaseException:
            self._release_after_failure(connection)
            raise
        else:
            self._release(connection)
        finally:
            self._local.session = None

    def write(self) -> AbstractContextManager[PgSession]:
        """An exclusive write transaction: begins, takes the installation's writer
        lock (one round trip), commits at the end of the block, rolls back when it raises."""
        return self._transaction(f"BEGIN; SELECT pg_advisory_xact_lock({self.writer_key})")

    def read(self) -> AbstractContextManager[PgSession]:
        """A read-only snapshot (``REPEATABLE READ``): every statement inside sees the
        same committed state. Inside this thread's open transaction, that transaction."""
        session = self._session()
        if session is not None:
            return _Borrowed(session)
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    # The schema.

    def ensure_schema(self) -> None:
        """Creates the schema and its tables if missing (idempotent; safe when several
        processes start at once: the DDL runs under an advisory lock of its own), and
        refuses a schema written by a newer pushstream (:class:`CatalogError`)."""
        statements = sql.SQL("BEGIN; SELECT pg_advisory_xact_lock({key}); CREATE SCHEMA IF NOT EXISTS {schema}").format(
            key=sql.Literal(lock_key(self.schema, "schema")), schema=sql.Identifier(self.schema)
        )
        connection = self._begin(statements.as_string())
        try:
            connection.execute(SCHEMA_SQL.format(version=SCHEMA_VERSION).encode())
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            found = int(row[0]) if row else SCHEMA_VERSION
            if found > SCHEMA_VERSION:
                raise CatalogError(
                    f"the PostgreSQL schema {self.schema} was written by a newer pushstream"
                    f" (schema {found}, this one knows {SCHEMA_VERSION})"
                )
            connection.execute("COMMIT")
        except psycopg.OperationalError as exc:
            self._release_after_failure(connection)
            raise _unavailable(exc) from exc
        except BaseException:
            self._release_after_failure(connection)
            raise
        self._release(connection)

    def close(self) -> None:
        """Closes every pooled connection; later use raises :class:`CatalogError`."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _Borrowed:
    """The open transaction of this thread, as a context that neither begins nor ends it."""

    def __init__(self, session: PgSession) -> None:
        self._session = session

    def __enter__(self) -> PgSession:
        return self._session

    def __exit__(self, *exc: object) -> None:
        return None


__all__ = [
    "DEFAULT_SCHEMA",
    "REVISION_CHANNEL",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "PgConnections",
    "PgSession",
    "Rows",
    "connect",
    "connect_options",
    "lock_key",
    "parse_url",
]
