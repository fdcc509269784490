"""The SQL text both targets build, written once: quoted identifiers, column
lists, ``CREATE TABLE`` of a sink's table, the upsert and the statements of the
merge strategies. SQLite and PostgreSQL share this syntax; what differs between
them (column types, where the rows come from, casts, the import's time) is
passed in by the target."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pushstream.targets.base import SYSTEM_COLUMNS, TableSpec, TargetError

#: The column of a staged row's position in import order (system columns number rows by it).
POSITION = "_pos"


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted (SQLite and PostgreSQL quote the same way)."""
    if "\x00" in name:
        raise TargetError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A string literal (for values pushstream makes itself, in statements without parameters)."""
    return "'" + value.replace("'", "''") + "'"


def column_list(columns: Sequence[str]) -> str:
    """``"a", "b"``: quoted names for a column list."""
    return ", ".join(quote_ident(c) for c in columns)


def create_table(table: str, spec: TableSpec, column_definition: Callable[[str], str]) -> str:
    """``CREATE TABLE`` of the spec's table columns (system columns included),
    each ``"name" <column_definition(name)>``, with the primary key.

    ``table`` is the target's quoted (qualified) name of the table."""
    columns = ", ".join(f"{quote_ident(c)} {column_definition(c)}" for c in spec.table_columns)
    key = f", PRIMARY KEY ({column_list(spec.primary_key)})" if spec.primary_key else ""
    return f"CREATE TABLE {table} ({columns}{key})"


def _key_matches(spec: TableSpec, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{quote_ident(k)} = {right}.{quote_ident(k)}" for k in spec.primary_key)


def _on_conflict(spec: TableSpec, columns: Sequence[str], replace: bool) -> str:
    others = [c for c in columns if c not in spec.primary_key]
    key = column_list(spec.primary_key)
    if not replace or not others:
        return f"ON CONFLICT ({key}) DO NOTHING"
    return f"ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(
        f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in others
    )


def upsert(table: str, spec: TableSpec, rows: str) -> str:
    """``INSERT INTO table (columns) <rows> ON CONFLICT (key) DO UPDATE SET``
    every other column to the new row's value (``DO NOTHING`` when every column
    is in the key): last write wins. With the ``ledger`` strategy ``DO NOTHING``:
    a key the table has keeps its row (first write wins).

    ``rows`` is where the target's rows come from: bound parameters
    (``VALUES (?, ?)``) or a query (``SELECT ... FROM staging``)."""
    columns = column_list(spec.columns)
    return f"INSERT INTO {table} ({columns}) {rows} {_on_conflict(spec, spec.columns, spec.merge_strategy != 'ledger')}"


def merge(
    table: str,
    spec: TableSpec,
    staged: str,
    *,
    value: Callable[[str], str] = quote_ident,
    first_offset: int = 0,
    system_time: str = "",
) -> str:
    """``INSERT INTO table ... SELECT ... FROM staged`` by the spec's merge strategy:

    - ``append``, ``snapshot`` without a key: every staged row is added;
    - ``upsert``, ``snapshot`` with a key: a key the table has gets the staged row;
    - ``ledger``: a staged row whose key the table has is skipped.

    ``value(column)`` is the SQL of a staged column's value (PostgreSQL casts json
    text to jsonb). With system columns, staged rows carry their position in import
    order (:data:`POSITION`): the rows written are numbered from ``first_offset`` in
    that order (``_offset``), ``_op`` says what happened to each (``+A`` added,
    ``+I`` a new key, ``+U`` a row replaced), ``_system_time`` is the SQL of the
    import's time. The staged keys are unique (deduplicated before), so whether
    the table has a key is decided once per row."""
    strategy = spec.merge_strategy
    keyed = bool(spec.primary_key)
    exists = f"EXISTS (SELECT 1 FROM {table} AS t WHERE {_key_matches(spec, 't', 's')})" if keyed else ""
    skip_existing = f" WHERE NOT {exists}" if strategy == "ledger" else ""
    values = [value(c) for c in spec.columns]
    if spec.system_columns:
        if strategy in ("append", "ledger"):
            op = "'+A'"
        elif keyed:
            op = f"CASE WHEN {exists} THEN '+U' ELSE '+I' END"
        else:
            op = "'+I'"
        numbered = f"row_number() OVER (ORDER BY {quote_ident(POSITION)}) - 1 + {int(first_offset)}"
        values += [numbered, op, system_time]
    columns = spec.table_columns
    select = f"SELECT {', '.join(values)} FROM {staged} AS s{skip_existing}"
    # "WHERE true": SQLite reads "ON CONFLICT" after a bare FROM as a join constraint.
    rows = f"SELECT * FROM ({select}) AS merged WHERE true"
    conflict = f" {_on_conflict(spec, columns, strategy != 'ledger')}" if keyed else ""
    return f"INSERT INTO {table} ({column_list(columns)}) {rows}{conflict}"


def prune_snapshot(table: str, spec: TableSpec, staged: str) -> str:
    """``DELETE`` of the rows a snapshot import does not have: with a key the
    table's rows whose key is not staged, without a key every row."""
    if not spec.primary_key:
        return f"DELETE FROM {table}"
    return (
        f"DELETE FROM {table} AS t WHERE NOT EXISTS (SELECT 1 FROM {staged} AS s WHERE {_key_matches(spec, 's', 't')})"
    )


def sink_columns_of(columns: Sequence[str]) -> list[str]:
    """The columns without the system columns."""
    return [c for c in columns if c not in SYSTEM_COLUMNS]
