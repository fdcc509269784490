"""PostgreSQL, the production target, through ADBC (``adbc-driver-postgresql``).

Naming: bucket ``in.c-bucket`` → schema ``"in.c-bucket"``, table → table, both
created on demand through the admin connection. Key columns are created
``COLLATE "C"``: byte order makes the key's B-tree comparisons memcmp instead of
locale rules, which the merge needs (non-key columns keep the database default).

Least privilege: every sink gets its own role (``pushstream_sink_<hash>``, LOGIN,
a random 256-bit password) and every import of the sink runs its DML as that
role. The role may:

- use the table's schema and INSERT into the table; with a primary key also
  UPDATE and SELECT it (``INSERT ... ON CONFLICT DO UPDATE`` reads the existing
  row, so PostgreSQL requires SELECT);
- with a key, write its own staging table ``pushstream."stage_<hash>"`` (UNLOGGED,
  created and owned by the admin: the sink role never runs DDL, not even
  ``CREATE TEMP TABLE``);
- record its imports in ``pushstream.imports``, where row-level security limits
  it to its own rows.

It owns nothing and has no CREATE privilege anywhere. (PostgreSQL grants PUBLIC
CONNECT and TEMPORARY on a database by default, so a sink role could still make
session-private temporary tables; pushstream never needs them, and an operator
who wants them gone revokes TEMPORARY from PUBLIC.) The admin connection runs
the DDL (schemas, tables, staging tables, roles, grants) and the operator's
reads (``tail``).

Credentials are stored in ``pushstream.sinks`` in the target database itself:
a table owned by the admin role with no grants to anyone, so only the admin (and
superusers) can read it, and every pushstream process using the same admin URL
finds them. The server only ever receives the role's SCRAM verifier
(``CREATE/ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'``), so the plain password
never appears in PostgreSQL's statement logs.

Imports (one transaction as the sink role): lock the table against concurrent
ALTERs, skip an import id already recorded, check the table's shape, then
without a key COPY the rows straight into the table (ADBC ingest of a stream of
batches parsed while the previous ones are sent); with a key deduplicate in
Arrow first (last occurrence wins, sorted by key), COPY into the staging table,
``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` and truncate the staging
table. The import id is recorded last, in the same transaction; its primary key
makes a concurrent import of the same id fail instead of writing twice. Rows
never travel row by row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pg_dbapi  # type: ignore[import-untyped]
import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from pushstream.targets._staging import (
    StagingStream,
    check_shape,
    dedup_order,
    gather,
    quote_ident,
    read_staging,
    validate_spec,
    write_bisecting,
)
from pushstream.targets.base import (
    ImportRequest,
    ImportResult,
    SinkIdentity,
    TableSpec,
    TargetError,
    TargetUnavailableError,
    parse_table_id,
)

T = TypeVar("T")

#: The admin-only schema of pushstream's own tables.
SCHEMA = "pushstream"
#: PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes).
MAX_IDENTIFIER = 63
#: An import waits this long for a table lock (someone altering the table by hand).
LOCK_TIMEOUT = "60s"
#: Connection attempts give up after this many seconds (the import is retried).
CONNECT_TIMEOUT = 10
_ROLE_PREFIX = "pushstream_sink_"
_INSERT_SINK = f"INSERT INTO {SCHEMA}.sinks (role, branch_id, source_id, sink_id, password) VALUES ($1, $2, $3, $4, $5)"

# undefined_table, invalid_schema_name, insufficient_privilege: what an import
# meets when its table or grants were dropped by hand after preparation.
_UNPREPARED_STATES = ("42P01", "3F000", "42501")

# SQLSTATE classes/codes that mean "the server is not there right now".
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300", "53100", "58030")


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


class _UnpreparedError(TargetError):
    """The sink's table or grants are gone: preparing the sink again may fix it."""


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    # libpq messages repeat the query and add hints on following lines; the
    # first line says what happened.
    return text.splitlines()[0] if text else type(exc).__name__


