"""The catalog on PostgreSQL: the shared control plane of ``pushstream serve
--cluster postgresql://...``. Connections, the schema and the writer lock are in
:mod:`pushstream.catalog.pg_connections`; the storage state of the same schema is
:mod:`pushstream.storage.pg_state`.

**Why PostgreSQL and not etcd** (Keboola's stream service keeps this state in etcd):

- *One engine the user already runs.* A cluster of pushstream imports into a
  target database; PostgreSQL is the one the users of a cluster run anyway. etcd
  would be a second distributed system to deploy, monitor, back up and upgrade,
  for a few megabytes of configuration.
- *Transactions across configuration and storage state.* A sink change and the
  change of its files and slices (the storage hooks) commit together, in one
  ordinary transaction, with the checks of the lifecycle reading the rows they
  change. etcd's ``Txn`` is a single compare-and-swap round over keys known in
  advance: a change that reads, decides and writes several entities must be
  retried as a whole and can only approximate this.
- *Change propagation*: ``LISTEN``/``NOTIFY`` delivers each revision bump at
  commit, only when it commits (etcd's watch does the same for keys).
- *Leader election*: advisory locks held by a session end when the session
  ends (a node that dies loses the lock with its connection), without leases to tune.
- *Statistics are SQL*: sums over slices and files per sink in one snapshot,
  which etcd would need to read key by key and add up in the client.

Measured (``bench/bench_control_plane.py``, figures in ``bench/README.md``): a
storage transition is one transaction of 8 round trips (``BEGIN`` with the writer
lock, the reads of the lifecycle checks, the writes, the revision bump with its
``NOTIFY``, ``COMMIT``), half the rate of SQLite's fsync'ed commit on a loaded
2-core machine (60 vs 125 per second); the routes of a source are 2 round trips,
a token check 1; an event none (receivers route from memory).

The semantics are SQLite's (:mod:`pushstream.catalog.sqlite`), statement for
statement: writers queue on one lock (``pg_advisory_xact_lock``, taken with
``BEGIN``), reads outside a transaction see the last committed state, the revision
listeners run inside the transaction. In addition, every revision bump sends
``NOTIFY pushstream_revision`` with the new config and storage revisions (see
:data:`~pushstream.catalog.pg_connections.REVISION_CHANNEL`).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from pushstream.catalog import settings as settings_registry
from pushstream.catalog.base import MAX_VERSIONS
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
from pushstream.catalog.pg_connections import REVISION_CHANNEL, PgConnections, PgSession
from pushstream.catalog.records import (
    ALNUM,
    dumps,
    ingest_sink,
    ingest_source,
    owner,
    parse_time_ns,
    sink_from_data,
    sink_to_data,
    source_from_data,
    source_to_data,
    task_from_data,
    task_to_data,
    token_from_row,
)
from pushstream.errors import CatalogError
from pushstream.storage.revision import RevisionFile
from pushstream.storage.state import HOST, node_alive

if TYPE_CHECKING:
    from pushstream.storage.pg_state import PgStorageTransaction

#: Bumps the config revision and notifies the listeners of every node (at commit).
BUMP_CONFIG_REVISION = (
    "WITH bumped AS (UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value)"
    f" SELECT value, pg_notify('{REVISION_CHANNEL}', json_build_object('config', value, 'storage',"
    " (SELECT value FROM meta WHERE key = 'storage_revision'), 'schema', current_schema())::text) FROM bumped"
)


def owner_alive(db: PgConnections | PgSession, task_owner: str) -> bool:
    """Whether the process owning a task (``host:pid``) is running. On this host:
    its process exists. On another host: a node or a writing process registered
    there with that pid has a heartbeat within the live window
    (:func:`pushstream.storage.state.node_alive`)."""
    host, _, pid_text = task_owner.rpartition(":")
    if not pid_text.isdigit():
        return True
    pid, now_ns = int(pid_text), time.time_ns()
    if host == HOST:
        return node_alive(host, pid, now_ns, False, now_ns)
    rows = db.execute(
        "SELECT heartbeat_ns, stopped FROM nodes WHERE host = %s AND pid = %s"
        " UNION ALL SELECT heartbeat_ns, stopped FROM storage_nodes WHERE host = %s AND pid = %s",
        (host, pid, host, pid),
    )
    return any(node_alive(host, pid, heartbeat, bool(stopped), now_ns) for heartbeat, stopped in rows)


class _PgReader:
    """Reads shared by the catalog and transactions."""

    _operator_settings: Mapping[str, Any]

    def _db(self) -> PgConnections | PgSession:
        raise NotImplementedError

    def revision(self) -> int:
        row = self._db().execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        assert row is not None
        return int(row[0])

    def branch_exists(self, branch_id: int) -> bool:
        return self._db().execute("SELECT 1 FROM branches WHERE branch_id = %s", (branch_id,)).fetchone() is not None

    def default_branch_id(self) -> int | None:
        row = self._db().execute("SELECT branch_id FROM branches WHERE is_default = 1").fetchone()
        return None if row is None else int(row[0])

    def get_source(self, branch_id: int, source_id: str, *, deleted: bool | None = False) -> Source | None:
        row = (
            self._db()
            .execute(
                "SELECT data, deleted FROM sources WHERE branch_id = %s AND source_id = %s", (branch_id, source_id)
            )
            .fetchone()
        )
        if row is None or (deleted is not None and bool(row[1]) != deleted):
            return None
        return source_from_data(row[0])

    def page_sources(
        self, branch_id: int, *, deleted: bool = False, after_id: str = "", limit: int | None = None
    ) -> tuple[list[Source], int]:
        db = self._db()
        total = db.execute(
            "SELECT COUNT(*) FROM sources WHERE branch_id = %s AND deleted = %s", (branch_id, int(deleted))
        ).fetchall()[0][0]
        rows = db.execute(
            "SELECT data FROM sources WHERE branch_id = %s AND deleted = %s AND source_id > %s"
            " ORDER BY source_id LIMIT %s",
            (branch_id, int(deleted), after_id, limit),
        ).fetchall()
        return [source_from_data(r[0]) for r in rows], int(total)

    def count_sources(self, branch_id: int) -> int:
        rows = self._db().execute("SELECT COUNT(*) FROM sources WHERE branch_id = %s AND deleted = 0", (branch_id,))
        return int(rows.fetchall()[0][0])

    def get_sink(self, branch_id: int, source_id: str, sink_id: str, *, deleted: bool | None = False) -> Sink | None:
        row = (
            self._db()
            .execute(
                "SELECT data, deleted FROM sinks WHERE branch_id = %s AND source_id = %s AND sink_id = %s",
                (branch_id, source_id, sink_id),
            )
            .fetchone()
        )
        if row is None or (deleted is not None and bool(row[1]) != deleted):
            return None
        return sink_from_data(row[0])

    def page_sinks(
        self, branch_id: int, source_id: str, *, deleted: bool = False, after_id: str = "", limit: int | None = None
    ) -> tuple[list[Sink], int]:
        db = self._db()
        total = db.execute(
            "SELECT COUNT(*) FROM sinks WHERE branch_id = %s AND source_id = %s AND deleted = %s",
            (branch_id, source_id, int(deleted)),
        ).fetchall()[0][0]
        rows = db.execute(
            "SELECT data FROM sinks WHERE branch_id = %s AND source_id = %s AND deleted = %s AND sink_id > %s"
            " ORDER BY sink_id LIMIT %s",
            (branch_id, source_id, int(deleted), after_id, limit),
        ).fetchall()
        return [sink_from_data(r[0]) for r in rows], int(total)

    def count_sinks(self, branch_id: int, source_id: str) -> int:
        rows = self._db().execute(
            "SELECT COUNT(*) FROM sinks WHERE branch_id = %s AND source_id = %s AND deleted = 0",
            (branch_id, source_id),
        )
        return int(rows.fetchall()[0][0])

    def page_versions(
        self, branch_id: int, source_id: str, sink_id: str = "", *, after: int = 0, limit: int | None = None
    ) -> tuple[list[Version], int]:
        db = self._db()
        key = (branch_id, source_id, sink_id)
        total = db.execute(
            "SELECT COUNT(*) FROM versions WHERE branch_id = %s AND source_id = %s AND sink_id = %s AND number > %s",
            (*key, after),
        ).fetchall()[0][0]
        rows = db.execute(
            "SELECT version FROM versions WHERE branch_id = %s AND source_id = %s AND sink_id = %s AND number > %s"
            " ORDER BY number LIMIT %s",
            (*key, after, limit),
        ).fetchall()
        return [Version.from_json(orjson.loads(r[0])) for r in rows], int(total)

    def get_version(
        self, branch_id: int, source_id: str, sink_id: str, number: int
    ) -> tuple[Version, dict[str, Any]] | None:
        row = (
            self._db()
            .execute(
                "SELECT version, state FROM versions"
                " WHERE branch_id = %s AND source_id = %s AND sink_id = %s AND number = %s",
                (branch_id, source_id, sink_id, number),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Version.from_json(orjson.loads(row[0])), orjson.loads(row[1])

    def has_processing_task(self, prefix: str) -> bool:
        db = self._db()
        rows = db.execute(
            "SELECT owner FROM tasks WHERE status = 'processing' AND starts_with(task_id, %s)", (prefix,)
        ).fetchall()
        return any(owner_alive(db, task_owner) for (task_owner,) in rows)

    def effective_settings(self, branch_id: int, source_id: str, sink_id: str | None = None) -> dict[str, Any]:
        source = self.get_source(branch_id, source_id, deleted=None)
        sink = self.get_sink(branch_id, source_id, sink_id, deleted=None) if sink_id else None
        return settings_registry.resolve(
            self._operator_settings,
            source.settings if source else None,
            sink.settings if sink else None,
        )


#: Called inside the transaction of every config revision bump with the transaction and the new revision.
RevisionListener = Callable[["PgTransaction", int], object]


class PgTransaction(_PgReader):
    """A write transaction (see :class:`pushstream.catalog.base.Transaction`)."""

    def __init__(
        self,
        session: PgSession,
        operator_settings: Mapping[str, Any],
        revision_listeners: Sequence[RevisionListener] = (),
        storage_revisions: RevisionFile | None = None,
    ) -> None:
        self._session = session
        self._operator_settings = operator_settings
        self._revision_listeners = revision_listeners
        self._storage_revisions = storage_revisions
        self._storage: PgStorageTransaction | None = None

    def _db(self) -> PgSession:
        return self._session

    @property
    def in_transaction(self) -> bool:
        """Whether the transaction is open (for revision listeners and tests)."""
        return self._session.in_transaction

    def storage(self) -> PgStorageTransaction:
        """The storage tables of the schema, written in this transaction."""
        if self._storage is None:
            from pushstream.storage.pg_state import PgStorageTransaction

            self._storage = PgStorageTransaction(self._session, self._storage_revisions)
        return self._storage

    def put_source(self, source: Source) -> None:
        self._session.execute(
            "INSERT INTO sources (branch_id, source_id, project_id, deleted, data) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (branch_id, source_id) DO UPDATE SET project_id = excluded.project_id,"
            " deleted = excluded.deleted, data = excluded.data",
            (source.branch_id, source.source_id, source.project_id, int(source.is_deleted), source_to_data(source)),
        )

    def put_sink(self, sink: Sink) -> None:
        self._session.execute(
            "INSERT INTO sinks (branch_id, source_id, sink_id, deleted, enabled, data) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (branch_id, source_id, sink_id) DO UPDATE SET deleted = excluded.deleted,"
            " enabled = excluded.enabled, data = excluded.data",
            (
                sink.branch_id,
                sink.source_id,
                sink.sink_id,
                int(sink.is_deleted),
                int(sink.enabled),
                sink_to_data(sink),
            ),
        )

    def add_version(
        self, branch_id: int, source_id: str, sink_id: str, version: Version, state: dict[str, Any]
    ) -> None:
        key = (branch_id, source_id, sink_id)
        self._session.execute(
            "INSERT INTO versions (branch_id, source_id, sink_id, number, version, state)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (branch_id, source_id, sink_id, number)"
            " DO UPDATE SET version = excluded.version, state = excluded.state",
            (*key, version.number, dumps(version.to_json()), dumps(state)),
        )
        self._session.execute(
            "DELETE FROM versions WHERE branch_id = %s AND source_id = %s AND sink_id = %s AND number <= %s",
            (*key, version.number - MAX_VERSIONS),
        )

    def purge_source(self, branch_id: int, source_id: str) -> None:
        key = (branch_id, source_id)
        for table in ("sources", "sinks", "versions"):
            self._session.execute(f"DELETE FROM {table} WHERE branch_id = %s AND source_id = %s", key)

    def bump_revision(self) -> int:
        row = self._session.execute(BUMP_CONFIG_REVISION).fetchone()
        assert row is not None
        revision = int(row[0])
        for listener in self._revision_listeners:
            listener(self, revision)
        return revision

    def finish_task(
        self, task_id: str, status: str, *, result: str | None = None, error: str | None = None
    ) -> Task | None:
        return _finish_task(self._session, task_id, status, result, error)

    def create_task(self, task: Task) -> None:
        _insert_task(self._session, task)


def _insert_task(db: PgSession, task: Task) -> None:
    db.execute(
        "INSERT INTO tasks (task_id, status, created_ns, owner, data) VALUES (%s, %s, %s, %s, %s)",
        (task.task_id, task.status, parse_time_ns(task.created_at), owner(), task_to_data(task)),
    )


def _finish_task(db: PgSession, task_id: str, status: str, result: str | None, error: str | None) -> Task | None:
    row = db.execute("SELECT data FROM tasks WHERE task_id = %s", (task_id,)).fetchone()
    if row is None:
        return None
    task = task_from_data(row[0])
    finished_ns = time.time_ns()
    duration = max(0, (finished_ns - parse_time_ns(task.created_at)) // 1_000_000)
    task = replace(
        task,
        status="success" if status == "success" else "error",
        finished_at=format_time(finished_ns),
        duration_ms=duration,
        result=result,
        error=error,
    )
    db.execute("UPDATE tasks SET status = %s, data = %s WHERE task_id = %s", (task.status, task_to_data(task), task_id))
    return task


class PgCatalog(_PgReader):
    """The catalog in the PostgreSQL schema of ``url`` (``postgresql://...``, the
    schema from its ``schema`` parameter, default ``pushstream``; created if missing).

    ``operator_settings`` as in :class:`~pushstream.catalog.sqlite.SqliteCatalog`.
    ``storage_revisions``: the local revision file that storage revision bumps made
    in this catalog's transactions are announced in (the data dir's; see
    :mod:`pushstream.storage.revision`), as the SQLite storage state announces them
    in the file next to ``state.sqlite``.
    """

    def __init__(
        self,
        url: str,
        operator_settings: Mapping[str, Any] | None = None,
        *,
        storage_revisions: RevisionFile | None = None,
        max_connections: int = 8,
    ) -> None:
        self._operator_settings = dict(operator_settings or {})
        #: The ``--cluster`` URL (with its password: do not log it).
        self.url = url
        self._pool = PgConnections(url, max_connections=max_connections, application_name="pushstream catalog")
        self.schema = self._pool.schema
        self._storage_revisions = storage_revisions
        self._revision_listeners: list[RevisionListener] = []
        self._pool.ensure_schema()

    @property
    def operator_settings(self) -> dict[str, Any]:
        return dict(self._operator_settings)

    @property
    def round_trips(self) -> int:
        """Statements this catalog sent to PostgreSQL so far (one round trip each)."""
        return self._pool.round_trips

    def _db(self) -> PgConnections:
        return self._pool

    @contextmanager
    def transaction(self) -> Iterator[PgTransaction]:
        with self._pool.write() as session:
            yield PgTransaction(
                session, self._operator_settings, tuple(self._revision_listeners), self._storage_revisions
            )

    def add_revision_listener(self, listener: RevisionListener) -> None:
        """Calls ``listener(transaction, revision)`` inside the transaction of every
        config revision bump, before the commit (e.g. to announce the new revision to
        the other processes of this node). An exception rolls the change back."""
        self._revision_listeners.append(listener)

    def close(self) -> None:
        """Closes every connection of this catalog."""
        self._pool.close()

    # Branches.

    def ensure_branch(self, project_id: int, branch_id: int, *, default: bool = False) -> None:
        with self._pool.write() as db:
            db.execute(
                "INSERT INTO branches (branch_id, project_id, is_default, created_at) VALUES (%s, %s, 0, %s)"
                " ON CONFLICT (branch_id) DO NOTHING",
                (branch_id, project_id, now()),
            )
            if default:
                db.execute("UPDATE branches SET is_default = (branch_id = %s)::integer", (branch_id,))

    # The data plane.

    def get_sources_for_ingest(self, project_id: int, source_id: str) -> list[IngestSource]:
        rows = self._pool.execute(
            "SELECT data FROM sources WHERE source_id = %s AND project_id = %s ORDER BY branch_id",
            (source_id, project_id),
        ).fetchall()
        return [self._ingest_source(source_from_data(r[0])) for r in rows]

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
        # One statement (one snapshot, one round trip), so the source's and the sinks'
        # states belong together; in this thread's open transaction, e.g. in a hook.
        source_data, sinks_data = self._pool.execute(
            "SELECT (SELECT data FROM sources WHERE branch_id = %s AND source_id = %s),"
            " array(SELECT data FROM sinks WHERE branch_id = %s AND source_id = %s AND deleted = 0"
            + (" AND enabled = 1" if enabled_only else "")
            + " ORDER BY sink_id)",
            (branch_id, source_id, branch_id, source_id),
        ).fetchone()
        source = None if source_data is None else source_from_data(source_data)
        source_settings = source.settings if source else None
        result = []
        for data in sinks_data:
            sink = sink_from_data(data)
            result.append(ingest_sink(sink, self._operator_settings, source_settings))
        return result

    # Tasks.

    def create_task(self, task: Task) -> None:
        with self._pool.write() as db:
            _insert_task(db, task)

    def get_task(self, task_id: str) -> Task | None:
        row = self._pool.execute("SELECT data, owner FROM tasks WHERE task_id = %s", (task_id,)).fetchone()
        if row is None:
            return None
        task = task_from_data(row[0])
        if task.status == "processing" and not owner_alive(self._pool, row[1]):
            self.fail_orphaned_tasks()
            return self.get_task(task_id)
        return task

    def finish_task(
        self, task_id: str, status: str, *, result: str | None = None, error: str | None = None
    ) -> Task | None:
        """Finishes a task in its own transaction (used when the change itself failed)."""
        with self._pool.write() as db:
            return _finish_task(db, task_id, status, result, error)

    def fail_orphaned_tasks(self) -> int:
        rows = self._pool.execute("SELECT task_id, owner FROM tasks WHERE status = 'processing'").fetchall()
        orphaned = [task_id for task_id, task_owner in rows if not owner_alive(self._pool, task_owner)]
        for task_id in orphaned:
            with self._pool.write() as db:
                still = db.execute(
                    "SELECT 1 FROM tasks WHERE task_id = %s AND status = 'processing'", (task_id,)
                ).fetchone()
                if still:
                    message = "The task was interrupted: the server process stopped before it finished."
                    _finish_task(db, task_id, "error", message, message)
        return len(orphaned)

    def purge_tasks(self, older_than_seconds: float) -> int:
        limit = time.time_ns() - int(older_than_seconds * 1_000_000_000)
        with self._pool.write() as db:
            return db.execute("DELETE FROM tasks WHERE created_ns < %s", (limit,)).rowcount

    # Tokens.

    def create_token(self, description: str, role: Role, user_id: str = "", user_name: str = "") -> tuple[Token, str]:
        if role not in ROLES:
            raise CatalogError(f'unknown role "{role}", expected one of {", ".join(ROLES)}')
        with self._pool.write() as db:
            row = db.execute("SELECT MAX(CAST(token_id AS BIGINT)) FROM tokens").fetchone()
            token_id = str(((row[0] if row else None) or 0) + 1)
            secret = f"{token_id}-" + "".join(secrets.choice(ALNUM) for _ in range(40))
            token = Token(token_id, description, role, now(), user_id, user_name)
            data = {
                "description": description,
                "createdAt": token.created_at,
                "userId": user_id,
                "userName": user_name,
            }
            db.execute(
                "INSERT INTO tokens (token_id, hash, role, data) VALUES (%s, %s, %s, %s)",
                (token_id, hash_token(secret), role, dumps(data)),
            )
        return token, secret

    def authenticate(self, secret: str) -> Token | None:
        digest = hash_token(secret)
        row = self._pool.execute("SELECT token_id, hash, role, data FROM tokens WHERE hash = %s", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row[1], digest):
            return None
        return token_from_row(row[0], row[2], row[3])

    def list_tokens(self) -> list[Token]:
        rows = self._pool.execute("SELECT token_id, role, data FROM tokens ORDER BY CAST(token_id AS BIGINT)")
        return [token_from_row(*r) for r in rows]

    def delete_token(self, token_id: str) -> bool:
        with self._pool.write() as db:
            return db.execute("DELETE FROM tokens WHERE token_id = %s", (token_id,)).rowcount > 0


__all__ = ["BUMP_CONFIG_REVISION", "PgCatalog", "PgTransaction", "owner_alive"]
