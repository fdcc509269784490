"""The SQL text both targets build, written once: quoted identifiers, column
lists, ``CREATE TABLE`` of a sink's table and the upsert. SQLite and PostgreSQL
share this syntax; what differs between them (column types, where the upserted
rows come from) is passed in by the target."""

from __future__ import annotations

from collections.abc import Sequence

from pushstream.targets.base import TableSpec, TargetError


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted (SQLite and PostgreSQL quote the same way)."""
    if "\x00" in name:
        raise TargetError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def column_list(columns: Sequence[str]) -> str:
    """``"a", "b"``: quoted names for a column list."""
    return ", ".join(quote_ident(c) for c in columns)


def create_table(table: str, spec: TableSpec, *, column_type: str, key_column_type: str) -> str:
    """``CREATE TABLE`` of the spec's columns, each of ``column_type`` or, in the
    primary key, of ``key_column_type`` (which says ``NOT NULL``), with the key.

    ``table`` is the target's quoted (qualified) name of the table."""
    columns = ", ".join(
        f"{quote_ident(c)} {key_column_type if c in spec.primary_key else column_type}" for c in spec.columns
    )
    key = f", PRIMARY KEY ({column_list(spec.primary_key)})" if spec.primary_key else ""
    return f"CREATE TABLE {table} ({columns}{key})"


def upsert(table: str, spec: TableSpec, rows: str) -> str:
    """``INSERT INTO table (columns) <rows> ON CONFLICT (key) DO UPDATE SET``
    every other column to the new row's value (``DO NOTHING`` when every column
    is in the key): last write wins.

    ``rows`` is where the target's rows come from: bound parameters
    (``VALUES (?, ?)``) or a query (``SELECT ... FROM staging``)."""
    others = [c for c in spec.columns if c not in spec.primary_key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in others)
        if others
        else "DO NOTHING"
    )
    columns, key = column_list(spec.columns), column_list(spec.primary_key)
    return f"INSERT INTO {table} ({columns}) {rows} ON CONFLICT ({key}) {action}"