def _is_unavailable(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith(_UNAVAILABLE_STATES):
        return True
    text = str(exc).lower()
    if "authentication failed" in text or "does not exist" in text or "permission denied" in text:
        return False
    status = getattr(exc, "status_code", None)
    return status == adbc_driver_manager.AdbcStatusCode.IO or any(
        phrase in text
        for phrase in (
            "server closed the connection",
            "connection refused",
            "could not connect",
            "no connection to the server",
            "terminating connection",
            "connection timed out",
            "the database system is",
        )
    )


# data_exception (a NUL in text, bad UTF-8, a value out of range),
# integrity_constraint_violation (CHECK, NOT NULL, UNIQUE, FOREIGN KEY of a table
# changed by hand), program_limit_exceeded (a key too large for its index):
# a row is the problem, not the import.
_ROW_STATES = ("22", "23", "54000")


def _is_row_error(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate:
        return sqlstate.startswith(_ROW_STATES)
    text = str(exc).lower()
    return "invalid byte sequence" in text or "violates" in text


def _is_auth_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "authentication failed" in text or (getattr(exc, "sqlstate", None) or "").startswith("28")


def _target_error(exc: BaseException, what: str) -> TargetError:
    if isinstance(exc, TargetError):
        return exc
    if _is_unavailable(exc):
        return TargetUnavailableError(f"{what}: PostgreSQL is unavailable: {_message(exc)}")
    return TargetError(f"{what}: {_message(exc)}")


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677),
    computed here so the plain password is never sent to the server."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _literal(value: str) -> str:
    """A string literal for statements that take no parameters (DDL)."""
    return "'" + value.replace("'", "''") + "'"


def _check_identifier(name: str, what: str) -> None:
    if len(name.encode()) > MAX_IDENTIFIER:
        raise TargetError(f'{what} "{name}" is longer than PostgreSQL\'s {MAX_IDENTIFIER} bytes')


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
        # role → (table id, columns, key, staging table) prepared by this process
        self._prepared: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str | None]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresTarget({self._parts.hostname}:{self._parts.port or 5432}{self._parts.path})"

    # -- connections -------------------------------------------------------

    def _sink_url(self, role: str, password: str) -> str:
        host = self._parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{self._parts.port}" if self._parts.port else ""
        netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}{port}"
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
                        raise _target_error(exc, f"{what}: cannot connect as the admin") from exc
                conn = self._admin
                try:
                    with conn.cursor() as cur:
                        return fn(cur)
                except TargetError:
                    self._rollback(conn)
                    raise
                except adbc_driver_manager.Error as exc:
                    if _is_unavailable(exc):
                        conn.close()
                        self._admin = None
                        if not fresh and attempt == 1:
                            continue
                    else:
                        self._rollback(conn)
                    raise _target_error(exc, what) from exc
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

    @staticmethod
    def _rows(cur: Any, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur.execute(sql, parameters=parameters)
        return list(cur.fetchall())

    # -- naming --------------------------------------------------------------

    @staticmethod
    def table_name(table_id: str) -> tuple[str, str]:
        """(schema, table) of a table id: (``in.c-bucket``, ``table``)."""
        schema, table = parse_table_id(table_id)
        _check_identifier(schema, "bucket")
        _check_identifier(table, "table")
        return schema, table

    def _qualified(self, table_id: str) -> str:
        schema, table = self.table_name(table_id)
        return f"{quote_ident(schema)}.{quote_ident(table)}"

    def _database_name(self) -> str:
        if self._database is None:
            self._database = str(
                self._admin_call(
                    "cannot read the database name", lambda cur: self._rows(cur, "SELECT current_database()")[0][0]
                )
            )
        return self._database

    def role_name(self, sink: SinkIdentity) -> str:
        """The role of a sink: deterministic per database and sink, so every
        process finds it, and short enough for PostgreSQL names."""
        key = "\x00".join((self._database_name(), str(sink.branch_id), sink.source_id, sink.sink_id))
        return _ROLE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:20]

    @staticmethod
    def _staging_name(role: str) -> str:
        return "stage_" + role.removeprefix(_ROLE_PREFIX)

    # -- tables --------------------------------------------------------------

    def _validate(self, spec: TableSpec) -> None:
        self.table_name(spec.table_id)
        validate_spec(spec.columns, spec.primary_key, spec.table_id)
        for column in spec.columns:
            _check_identifier(column, "column")

    @staticmethod
    def _shape(cur: Any, qualified: str) -> tuple[list[str], list[str]] | None:
        cur.execute("SELECT to_regclass($1)::oid", parameters=(qualified,))
        found = cur.fetchall()
        if not found or found[0][0] is None:
            return None
        oid = int(found[0][0])
        cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped"
            " ORDER BY attnum",
            parameters=(oid,),
        )
        columns = [str(r[0]) for r in cur.fetchall()]
        cur.execute(
            "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
            parameters=(oid,),
        )
        key = [str(r[0]) for r in cur.fetchall()]
        return columns, key

    def _create_table_sql(self, spec: TableSpec) -> str:
        columns = ", ".join(
            f'{quote_ident(c)} text COLLATE "C" NOT NULL' if c in spec.primary_key else f"{quote_ident(c)} text"
            for c in spec.columns
        )
        key = f", PRIMARY KEY ({', '.join(quote_ident(c) for c in spec.primary_key)})" if spec.primary_key else ""
        return f"CREATE TABLE {self._qualified(spec.table_id)} ({columns}{key})"

    def _ensure_table(self, cur: Any, spec: TableSpec) -> None:
        """Inside an admin transaction: creates or checks the table."""
        qualified = self._qualified(spec.table_id)
        shape = self._shape(cur, qualified)
        if shape is None:
            schema, _ = self.table_name(spec.table_id)
            # Serialises concurrent creators (two processes, two sinks of one table).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", parameters=(f"pushstream:{spec.table_id}",))
            cur.fetchall()
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            shape = self._shape(cur, qualified)
            if shape is None:
                cur.execute(self._create_table_sql(spec))
                return
        check_shape(spec.table_id, shape[0], shape[1], spec.columns, spec.primary_key)

    def ensure_table(self, spec: TableSpec) -> None:
        """Creates the schema and table when missing, or checks the table exactly."""
        self._validate(spec)

        def run(cur: Any) -> None:
            cur.execute("BEGIN")
            self._ensure_table(cur, spec)
            cur.execute("COMMIT")

        self._admin_call(f'cannot create table "{spec.table_id}"', run)

    def table_exists(self, table_id: str) -> bool:
        qualified = self._qualified(table_id)
        return bool(
            self._admin_call(
                f'cannot inspect table "{table_id}"',
                lambda cur: self._shape(cur, qualified) is not None,
            )
        )

    def tail(self, table_id: str, limit: int = 10, skip: int = 0) -> tuple[list[str], list[tuple[str | None, ...]]]:
        """The last ``limit`` rows in physical order (``ctid``), skipping the ``skip``
        newest, oldest first. Appended rows are in import order; an upserted row
        moves to where its new version was written."""
        if limit < 0 or skip < 0:
            raise ValueError("limit and skip must not be negative")
        qualified = self._qualified(table_id)

        def run(cur: Any) -> tuple[list[str], list[tuple[str | None, ...]]]:
            shape = self._shape(cur, qualified)
            if shape is None:
                raise TargetError(f'table "{table_id}" does not exist')
            select = ", ".join(f"{quote_ident(c)}::text" for c in shape[0])
            rows = self._rows(
                cur, f"SELECT {select} FROM {qualified} ORDER BY ctid DESC LIMIT $1 OFFSET $2", (limit, skip)
            )
            rows.reverse()
            return shape[0], [tuple(None if v is None else str(v) for v in row) for row in rows]

        return self._admin_call(f'cannot read table "{table_id}"', run)

    # -- bookkeeping ---------------------------------------------------------

    def _ensure_bookkeeping(self, cur: Any) -> None:
        """Inside an admin transaction: pushstream's own schema and tables (the
        caller calls :meth:`_commit`, which remembers they exist)."""
        if self._bookkeeping:
            return
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('pushstream:bookkeeping'))")
        cur.fetchall()
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.sinks ("
            " role name PRIMARY KEY, branch_id bigint NOT NULL, source_id text NOT NULL, sink_id text NOT NULL,"
            " password text NOT NULL, table_id text, staging_table name,"
            " created_at timestamptz NOT NULL DEFAULT now(), rotated_at timestamptz)"
        )
        cur.execute(f"REVOKE ALL ON {SCHEMA}.sinks FROM PUBLIC")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.imports ("
            " sink_role name NOT NULL DEFAULT current_user, import_id text NOT NULL, table_id text NOT NULL,"
            " row_count bigint NOT NULL, imported_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (sink_role, import_id))"
        )
        cur.execute(f"ALTER TABLE {SCHEMA}.imports ENABLE ROW LEVEL SECURITY")
        cur.execute(
            "SELECT 1 FROM pg_policies WHERE schemaname = $1 AND tablename = 'imports' AND policyname = 'own_rows'",
            parameters=(SCHEMA,),
        )
        if not cur.fetchall():
            cur.execute(
                f"CREATE POLICY own_rows ON {SCHEMA}.imports"
                " USING (sink_role = current_user) WITH CHECK (sink_role = current_user)"
            )

    def _commit(self, cur: Any) -> None:
        cur.execute("COMMIT")
        # Only now are the bookkeeping tables (if this transaction made them) there.
        self._bookkeeping = True

    # -- sinks ---------------------------------------------------------------

    def _granted(self, cur: Any, role: str) -> tuple[set[str], set[str]]:
        """(relations, schemas) in this database the role holds privileges on."""
        relations = {
            str(r[0])
            for r in self._rows(
                cur,
                "SELECT c.oid::regclass::text FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a"
                " JOIN pg_roles r ON r.oid = a.grantee WHERE r.rolname = $1",
                (role,),
            )
        }
        schemas = {
            str(r[0])
            for r in self._rows(
                cur,
                "SELECT quote_ident(n.nspname) FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a"
                " JOIN pg_roles r ON r.oid = a.grantee WHERE r.rolname = $1",
                (role,),
            )
        }
        return relations, schemas

    def _role_exists(self, cur: Any, role: str) -> bool:
        return bool(self._rows(cur, "SELECT 1 FROM pg_roles WHERE rolname = $1", (role,)))

    def _prepare(self, cur: Any, sink: SinkIdentity, spec: TableSpec) -> str | None:
        """Inside an admin transaction: role, grants and staging table of a sink;
        returns the staging table's name (with a key)."""
        role = self.role_name(sink)
        self._ensure_bookkeeping(cur)
        self._ensure_table(cur, spec)
        cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", parameters=(f"pushstream:{role}",))
        cur.fetchall()
        stored = self._rows(cur, f"SELECT password FROM {SCHEMA}.sinks WHERE role = $1", (role,))
        if not self._role_exists(cur, role):
            password = secrets.token_urlsafe(32)
            cur.execute(
                f"CREATE ROLE {quote_ident(role)} LOGIN NOINHERIT PASSWORD {_literal(scram_verifier(password))}"
            )
            cur.execute(
                f"COMMENT ON ROLE {quote_ident(role)} IS "
                + _literal(f"pushstream sink {sink.branch_id}/{sink.source_id}/{sink.sink_id}")
            )
            if stored:
                cur.execute(
                    f"UPDATE {SCHEMA}.sinks SET password = $2, rotated_at = now() WHERE role = $1",
                    parameters=(role, password),
                )
            else:
                cur.execute(
                    _INSERT_SINK,
                    parameters=(role, sink.branch_id, sink.source_id, sink.sink_id, password),
                )
        elif not stored:
            # The role exists but its password was lost (bookkeeping dropped): set a new one.
            password = secrets.token_urlsafe(32)
            cur.execute(f"ALTER ROLE {quote_ident(role)} PASSWORD {_literal(scram_verifier(password))}")
            cur.execute(
                _INSERT_SINK,
                parameters=(role, sink.branch_id, sink.source_id, sink.sink_id, password),
            )

        qrole = quote_ident(role)
        schema, _ = self.table_name(spec.table_id)
        table = self._qualified(spec.table_id)
        privileges = "INSERT, UPDATE, SELECT" if spec.primary_key else "INSERT"
        want_relations = {self._regclass_text(cur, table), self._regclass_text(cur, f"{SCHEMA}.imports")}
        want_schemas = {self._quote_ident_sql(cur, schema), SCHEMA}
        staging: str | None = None
        if spec.primary_key:
            staging = self._staging_name(role)
            qstaging = f"{SCHEMA}.{quote_ident(staging)}"
            shape = self._shape(cur, qstaging)
            if shape is None or shape[0] != list(spec.columns):
                cur.execute(f"DROP TABLE IF EXISTS {qstaging}")
                columns = ", ".join(f"{quote_ident(c)} text" for c in spec.columns)
                # UNLOGGED: staged rows live for one transaction, never need WAL.
                cur.execute(f"CREATE UNLOGGED TABLE {qstaging} ({columns})")
            cur.execute(f"GRANT SELECT, INSERT, TRUNCATE ON {qstaging} TO {qrole}")
            want_relations.add(self._regclass_text(cur, qstaging))
        # Revoke whatever is left from an earlier table of this sink.
        have_relations, have_schemas = self._granted(cur, role)
        for relation in have_relations - want_relations:
            cur.execute(f"REVOKE ALL ON {relation} FROM {qrole}")
        for stale_schema in have_schemas - want_schemas:
            cur.execute(f"REVOKE ALL ON SCHEMA {stale_schema} FROM {qrole}")
        cur.execute(f"REVOKE ALL ON {table} FROM {qrole}")
        cur.execute(f"GRANT USAGE ON SCHEMA {quote_ident(schema)} TO {qrole}")
        cur.execute(f"GRANT {privileges} ON {table} TO {qrole}")
        cur.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {qrole}")
        cur.execute(f"GRANT SELECT, INSERT ON {SCHEMA}.imports TO {qrole}")
        cur.execute(
            f"UPDATE {SCHEMA}.sinks SET table_id = $2, staging_table = $3 WHERE role = $1",
            parameters=(role, spec.table_id, staging),
        )
        return staging

    def _regclass_text(self, cur: Any, qualified: str) -> str:
        return str(self._rows(cur, "SELECT $1::regclass::text", (qualified,))[0][0])

    def _quote_ident_sql(self, cur: Any, name: str) -> str:
        return str(self._rows(cur, "SELECT quote_ident($1)", (name,))[0][0])

    def prepare_sink(self, sink: SinkIdentity, spec: TableSpec) -> None:
        """Creates (or updates) the sink's role, its grants on the spec's table and
        its staging table; creates or checks the table. Idempotent."""
        self._validate(spec)
        role = self.role_name(sink)

        def run(cur: Any) -> None:
            self._prepared.pop(role, None)
            cur.execute("BEGIN")
            staging = self._prepare(cur, sink, spec)
            self._commit(cur)
            self._prepared[role] = (spec.table_id, spec.columns, spec.primary_key, staging)

        self._admin_call(f'cannot prepare the role of sink "{sink.source_id}/{sink.sink_id}"', run)

    def rotate_sink_credentials(self, sink: SinkIdentity) -> None:
        """A new password for the sink's role; sessions opened with the old one are
        closed (when the admin may signal them). No role yet: nothing to rotate."""
        role = self.role_name(sink)
        password = secrets.token_urlsafe(32)

        def run(cur: Any) -> None:
            cur.execute("BEGIN")
            self._ensure_bookkeeping(cur)
            if not self._role_exists(cur, role):
                cur.execute("ROLLBACK")
                return
            cur.execute(f"ALTER ROLE {quote_ident(role)} PASSWORD {_literal(scram_verifier(password))}")
            cur.execute(
                _INSERT_SINK + " ON CONFLICT (role) DO UPDATE SET password = excluded.password, rotated_at = now()",
                parameters=(role, sink.branch_id, sink.source_id, sink.sink_id, password),
            )
            self._commit(cur)
            self._terminate_sessions(cur, role)

        self._drop_connection(role)
        self._admin_call(f'cannot rotate the password of sink "{sink.source_id}/{sink.sink_id}"', run)

    def _terminate_sessions(self, cur: Any, role: str) -> None:
        # Needs membership in pg_signal_backend (or the role); without it the old
        # sessions simply end when their holders disconnect.
        with suppress(adbc_driver_manager.Error):
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
                parameters=(role,),
            )
            cur.fetchall()

    def drop_sink(self, sink: SinkIdentity) -> None:
        """Drops the sink's role and staging table (its table and rows stay)."""
        role = self.role_name(sink)
        self._drop_connection(role)
        self._prepared.pop(role, None)

        def run(cur: Any) -> None:
            self._terminate_sessions(cur, role)
            cur.execute("BEGIN")
            self._ensure_bookkeeping(cur)
            if self._role_exists(cur, role):
                relations, schemas = self._granted(cur, role)
                for relation in relations:
                    cur.execute(f"REVOKE ALL ON {relation} FROM {quote_ident(role)}")
                for schema in schemas:
                    cur.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {quote_ident(role)}")
                cur.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{quote_ident(self._staging_name(role))}")
                cur.execute(f"DROP ROLE {quote_ident(role)}")
            cur.execute(f"DELETE FROM {SCHEMA}.sinks WHERE role = $1", parameters=(role,))
            self._commit(cur)

        self._admin_call(f'cannot drop the role of sink "{sink.source_id}/{sink.sink_id}"', run)

    def _drop_connection(self, role: str) -> None:
        with self._lock:
            conn = self._sink_connections.pop(role, None)
        if conn is not None:
            conn.close()

    # -- imports -------------------------------------------------------------

    def _ensure_prepared(self, sink: SinkIdentity, spec: TableSpec) -> tuple[str, str | None]:
        role = self.role_name(sink)
        prepared = self._prepared.get(role)
        if prepared is None or prepared[:3] != (spec.table_id, spec.columns, spec.primary_key):
            self.prepare_sink(sink, spec)
            prepared = self._prepared[role]
        return role, prepared[3]

    def _sink_connection(self, role: str) -> tuple[_Connection, bool]:
        """(connection, fresh) of the sink's role; opened with the stored password."""
        with self._lock:
            conn = self._sink_connections.get(role)
        if conn is not None:
            return conn, False
        password = self._admin_call(
            "cannot read sink credentials",
            lambda cur: self._rows(cur, f"SELECT password FROM {SCHEMA}.sinks WHERE role = $1", (role,)),
        )
        if not password:
            raise TargetError(f'role "{role}" has no stored password; prepare the sink again')
        try:
            conn = _Connection(self._sink_url(role, str(password[0][0])))
        except adbc_driver_manager.Error as exc:
            if _is_auth_failure(exc):
                # The role or its password changed behind our back: prepare again next time.
                self._prepared.pop(role, None)
            raise _target_error(exc, f'cannot connect as the sink role "{role}"') from exc
        with self._lock:
            self._sink_connections[role] = conn
        return conn, True

    def import_files(self, request: ImportRequest) -> ImportResult:
        """Imports the staging files as the sink's role in one transaction (see the
        module docstring); prepares the sink first when this process has not."""
        self._validate(request.spec)
        role = self.role_name(request.sink)
        cached = role in self._prepared
        try:
            return self._import_files(request)
        except _UnpreparedError:
            if not cached:
                raise
            # Prepared earlier by this process, but the table, its schema or the
            # role's grants were dropped by hand since: prepare again (which
            # recreates what is missing) and retry once.
            self._prepared.pop(role, None)
            return self._import_files(request)

    def _import_files(self, request: ImportRequest) -> ImportResult:
        spec = request.spec
        role, staging = self._ensure_prepared(request.sink, spec)
        what = f'import "{request.import_id}" into "{spec.table_id}" failed'
        with self._lock:
            sink_lock = self._sink_locks.setdefault(role, threading.Lock())
        with sink_lock:
            conn = self._already_imported(role, request.import_id, what)
            if conn is None:
                return ImportResult(rows_read=0, already_imported=True)
            rows: pa.RecordBatchReader | StagingStream | None
            if spec.primary_key:
                # Parsed and deduplicated before the transaction: no locks held meanwhile.
                table = read_staging(request.paths, spec.columns)
                rows_read = table.num_rows
                order = dedup_order(table, spec.primary_key)
                rows = gather(table, order) if len(order) else None
            else:
                # Parsed while COPY sends the previous batches.
                rows = StagingStream(request.paths, spec.columns)
                rows_read = 0
            try:
                with conn.cursor() as cur:
                    written = self._import(cur, request, staging, rows, rows_read)
            except TargetError:
                self._rollback_sink(role, conn)
                raise
            except adbc_driver_manager.Error as exc:
                if _is_unavailable(exc):
                    self._drop_connection(role)
                else:
                    self._rollback_sink(role, conn)
                if isinstance(rows, StagingStream) and rows.error is not None:
                    raise rows.error from exc
                if request.reject is not None and _is_row_error(exc) and not _is_unavailable(exc):
                    return self._import_rejecting(role, conn, request, staging, _message(exc))
                if getattr(exc, "sqlstate", None) in _UNPREPARED_STATES:
                    self._prepared.pop(role, None)
                    raise _UnpreparedError(_message(exc)) from exc
                raise _target_error(exc, what) from exc
            except BaseException:
                self._drop_connection(role)
                raise
        if written is None:
            return ImportResult(rows_read=0, already_imported=True)
        return ImportResult(rows_read=written)

    def _already_imported(self, role: str, import_id: str, what: str) -> _Connection | None:
        """``None`` when the sink already imported ``import_id``, else the sink's
        connection, checked alive: one that died while idle (the server restarted)
        is replaced once, before anything was written."""
        for attempt in (1, 2):
            conn, fresh = self._sink_connection(role)
            try:
                with conn.cursor() as cur:
                    done = self._rows(cur, f"SELECT 1 FROM {SCHEMA}.imports WHERE import_id = $1", (import_id,))
                return None if done else conn
            except adbc_driver_manager.Error as exc:
                self._drop_connection(role)
                if _is_unavailable(exc) and not fresh and attempt == 1:
                    continue
                raise _target_error(exc, what) from exc
        raise AssertionError("unreachable")

    def _rollback_sink(self, role: str, conn: _Connection) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")
        except adbc_driver_manager.Error:
            self._drop_connection(role)

    def _import_rejecting(
        self, role: str, conn: _Connection, request: ImportRequest, staging: str | None, reason: str
    ) -> ImportResult:
        """The import again, after the database refused some of its rows: the
        rows are written in savepoint-guarded parts (see :func:`write_bisecting`),
        the refused ones handed to ``request.reject`` before the commit."""
        spec = request.spec
        assert request.reject is not None
        schema, table_name = self.table_name(spec.table_id)
        qualified = self._qualified(spec.table_id)
        data = read_staging(request.paths, spec.columns)
        order = dedup_order(data, spec.primary_key) if spec.primary_key else pa.array(np.arange(data.num_rows))
        rows = data.take(order).combine_chunks()

        def attempt(cur: Any, part: pa.Table) -> str | None:
            cur.execute("SAVEPOINT pushstream_part")
            try:
                if spec.primary_key:
                    assert staging is not None
                    reader = pa.RecordBatchReader.from_batches(part.schema, part.to_batches())
                    self._merge(cur, qualified, staging, spec, reader)
                else:
                    cur.adbc_ingest(table_name, part, mode="append", db_schema_name=schema)
            except adbc_driver_manager.Error as exc:
                if not _is_row_error(exc) or _is_unavailable(exc):
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT pushstream_part")
                return _message(exc)
            cur.execute("RELEASE SAVEPOINT pushstream_part")
            return None

        what = f'import "{request.import_id}" into "{spec.table_id}" failed'
        try:
            with conn.cursor() as cur:
                if not self._begin(cur, request):
                    return ImportResult(rows_read=0, already_imported=True)
                refused = write_bisecting(rows, lambda part: attempt(cur, part), reason)
                if refused:
                    request.reject(refused)
                if not self._finish(cur, request, data.num_rows):
                    return ImportResult(rows_read=0, already_imported=True)
        except TargetError:
            self._rollback_sink(role, conn)
            raise
        except adbc_driver_manager.Error as exc:
            if _is_unavailable(exc):
                self._drop_connection(role)
            else:
                self._rollback_sink(role, conn)
            raise _target_error(exc, what) from exc
        except BaseException:
            self._drop_connection(role)
            raise
        return ImportResult(rows_read=data.num_rows, rejected=len(refused))

    def _begin(self, cur: Any, request: ImportRequest) -> bool:
        """Starts the import transaction: locks the table, checks its shape;
        ``False`` (rolled back) when the import id is imported already."""
        spec = request.spec
        qualified = self._qualified(spec.table_id)
        cur.execute("BEGIN")
        cur.execute(f"SET LOCAL lock_timeout = {_literal(LOCK_TIMEOUT)}")
        # JIT compilation costs more than it saves on a one-shot bulk statement.
        cur.execute("SET LOCAL jit = off")
        # Holds off ALTER TABLE (and DROP) until we commit: the shape checked
        # below is the shape written to.
        cur.execute(f"LOCK TABLE {qualified} IN ROW EXCLUSIVE MODE")
        if self._rows(cur, f"SELECT 1 FROM {SCHEMA}.imports WHERE import_id = $1", (request.import_id,)):
            cur.execute("ROLLBACK")
            return False
        shape = self._shape(cur, qualified)
        if shape is None:
            raise _UnpreparedError(f'table "{spec.table_id}" does not exist')
        check_shape(spec.table_id, shape[0], shape[1], spec.columns, spec.primary_key)
        return True

    def _import(
        self,
        cur: Any,
        request: ImportRequest,
        staging: str | None,
        rows: pa.RecordBatchReader | StagingStream | None,
        rows_read: int,
    ) -> int | None:
        """The import transaction; the number of rows read, or ``None`` when the
        import id turned out to be imported already (nothing written)."""
        spec = request.spec
        schema, table = self.table_name(spec.table_id)
        qualified = self._qualified(spec.table_id)
        if not self._begin(cur, request):
            return None
        if isinstance(rows, StagingStream):
            cur.adbc_ingest(table, rows.reader(), mode="append", db_schema_name=schema)
            rows_read = rows.rows
        elif rows is not None:
            assert staging is not None
            self._merge(cur, qualified, staging, spec, rows)
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
            if getattr(exc, "sqlstate", None) == "23505":
                cur.execute("ROLLBACK")
                return False
            raise
        cur.execute("COMMIT")
        return True

    def _merge(self, cur: Any, qualified: str, staging: str, spec: TableSpec, rows: pa.RecordBatchReader) -> None:
        qstaging = f"{SCHEMA}.{quote_ident(staging)}"
        # ACCESS EXCLUSIVE on our own staging table: one import of a sink at a time,
        # even from two processes.
        cur.execute(f"LOCK TABLE {qstaging} IN ACCESS EXCLUSIVE MODE")
        cur.adbc_ingest(staging, rows, mode="append", db_schema_name=SCHEMA)
        columns = ", ".join(quote_ident(c) for c in spec.columns)
        key = ", ".join(quote_ident(c) for c in spec.primary_key)
        others = [c for c in spec.columns if c not in spec.primary_key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in others)
            if others
            else "DO NOTHING"
        )
        # The staged rows are unique and sorted by key (dedup_order), so the upsert
        # walks the key's B-tree in order.
        cur.execute(
            f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {qstaging} ON CONFLICT ({key}) {action}"
        )
        cur.execute(f"TRUNCATE {qstaging}")

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
