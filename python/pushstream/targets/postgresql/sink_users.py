"""Sink users: the PostgreSQL role every sink imports as (SQL calls it a ROLE).

Least privilege: every sink gets its own sink user (``pushstream_sink_<hash>``,
LOGIN, a random 256-bit password) and every import of the sink runs its DML as
that user. The sink user may:

- use the table's schema and INSERT into the table; with a primary key also
  UPDATE and SELECT it (``INSERT ... ON CONFLICT DO UPDATE`` reads the existing
  row, so PostgreSQL requires SELECT); with system columns or ``ledger`` SELECT
  it (whether a key is there), with ``snapshot`` DELETE from it;
- when the rows go through SQL (a key, system columns), write its
  own staging table ``pushstream."stage_<hash>"`` (UNLOGGED, created and owned by
  the admin: the sink user never runs DDL, not even ``CREATE TEMP TABLE``);
- record its imports in ``pushstream.imports``, where row-level security limits
  it to its own rows; with system columns, read and advance the next offsets
  in ``pushstream.offsets`` (of any table: sinks of one table share a counter).

It owns nothing and has no CREATE privilege anywhere. (PostgreSQL grants PUBLIC
CONNECT and TEMPORARY on a database by default, so a sink user could still make
session-private temporary tables; pushstream never needs them, and an operator
who wants them gone revokes TEMPORARY from PUBLIC.)

Credentials are stored in ``pushstream.sinks`` in the target database itself:
a table owned by the admin role with no grants to anyone, so only the admin (and
superusers) can read it, and every pushstream process using the same admin URL
finds them. The server only ever receives the sink user's SCRAM verifier
(``CREATE/ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'``), so the plain password
never appears in PostgreSQL's statement logs. Disabling and enabling a sink
rotates the password (:func:`rotate_password`).

The functions run on the admin's cursor, inside the caller's transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from contextlib import suppress
from typing import Any

import adbc_driver_manager

from pushstream.targets.base import SinkIdentity, TableSpec
from pushstream.targets.postgresql.schema import COLUMN_TYPES, SCHEMA, column_collations, fetch, literal
from pushstream.targets.sql import POSITION, quote_ident

_USER_PREFIX = "pushstream_sink_"
_INSERT_SINK = f"INSERT INTO {SCHEMA}.sinks (role, branch_id, source_id, sink_id, password) VALUES ($1, $2, $3, $4, $5)"


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


def user_name(database: str, sink: SinkIdentity) -> str:
    """The sink user of a sink: deterministic per database and sink, so every
    process finds it, and short enough for PostgreSQL names."""
    key = "\x00".join((database, str(sink.branch_id), sink.source_id, sink.sink_id))
    return _USER_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:20]


def staging_table(user: str) -> str:
    """The name of the sink user's staging table (in :data:`SCHEMA`)."""
    return "stage_" + user.removeprefix(_USER_PREFIX)


def needs_staging(spec: TableSpec) -> bool:
    """Whether imports of the spec go through the staging table: a key (the
    upsert reads it) or system columns (numbered in SQL). Other rows are copied
    straight into the table."""
    return bool(spec.primary_key) or spec.system_columns


def staging_columns(spec: TableSpec) -> list[tuple[str, str, str]]:
    """(name, type, collation) of the staging table's columns: the sink's columns
    in their PostgreSQL types (text keys in the table's "C" collation, so keys
    compare without a collation conflict), and with system columns the rows'
    position in import order."""
    columns = []
    for name, data_type in zip(spec.columns, spec.column_types, strict=True):
        type_ = COLUMN_TYPES[data_type]
        collation = "C" if data_type == "string" and name in spec.primary_key else ""
        columns.append((name, type_, collation))
    if spec.system_columns:
        columns.append((POSITION, "bigint", ""))
    return columns


def privileges(spec: TableSpec) -> str:
    """What the sink user may do with the spec's table."""
    granted = ["INSERT"]
    if spec.primary_key:
        granted.append("UPDATE")
    if spec.primary_key or spec.system_columns:
        granted.append("SELECT")
    if spec.merge_strategy == "snapshot":
        granted.append("DELETE")
    return ", ".join(granted)


def password(cur: Any, user: str) -> str | None:
    """The sink user's stored password, ``None`` when none is stored."""
    stored = fetch(cur, f"SELECT password FROM {SCHEMA}.sinks WHERE role = $1", (user,))
    return str(stored[0][0]) if stored else None


def _exists(cur: Any, user: str) -> bool:
    return bool(fetch(cur, "SELECT 1 FROM pg_roles WHERE rolname = $1", (user,)))


def _granted(cur: Any, user: str) -> tuple[set[str], set[str]]:
    """(relations, schemas) in this database the sink user holds privileges on."""
    relations = {
        str(r[0])
        for r in fetch(
            cur,
            "SELECT c.oid::regclass::text FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a"
            " JOIN pg_roles r ON r.oid = a.grantee WHERE r.rolname = $1",
            (user,),
        )
    }
    schemas = {
        str(r[0])
        for r in fetch(
            cur,
            "SELECT quote_ident(n.nspname) FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a"
            " JOIN pg_roles r ON r.oid = a.grantee WHERE r.rolname = $1",
            (user,),
        )
    }
    return relations, schemas


def _regclass_text(cur: Any, qualified: str) -> str:
    return str(fetch(cur, "SELECT $1::regclass::text", (qualified,))[0][0])


def _quote_ident_sql(cur: Any, name: str) -> str:
    return str(fetch(cur, "SELECT quote_ident($1)", (name,))[0][0])


