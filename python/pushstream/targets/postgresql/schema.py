"""pushstream's own schema in a PostgreSQL target (admin only), and the
statements the target and its sink users share: catalog reads, literals, the
identifier limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pushstream.targets.base import TargetError

#: The admin-only schema of pushstream's own tables.
SCHEMA = "pushstream"
#: PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes).
MAX_IDENTIFIER = 63
#: The PostgreSQL type of each data type.
COLUMN_TYPES = {
    "string": "text",
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "timestamp": "timestamptz",
    "date": "date",
    "json": "jsonb",
}
#: ``format_type`` of each column type → the data type.
_DATA_TYPES = {
    "text": "string",
    "bigint": "integer",
    "double precision": "number",
    "boolean": "boolean",
    "timestamp with time zone": "timestamp",
    "date": "date",
    "jsonb": "json",
}


def fetch(cur: Any, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Runs a query and returns all its rows."""
    cur.execute(sql, parameters=parameters)
    return list(cur.fetchall())


def literal(value: str) -> str:
    """A string literal for statements that take no parameters (DDL)."""
    return "'" + value.replace("'", "''") + "'"


def check_identifier(name: str, what: str) -> None:
    """Refuses a name PostgreSQL would silently truncate."""
    if len(name.encode()) > MAX_IDENTIFIER:
        raise TargetError(f'{what} "{name}" is longer than PostgreSQL\'s {MAX_IDENTIFIER} bytes')


def table_shape(cur: Any, qualified: str) -> tuple[list[str], list[str], list[str]] | None:
    """(columns, primary key in key order, data type of each column) of a table,
    or ``None`` when it does not exist. A type pushstream does not make is given
    as PostgreSQL names it (``character varying(10)``)."""
    cur.execute("SELECT to_regclass($1)::oid", parameters=(qualified,))
    found = cur.fetchall()
    if not found or found[0][0] is None:
        return None
    oid = int(found[0][0])
    cur.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        parameters=(oid,),
    )
    found = cur.fetchall()
    columns = [str(r[0]) for r in found]
    types = [_DATA_TYPES.get(str(r[1]), str(r[1])) for r in found]
    cur.execute(
        "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
        parameters=(oid,),
    )
    key = [str(r[0]) for r in cur.fetchall()]
    return columns, key, types


def column_collations(cur: Any, qualified: str) -> list[tuple[str, str, str]]:
    """(name, type, collation) of every column of a table (empty when it does not
    exist); the collation is empty for the database default and for non-text types."""
    return [
        (str(name), str(type_), str(collation or ""))
        for name, type_, collation in fetch(
            cur,
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), c.collname FROM pg_attribute a"
            " LEFT JOIN pg_collation c ON c.oid = a.attcollation AND c.collname <> 'default'"
            " WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (qualified,),
        )
    ]


def create_tables(cur: Any) -> None:
    """Inside an admin transaction: pushstream's schema and tables, when missing.

    ``sinks``: the sink users' credentials (no grants to anyone). ``imports``:
    the import ids every sink user recorded, row-level security limiting each
    to its own rows. ``offsets``: the next ``_offset`` of each table with system
    columns (its sink users may update it: two sinks may write one table).
    ``tables``: the event-time column of each table (admin only)."""
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
    cur.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.offsets (table_id text PRIMARY KEY, next_offset bigint NOT NULL)")
    cur.execute(f"REVOKE ALL ON {SCHEMA}.offsets FROM PUBLIC")
    cur.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.tables (table_id text PRIMARY KEY, event_time_column text)")
    cur.execute(f"REVOKE ALL ON {SCHEMA}.tables FROM PUBLIC")
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
