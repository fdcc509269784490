"""The PostgreSQL target: tables, imports and reads, through ADBC
(``adbc-driver-postgresql``).

Naming: bucket ``in.c-bucket`` → schema ``"in.c-bucket"``, table → table, both
created on demand through the admin connection. Key columns are created
``COLLATE "C"``: byte order makes the key's B-tree comparisons memcmp instead of
locale rules, which the merge needs (non-key columns keep the database default).

Every import of a sink runs as the sink's own least-privileged sink user (see
:mod:`~pushstream.targets.postgresql.sink_users`). The admin connection runs the
DDL (schemas, tables, staging tables, sink users, grants) and the operator's
reads (``tail``).

Imports (one transaction as the sink user): lock the table against concurrent
ALTERs, skip an import id already recorded, check the table's shape, then
without a key COPY the rows straight into the table (ADBC ingest of a stream of
batches parsed while the previous ones are sent); with a key deduplicate in
Arrow first (last occurrence wins, sorted by key), COPY into the staging table,
``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` and truncate the staging
table. The import id is recorded last, in the same transaction; its primary key
makes a concurrent import of the same id fail instead of writing twice. Rows
never travel row by row.

Typed tables (docs/tables.md): native columns (``bigint``, ``double precision``,
``boolean``, ``timestamptz``, ``date``, ``jsonb``), loaded by COPY from Arrow
arrays of those types (json as Arrow's json extension type, which the driver
copies into jsonb). The merge strategies ``ledger`` (first write wins) and
``snapshot`` (a ``DELETE`` of what the import does not have) and system columns
(numbered from ``pushstream.offsets``, whose row lock serialises the imports of
one table, ``_system_time`` = ``now()``, the transaction's time) run in the
import's transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pg_dbapi  # type: ignore[import-untyped]
import pyarrow as pa  # type: ignore[import-untyped]

from pushstream.targets import sql
from pushstream.targets.base import (
    ImportRequest,
    ImportResult,
    SinkIdentity,
    TableSpec,
    TargetError,
    parse_table_id,
)
from pushstream.targets.postgresql import sink_users
from pushstream.targets.postgresql.errors import (
    UnpreparedError,
    is_auth_failure,
    is_row_error,
    is_unavailable,
    is_unique_violation,
    is_unprepared,
    message,
    target_error,
)
from pushstream.targets.postgresql.schema import (
    COLUMN_TYPES,
    SCHEMA,
    check_identifier,
    create_tables,
    fetch,
    literal,
    table_shape,
)
from pushstream.targets.rows import gather, rows_to_write, write_bisecting, write_order
from pushstream.targets.sql import POSITION, quote_ident
from pushstream.targets.staging_csv import Conversion, StagingStream, read_staging
from pushstream.targets.tailing import TailRows, display_order, no_event_time, typed_value

T = TypeVar("T")

#: An import waits this long for a table lock (someone altering the table by hand).
LOCK_TIMEOUT = "60s"
#: Connection attempts give up after this many seconds (the import is retried).
CONNECT_TIMEOUT = 10


def _conversion(spec: TableSpec) -> Conversion:
    """Typed columns as Arrow types; json as Arrow's json extension type, which
    the driver copies into jsonb."""
    return Conversion(
        spec.columns, spec.column_types, json_type=pa.json_(pa.string()), event_time=spec.event_time_column
    )


def _tail_value(column: str, data_type: str) -> str:
    """The SQL ``tail`` reads a column with: native numbers and booleans,
    timestamps in the canonical text, everything else as text."""
    if data_type in ("integer", "number", "boolean"):
        return quote_ident(column)
    if data_type == "timestamp":
        return f"""to_char({quote_ident(column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    return f"{quote_ident(column)}::text"


class _Connection:
    """One ADBC connection in autocommit mode; transactions are explicit
    (``BEGIN``/``COMMIT``) so an idle connection never sits in a transaction."""

    def __init__(self, url: str) -> None:
        self.raw = pg_dbapi.connect(url, autocommit=True)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        with self.raw.cursor() as cur:
            yield cur

    def close(self) -> None:
        with suppress(Exception):
            self.raw.close()


def _recorded(cur: Any, import_id: str) -> bool:
    """Whether the sink user of ``cur`` recorded ``import_id`` (row-level security
    shows it its own imports only)."""
    return bool(fetch(cur, f"SELECT 1 FROM {SCHEMA}.imports WHERE import_id = $1", (import_id,)))


class PostgresTarget:
    """A PostgreSQL database as the target (see the module docstring).

    ``url`` is the admin's libpq URL (``postgresql://user:password@host:port/db``);
    the admin needs CREATEROLE and the right to create schemas in the database
    (e.g. it owns the database). It need not be a superuser."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise TargetError("a PostgreSQL target URL starts with postgresql://")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
        query.setdefault("application_name", "pushstream")
        self._parts = parts._replace(scheme="postgresql", query=urlencode(query))
        self.url = urlunsplit(self._parts)
        self._lock = threading.RLock()
        self._admin: _Connection | None = None
        self._database: str | None = None
        self._bookkeeping = False
        self._sink_connections: dict[str, _Connection] = {}
        self._sink_locks: dict[str, threading.Lock] = {}
        # sink user → (spec, staging table) prepared by this process
        self._prepared: dict[str, tuple[TableSpec, str | None]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresTarget({self._parts.hostname}:{self._parts.port or 5432}{self._parts.path})"

    # -- connections -------------------------------------------------------

    def _sink_url(self, user: str, password: str) -> str:
        host = self._parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{self._parts.port}" if self._parts.port else ""
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
        return urlunsplit(self._parts._replace(netloc=netloc))

    def _admin_call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Runs ``fn(cursor)`` on the admin connection. A connection that went
        away (server restarted since the last call) is replaced once, before
        anything ran on it; other failures roll back and raise."""
        with self._lock:
            if self._closed:
                raise TargetError("the PostgreSQL target is closed")
            for attempt in (1, 2):
                fresh = self._admin is None
                if self._admin is None:
                    try:
                        self._admin = _Connection(self.url)
                    except adbc_driver_manager.Error as exc:
                        raise target_error(exc, f"{what}: cannot connect as the admin") from exc
                conn = self._admin
                try:
                    with conn.cursor() as cur:
                        return fn(cur)
                except TargetError:
                    self._rollback(conn)
                    raise
                except adbc_driver_manager.Error as exc:
                    if is_unavailable(exc):
                        conn.close()
                        self._admin = None
                        if not fresh and attempt == 1:
                            continue
                    else:
                        self._rollback(conn)
                    raise target_error(exc, what) from exc
                except BaseException:
                    # Interrupted mid-transaction: start over on a new connection.
                    conn.close()
                    self._admin = None
                    raise
            raise AssertionError("unreachable")

    def _rollback(self, conn: _Connection) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")
        except adbc_driver_manager.Error:
            conn.close()
            if conn is self._admin:
                self._admin = None

    # -- naming --------------------------------------------------------------

    @staticmethod
    def table_name(table_id: str) -> tuple[str, str]:
        """(schema, table) of a table id: (``in.c-bucket``, ``table``)."""
        schema, table = parse_table_id(table_id)
        check_identifier(schema, "bucket")
        check_identifier(table, "table")
        return schema, table

    def _qualified(self, table_id: str) -> str:
        schema, table = self.table_name(table_id)
        return f"{quote_ident(schema)}.{quote_ident(table)}"

    def _database_name(self) -> str:
        if self._database is None:
            self._database = str(
                self._admin_call(
                    "cannot read the database name", lambda cur: fetch(cur, "SELECT current_database()")[0][0]
                )
            )
        return self._database

    def sink_user(self, sink: SinkIdentity) -> str:
        """The name of the sink's sink user (the PostgreSQL role its imports run as)."""
        return sink_users.user_name(self._database_name(), sink)

    # -- tables --------------------------------------------------------------

    def _validate(self, spec: TableSpec) -> None:
        self.table_name(spec.table_id)
        spec.validate()
        for column in spec.columns:
            check_identifier(column, "column")

    def _create_table_sql(self, spec: TableSpec) -> str:
        def definition(column: str) -> str:
            data_type = spec.column_type(column)
            type_ = COLUMN_TYPES[data_type]
            if data_type == "string" and column in spec.primary_key:
                type_ += ' COLLATE "C"'
            return f"{type_} NOT NULL" if spec.not_null(column) else type_

        return sql.create_table(self._qualified(spec.table_id), spec, definition)

    def _ensure_table(self, cur: Any, spec: TableSpec) -> None:
        """Inside an admin transaction (bookkeeping ensured): creates or checks the
        table, records its event-time column."""
        qualified = self._qualified(spec.table_id)
        shape = table_shape(cur, qualified)
        if shape is None:
            schema, _ = self.table_name(spec.table_id)
            # Serialises concurrent creators (two processes, two sinks of one table).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", parameters=(f"pushstream:{spec.table_id}",))
            cur.fetchall()
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            shape = table_shape(cur, qualified)
            if shape is None:
                cur.execute(self._create_table_sql(spec))
        if shape is not None:
            spec.check_matches(*shape)
        if spec.event_time_column is not None:
            cur.execute(
                f"INSERT INTO {SCHEMA}.tables (table_id, event_time_column) VALUES ($1, $2)"
                " ON CONFLICT (table_id) DO UPDATE SET event_time_column = excluded.event_time_column"
                " WHERE tables.event_time_column IS DISTINCT FROM excluded.event_time_column",
                parameters=(spec.table_id, spec.event_time_column),
            )

    def ensure_table(self, spec: TableSpec) -> None:
        """Creates the schema and table when missing, or checks the table exactly."""
        self._validate(spec)

        def run(cur: Any) -> None:
            cur.execute("BEGIN")
            self._ensure_bookkeeping(cur)
            self._ensure_table(cur, spec)
            self._commit(cur)

        self._admin_call(f'cannot create table "{spec.table_id}"', run)

    def table_exists(self, table_id: str) -> bool:
        qualified = self._qualified(table_id)
        return bool(
            self._admin_call(
                f'cannot inspect table "{table_id}"',
                lambda cur: table_shape(cur, qualified) is not None,
            )
        )

    def table_ids(self) -> list[str]:
        rows = self._admin_call(
            "cannot list the tables",
            lambda cur: fetch(
                cur,
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
                " WHERE table_schema LIKE 'in.%' OR table_schema LIKE 'out.%' ORDER BY 1",
            ),
        )
        return [str(row[0]) for row in rows]

    def tail(
        self, table_id: str, limit: int = 10, skip: int = 0, *, system: bool = False, order: str = "import"
    ) -> TailRows:
        """The last ``limit`` rows in physical order (``ctid``), or by the
        event-time column (``order="event-time"``), skipping the ``skip`` newest,
        oldest first. Appended rows are in import order; an upserted row moves to
        where its new version was written. Typed columns give typed values
        (timestamps as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``); ``system`` shows the
        system columns first (see :func:`~pushstream.targets.tailing.display_order`)."""
        if limit < 0 or skip < 0:
            raise ValueError("limit and skip must not be negative")
        qualified = self._qualified(table_id)

        def run(cur: Any) -> TailRows:
            shape = table_shape(cur, qualified)
            if shape is None:
                raise TargetError(f'table "{table_id}" does not exist')
            all_columns, _, types = shape
            event_time = self._event_time_column(cur, table_id)
            if event_time not in all_columns:
                event_time = None
            columns = display_order(table_id, all_columns, event_time, system=system)
            column_types = [types[all_columns.index(c)] for c in columns]
            if order == "event-time":
                if event_time is None:
                    raise no_event_time(table_id)
                # NULLS LAST: rows without an event time are the oldest.
                order_by = f"{quote_ident(event_time)} DESC NULLS LAST, ctid DESC"
            else:
                order_by = "ctid DESC"
            select = ", ".join(_tail_value(c, t) for c, t in zip(columns, column_types, strict=True))
            rows = fetch(cur, f"SELECT {select} FROM {qualified} ORDER BY {order_by} LIMIT $1 OFFSET $2", (limit, skip))
            rows.reverse()
            return columns, [tuple(typed_value(v, t) for v, t in zip(row, column_types, strict=True)) for row in rows]

        return self._admin_call(f'cannot read table "{table_id}"', run)

    def _event_time_column(self, cur: Any, table_id: str) -> str | None:
        if not fetch(cur, "SELECT to_regclass($1)", (f"{SCHEMA}.tables",))[0][0]:
            return None
        found = fetch(cur, f"SELECT event_time_column FROM {SCHEMA}.tables WHERE table_id = $1", (table_id,))
        return str(found[0][0]) if found and found[0][0] is not None else None

    # -- bookkeeping ---------------------------------------------------------

    def _ensure_bookkeeping(self, cur: Any) -> None:
        """Inside an admin transaction: pushstream's own schema and tables (the
        caller calls :meth:`_commit`, which remembers they exist)."""
        if not self._bookkeeping:
            create_tables(cur)

    def _commit(self, cur: Any) -> None:
        cur.execute("COMMIT")
        # Only now are the bookkeeping tables (if this transaction made them) there.
        self._bookkeeping = True

    # -- sinks ---------------------------------------------------------------

    def prepare_sink(self, sink: SinkIdentity, spec: TableSpec) -> None:
        """Creates (or updates) the sink's sink user, its grants on the spec's table
        and its staging table; creates or checks the table. Idempotent."""
        self._validate(spec)
        user = self.sink_user(sink)
        schema, _ = self.table_name(spec.table_id)

        def run(cur: Any) -> None:
            self._prepared.pop(user, None)
            cur.execute("BEGIN")
            self._ensure_bookkeeping(cur)
            self._ensure_table(cur, spec)
            staging = sink_users.prepare(cur, user, sink, spec, schema=schema, table=self._qualified(spec.table_id))
            self._commit(cur)
            self._prepared[user] = (spec, staging)

        self._admin_call(f'cannot prepare the sink user of sink "{sink.source_id}/{sink.sink_id}"', run)

    def rotate_sink_credentials(self, sink: SinkIdentity) -> None:
        """A new password for the sink's sink user; sessions opened with the old one
        are closed (when the admin may signal them). No sink user yet: nothing to rotate."""
        user = self.sink_user(sink)

        def run(cur: Any) -> None:
            cur.execute("BEGIN")
            self._ensure_bookkeeping(cur)
            if not sink_users.rotate_password(cur, user, sink):
                cur.execute("ROLLBACK")
                return
            self._commit(cur)
            sink_users.terminate_sessions(cur, user)

        self._drop_connection(user)
        self._admin_call(f'cannot rotate the password of sink "{sink.source_id}/{sink.sink_id}"', run)

    def drop_sink(self, sink: SinkIdentity) -> None:
        """Drops the sink's sink user and staging table (its table and rows stay)."""
        user = self.sink_user(sink)
        self._drop_connection(user)
        self._prepared.pop(user, None)

        def run(cur: Any) -> None:
            sink_users.terminate_sessions(cur, user)
            cur.execute("BEGIN")
            self._ensure_bookkeeping(cur)
            sink_users.drop(cur, user)
            self._commit(cur)

        self._admin_call(f'cannot drop the sink user of sink "{sink.source_id}/{sink.sink_id}"', run)

    def _drop_connection(self, user: str) -> None:
        with self._lock:
            conn = self._sink_connections.pop(user, None)
        if conn is not None:
            conn.close()

    # -- imports -------------------------------------------------------------

    def _ensure_prepared(self, sink: SinkIdentity, spec: TableSpec) -> tuple[str, str | None]:
        user = self.sink_user(sink)
        prepared = self._prepared.get(user)
        if prepared is None or prepared[0] != spec:
            self.prepare_sink(sink, spec)
            prepared = self._prepared[user]
        return user, prepared[1]

    def _sink_connection(self, user: str) -> tuple[_Connection, bool]:
        """(connection, fresh) of the sink user; opened with the stored password."""
        with self._lock:
            conn = self._sink_connections.get(user)
        if conn is not None:
            return conn, False
        password = self._admin_call("cannot read sink credentials", lambda cur: sink_users.password(cur, user))
        if password is None:
            raise TargetError(f'sink user "{user}" has no stored password; prepare the sink again')
        try:
            conn = _Connection(self._sink_url(user, password))
        except adbc_driver_manager.Error as exc:
            if is_auth_failure(exc):
                # The sink user or its password changed behind our back: prepare again next time.
                self._prepared.pop(user, None)
            raise target_error(exc, f'cannot connect as the sink user "{user}"') from exc
        with self._lock:
            self._sink_connections[user] = conn
        return conn, True

    @contextmanager
    def _sink_transaction(self, user: str, conn: _Connection) -> Iterator[None]:
        """Leaves the sink user's connection clean when the transaction in the
        block fails: rolled back, or dropped when the server went away or the
        block was interrupted. The error propagates unchanged."""
        try:
            yield
        except TargetError:
            self._rollback_sink(user, conn)
            raise
        except adbc_driver_manager.Error as exc:
            if is_unavailable(exc):
                self._drop_connection(user)
            else:
                self._rollback_sink(user, conn)
            raise
        except BaseException:
            self._drop_connection(user)
            raise

    def _rollback_sink(self, user: str, conn: _Connection) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")
        except adbc_driver_manager.Error:
            self._drop_connection(user)

    def import_files(self, request: ImportRequest) -> ImportResult:
        """Imports the staging files as the sink's sink user in one transaction (see
        the module docstring); prepares the sink first when this process has not."""
        self._validate(request.spec)
        user = self.sink_user(request.sink)
        cached = user in self._prepared
        try:
            return self._import_files(request)
        except UnpreparedError:
            if not cached:
                raise
            # Prepared earlier by this process, but the table, its schema or the
            # sink user's grants were dropped by hand since: prepare again (which
            # recreates what is missing) and retry once.
            self._prepared.pop(user, None)
            return self._import_files(request)

    def _import_files(self, request: ImportRequest) -> ImportResult:
        spec = request.spec
        user, staging = self._ensure_prepared(request.sink, spec)
        what = f'import "{request.import_id}" into "{spec.table_id}" failed'
        with self._lock:
            sink_lock = self._sink_locks.setdefault(user, threading.Lock())
        with sink_lock:
            conn = self._already_imported(user, request.import_id, what)
            if conn is None:
                return ImportResult(rows_read=0, already_imported=True)
            conversion = _conversion(spec)
            rows: pa.RecordBatchReader | pa.Table | StagingStream | None
            if staging is not None:
                # Parsed and deduplicated before the transaction: no locks held meanwhile.
                table = read_staging(request.paths, spec.columns)
                rows_read = table.num_rows
                order = write_order(table, spec)
                if not len(order):
                    rows = None
                elif spec.system_columns:
                    rows = conversion.table(rows_to_write(table, order, spec, POSITION))
                else:
                    rows = gather(table, order, convert=conversion.batch, schema=conversion.schema)
            else:
                # Parsed while COPY sends the previous batches.
                rows = StagingStream(request.paths, spec.columns)
                rows_read = 0
            try:
                with self._sink_transaction(user, conn), conn.cursor() as cur:
                    written = self._import(cur, request, staging, rows, rows_read, conversion=conversion)
            except adbc_driver_manager.Error as exc:
                if isinstance(rows, StagingStream) and rows.error is not None:
                    raise rows.error from exc
                if conversion.error is not None:
                    raise conversion.error from exc
                if request.reject is not None and is_row_error(exc) and not is_unavailable(exc):
                    return self._import_rejecting(user, conn, request, staging, message(exc))
                if is_unprepared(exc):
                    self._prepared.pop(user, None)
                    raise UnpreparedError(message(exc)) from exc
                raise target_error(exc, what) from exc
        if written is None:
            return ImportResult(rows_read=0, already_imported=True)
        return ImportResult(rows_read=written, event_range=conversion.event_range)

    def _already_imported(self, user: str, import_id: str, what: str) -> _Connection | None:
        """``None`` when the sink already imported ``import_id``, else the sink's
        connection, checked alive: one that died while idle (the server restarted)
        is replaced once, before anything was written."""
        for attempt in (1, 2):
            conn, fresh = self._sink_connection(user)
            try:
                with conn.cursor() as cur:
                    done = _recorded(cur, import_id)
                return None if done else conn
            except adbc_driver_manager.Error as exc:
                self._drop_connection(user)
                if is_unavailable(exc) and not fresh and attempt == 1:
                    continue
                raise target_error(exc, what) from exc
        raise AssertionError("unreachable")

    def _import_rejecting(
        self, user: str, conn: _Connection, request: ImportRequest, staging: str | None, reason: str
    ) -> ImportResult:
        """The import again, after the database refused some of its rows: the
        rows are written in savepoint-guarded parts (see :func:`write_bisecting`),
        the refused ones handed to ``request.reject`` before the commit."""
        spec = request.spec
        assert request.reject is not None
        schema, table_name = self.table_name(spec.table_id)
        qualified = self._qualified(spec.table_id)
        conversion = _conversion(spec)
        data = read_staging(request.paths, spec.columns)
        rows = rows_to_write(data, write_order(data, spec), spec, POSITION)

        def attempt(cur: Any, part: pa.Table) -> str | None:
            cur.execute("SAVEPOINT pushstream_part")
            written_range = conversion.event_range
            try:
                if staging is not None:
                    self._merge(cur, qualified, staging, spec, conversion.table(part), prune=False)
                else:
                    cur.adbc_ingest(table_name, conversion.table(part), mode="append", db_schema_name=schema)
            except adbc_driver_manager.Error as exc:
                if not is_row_error(exc) or is_unavailable(exc):
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT pushstream_part")
                # The part's event times count only once its rows are written.
                conversion.event_range = written_range
                return message(exc)
            cur.execute("RELEASE SAVEPOINT pushstream_part")
            return None

        def prune(cur: Any) -> None:
            """A snapshot deletes what the whole import does not have, before its parts are written."""
            if spec.merge_strategy != "snapshot":
                return
            if staging is None or not spec.primary_key:
                cur.execute(sql.prune_snapshot(qualified, spec, ""))
                return
            qstaging = self._stage(cur, staging, conversion.table(rows))
            cur.execute(sql.prune_snapshot(qualified, spec, qstaging))
            cur.execute(f"TRUNCATE {qstaging}")

        what = f'import "{request.import_id}" into "{spec.table_id}" failed'
        try:
            with self._sink_transaction(user, conn), conn.cursor() as cur:
                if not self._begin(cur, request):
                    return ImportResult(rows_read=0, already_imported=True)
                prune(cur)
                # Staging every row for the prune is no write: refused rows must not count.
                conversion.event_range = None
                refused = write_bisecting(rows, lambda part: attempt(cur, part), reason, len(spec.columns))
                if refused:
                    request.reject(refused)
                if not self._finish(cur, request, data.num_rows):
                    return ImportResult(rows_read=0, already_imported=True)
        except adbc_driver_manager.Error as exc:
            raise target_error(exc, what) from exc
        return ImportResult(rows_read=data.num_rows, rejected=len(refused), event_range=conversion.event_range)

    def _begin(self, cur: Any, request: ImportRequest) -> bool:
        """Starts the import transaction: locks the table, checks its shape;
        ``False`` (rolled back) when the import id is imported already."""
        spec = request.spec
        qualified = self._qualified(spec.table_id)
        cur.execute("BEGIN")
        cur.execute(f"SET LOCAL lock_timeout = {literal(LOCK_TIMEOUT)}")
        # JIT compilation costs more than it saves on a one-shot bulk statement.
        cur.execute("SET LOCAL jit = off")
        # Holds off ALTER TABLE (and DROP) until we commit: the shape checked
        # below is the shape written to.
        cur.execute(f"LOCK TABLE {qualified} IN ROW EXCLUSIVE MODE")
        if _recorded(cur, request.import_id):
            cur.execute("ROLLBACK")
            return False
        shape = table_shape(cur, qualified)
        if shape is None:
            raise UnpreparedError(f'table "{spec.table_id}" does not exist')
        spec.check_matches(*shape)
        return True

    def _import(
        self,
        cur: Any,
        request: ImportRequest,
        staging: str | None,
        rows: pa.RecordBatchReader | pa.Table | StagingStream | None,
        rows_read: int,
        *,
        conversion: Conversion,
    ) -> int | None:
        """The import transaction; the number of rows read, or ``None`` when the
        import id turned out to be imported already (nothing written)."""
        spec = request.spec
        schema, table = self.table_name(spec.table_id)
        qualified = self._qualified(spec.table_id)
        if not self._begin(cur, request):
            return None
        if isinstance(rows, StagingStream):
            if spec.merge_strategy == "snapshot":
                cur.execute(sql.prune_snapshot(qualified, spec, ""))
            cur.adbc_ingest(table, conversion.reader(rows.reader()), mode="append", db_schema_name=schema)
            rows_read = rows.rows
        elif rows is not None:
            assert staging is not None
            self._merge(cur, qualified, staging, spec, rows, prune=True)
        return rows_read if self._finish(cur, request, rows_read) else None

    def _finish(self, cur: Any, request: ImportRequest, rows_read: int) -> bool:
        """Records the import id and commits; ``False`` (rolled back) when
        another process recorded it first."""
        spec = request.spec
        try:
            # Recorded last, in the same transaction; the primary key makes a
            # concurrent import of the same id (another process) fail here.
            cur.execute(
                f"INSERT INTO {SCHEMA}.imports (import_id, table_id, row_count) VALUES ($1, $2, $3)",
                parameters=(request.import_id, spec.table_id, rows_read),
            )
        except adbc_driver_manager.Error as exc:
            if is_unique_violation(exc):
                cur.execute("ROLLBACK")
                return False
            raise
        cur.execute("COMMIT")
        return True

    @staticmethod
    def _stage(cur: Any, staging: str, rows: pa.RecordBatchReader | pa.Table) -> str:
        """Rows into the sink's staging table (empty, locked for the transaction); its qualified name."""
        qstaging = f"{SCHEMA}.{quote_ident(staging)}"
        # ACCESS EXCLUSIVE on our own staging table: one import of a sink at a time,
        # even from two processes.
        cur.execute(f"LOCK TABLE {qstaging} IN ACCESS EXCLUSIVE MODE")
        cur.adbc_ingest(staging, rows, mode="append", db_schema_name=SCHEMA)
        return qstaging

    def _merge(
        self,
        cur: Any,
        qualified: str,
        staging: str,
        spec: TableSpec,
        rows: pa.RecordBatchReader | pa.Table,
        *,
        prune: bool,
    ) -> None:
        """The rows through the staging table into the table by the spec's merge
        strategy; ``prune``: the rows are the whole import, and a snapshot
        deletes what they do not have first."""
        qstaging = self._stage(cur, staging, rows)
        if prune and spec.merge_strategy == "snapshot":
            cur.execute(sql.prune_snapshot(qualified, spec, qstaging))
        if spec.system_columns:
            self._merge_numbered(cur, qualified, qstaging, spec)
        elif spec.merge_strategy in ("upsert", "ledger"):
            # The staged rows are unique and sorted by key (dedup_order), so the upsert
            # walks the key's B-tree in order.
            cur.execute(sql.upsert(qualified, spec, f"SELECT {sql.column_list(spec.columns)} FROM {qstaging}"))
        else:
            cur.execute(sql.merge(qualified, spec, qstaging))
        cur.execute(f"TRUNCATE {qstaging}")

    def _merge_numbered(self, cur: Any, qualified: str, qstaging: str, spec: TableSpec) -> None:
        """The merge of a table with system columns: offsets from the table's
        counter, whose row stays locked until the commit (imports of one table by
        several sinks number their rows one after the other)."""
        first = int(
            fetch(
                cur,
                f"INSERT INTO {SCHEMA}.offsets (table_id, next_offset) VALUES ($1, 0) ON CONFLICT (table_id)"
                " DO UPDATE SET next_offset = offsets.next_offset RETURNING next_offset",
                (spec.table_id,),
            )[0][0]
        )
        merge = sql.merge(qualified, spec, qstaging, first_offset=first, system_time="now()")
        written = int(fetch(cur, f"WITH written AS ({merge} RETURNING 1) SELECT count(*) FROM written")[0][0])
        cur.execute(
            f"UPDATE {SCHEMA}.offsets SET next_offset = $2 WHERE table_id = $1",
            parameters=(spec.table_id, first + written),
        )

    def close(self) -> None:
        """Closes the admin and every sink connection."""
        with self._lock:
            self._closed = True
            connections = list(self._sink_connections.values())
            self._sink_connections.clear()
            if self._admin is not None:
                connections.append(self._admin)
                self._admin = None
        for conn in connections:
            conn.close()