def prepare(cur: Any, user: str, sink: SinkIdentity, spec: TableSpec, *, schema: str, table: str) -> str | None:
    """The sink user of ``sink`` (created, or given a password when its stored one
    was lost), its grants on the spec's table (``table`` quoted and qualified, in
    ``schema``) and nothing else, and with a key its staging table; returns the
    staging table's name (with a key). The table and pushstream's tables exist."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", parameters=(f"pushstream:{user}",))
    cur.fetchall()
    stored = password(cur, user)
    if not _exists(cur, user):
        new_password = secrets.token_urlsafe(32)
        cur.execute(f"CREATE ROLE {quote_ident(user)} LOGIN NOINHERIT PASSWORD {literal(scram_verifier(new_password))}")
        cur.execute(
            f"COMMENT ON ROLE {quote_ident(user)} IS "
            + literal(f"pushstream sink {sink.branch_id}/{sink.source_id}/{sink.sink_id}")
        )
        if stored is not None:
            cur.execute(
                f"UPDATE {SCHEMA}.sinks SET password = $2, rotated_at = now() WHERE role = $1",
                parameters=(user, new_password),
            )
        else:
            cur.execute(
                _INSERT_SINK,
                parameters=(user, sink.branch_id, sink.source_id, sink.sink_id, new_password),
            )
    elif stored is None:
        # The sink user exists but its password was lost (bookkeeping dropped): set a new one.
        new_password = secrets.token_urlsafe(32)
        cur.execute(f"ALTER ROLE {quote_ident(user)} PASSWORD {literal(scram_verifier(new_password))}")
        cur.execute(
            _INSERT_SINK,
            parameters=(user, sink.branch_id, sink.source_id, sink.sink_id, new_password),
        )

    quser = quote_ident(user)
    want_relations = {_regclass_text(cur, table), _regclass_text(cur, f"{SCHEMA}.imports")}
    want_schemas = {_quote_ident_sql(cur, schema), SCHEMA}
    staging: str | None = None
    if needs_staging(spec):
        staging = staging_table(user)
        qstaging = f"{SCHEMA}.{quote_ident(staging)}"
        # format_type names timestamptz in full.
        wanted = [
            (name, "timestamp with time zone" if type_ == "timestamptz" else type_, collation)
            for name, type_, collation in staging_columns(spec)
        ]
        if column_collations(cur, qstaging) != wanted:
            cur.execute(f"DROP TABLE IF EXISTS {qstaging}")
            columns = ", ".join(
                f"{quote_ident(name)} {type_}" + (f" COLLATE {quote_ident(collation)}" if collation else "")
                for name, type_, collation in staging_columns(spec)
            )
            # UNLOGGED: staged rows live for one transaction, never need WAL.
            cur.execute(f"CREATE UNLOGGED TABLE {qstaging} ({columns})")
        cur.execute(f"GRANT SELECT, INSERT, TRUNCATE ON {qstaging} TO {quser}")
        want_relations.add(_regclass_text(cur, qstaging))
    if spec.system_columns:
        cur.execute(f"GRANT SELECT, INSERT, UPDATE ON {SCHEMA}.offsets TO {quser}")
        want_relations.add(_regclass_text(cur, f"{SCHEMA}.offsets"))
    # Revoke whatever is left from an earlier table of this sink.
    have_relations, have_schemas = _granted(cur, user)
    for relation in have_relations - want_relations:
        cur.execute(f"REVOKE ALL ON {relation} FROM {quser}")
    for stale_schema in have_schemas - want_schemas:
        cur.execute(f"REVOKE ALL ON SCHEMA {stale_schema} FROM {quser}")
    cur.execute(f"REVOKE ALL ON {table} FROM {quser}")
    cur.execute(f"GRANT USAGE ON SCHEMA {quote_ident(schema)} TO {quser}")
    cur.execute(f"GRANT {privileges(spec)} ON {table} TO {quser}")
    cur.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {quser}")
    cur.execute(f"GRANT SELECT, INSERT ON {SCHEMA}.imports TO {quser}")
    cur.execute(
        f"UPDATE {SCHEMA}.sinks SET table_id = $2, staging_table = $3 WHERE role = $1",
        parameters=(user, spec.table_id, staging),
    )
    return staging


def rotate_password(cur: Any, user: str, sink: SinkIdentity) -> bool:
    """A new password for the sink user, stored; ``False`` (nothing done) when the
    sink user does not exist yet."""
    if not _exists(cur, user):
        return False
    new_password = secrets.token_urlsafe(32)
    cur.execute(f"ALTER ROLE {quote_ident(user)} PASSWORD {literal(scram_verifier(new_password))}")
    cur.execute(
        _INSERT_SINK + " ON CONFLICT (role) DO UPDATE SET password = excluded.password, rotated_at = now()",
        parameters=(user, sink.branch_id, sink.source_id, sink.sink_id, new_password),
    )
    return True


def drop(cur: Any, user: str) -> None:
    """Drops the sink user, its grants and its staging table, and forgets its password."""
    if _exists(cur, user):
        relations, schemas = _granted(cur, user)
        for relation in relations:
            cur.execute(f"REVOKE ALL ON {relation} FROM {quote_ident(user)}")
        for schema in schemas:
            cur.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {quote_ident(user)}")
        cur.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{quote_ident(staging_table(user))}")
        cur.execute(f"DROP ROLE {quote_ident(user)}")
    cur.execute(f"DELETE FROM {SCHEMA}.sinks WHERE role = $1", parameters=(user,))


def terminate_sessions(cur: Any, user: str) -> None:
    """Ends the sink user's open sessions (outside a transaction: a failure is ignored)."""
    # Needs membership in pg_signal_backend (or the role); without it the old
    # sessions simply end when their holders disconnect.
    with suppress(adbc_driver_manager.Error):
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
            parameters=(user,),
        )
        cur.fetchall()
