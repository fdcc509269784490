"""The target interface: where imported rows end up.

A target is any database reachable through an ADBC driver. The coordinator only
talks to this interface; SQLite (the embedded default) and PostgreSQL implement
it (this module imports neither: :func:`pushstream.targets.open_target` picks
one). Table ids are Keboola's ``in.c-<bucket>.<table>``: the bucket maps to a
schema (PostgreSQL) or a name prefix (SQLite). A column is text unless the sink
gives it a ``dataType`` (:data:`DATA_TYPES`); the primary key is the mapping's
``primaryKey`` columns; the merge strategy (:data:`MERGE_STRATEGIES`) says how an
import's rows meet the table's; system columns (:data:`SYSTEM_COLUMNS`) record
each row's offset, operation and import time when the sink asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pushstream.errors import PushstreamError


class TargetError(PushstreamError):
    """A target operation failed; the data stays in staging and is retried."""


class TableMismatchError(TargetError):
    """An existing table does not have exactly the sink's columns and primary key.
    The message says what differs."""


class TargetUnavailableError(TargetError):
    """The database cannot be reached (network, restart); retried with backoff."""


class TargetMissingError(TargetError):
    """An embedded target database that does not exist was opened only to be read."""


def format_names(names: Sequence[str]) -> str:
    """Column names as messages show them: ``[a, b]``."""
    return "[" + ", ".join(names) + "]"


#: The column types a sink may declare (``dataType``); ``string`` is today's text column.
DATA_TYPES = ("string", "integer", "number", "boolean", "timestamp", "date", "json")
#: How an import's rows meet the table's rows (see docs/tables.md).
MERGE_STRATEGIES = ("append", "upsert", "ledger", "snapshot")
#: The columns a table gets after the sink's columns when the sink asks for system columns.
SYSTEM_COLUMNS = ("_offset", "_op", "_system_time")
#: The data type of each system column.
SYSTEM_COLUMN_TYPES = ("integer", "string", "timestamp")


def default_merge_strategy(primary_key: Sequence[str]) -> str:
    """The strategy of a sink that names none: ``upsert`` with a key, else ``append``."""
    return "upsert" if primary_key else "append"


@dataclass(frozen=True)
class TableSpec:
    """The shape a sink needs: its table, columns in mapping order, primary key,
    and (typed tables) each column's data type and nullability, the merge strategy,
    the event-time column and whether the table has system columns.

    Left out, ``column_types`` is all ``string``, ``nullable`` all true and
    ``merge_strategy`` the default for the key: today's all-text table."""

    table_id: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...] = ()
    column_types: tuple[str, ...] = ()
    nullable: tuple[bool, ...] = ()
    #: ``append``, ``upsert``, ``ledger`` or ``snapshot``; empty = the default for the key.
    merge_strategy: str = ""
    event_time_column: str | None = None
    system_columns: bool = False

    def __post_init__(self) -> None:
        # Frozen: defaults that depend on other fields are filled in here.
        if not self.column_types:
            object.__setattr__(self, "column_types", ("string",) * len(self.columns))
        if not self.nullable:
            object.__setattr__(self, "nullable", (True,) * len(self.columns))
        if not self.merge_strategy:
            object.__setattr__(self, "merge_strategy", default_merge_strategy(self.primary_key))

    @property
    def typed(self) -> bool:
        """Whether any column of the table (system columns included) is not text."""
        return self.system_columns or any(t != "string" for t in self.column_types)

    @property
    def table_columns(self) -> tuple[str, ...]:
        """The table's columns: the sink's, then the system columns when asked for."""
        return self.columns + (SYSTEM_COLUMNS if self.system_columns else ())

    @property
    def table_column_types(self) -> tuple[str, ...]:
        """The data type of every column of :attr:`table_columns`."""
        return self.column_types + (SYSTEM_COLUMN_TYPES if self.system_columns else ())

    def column_type(self, name: str) -> str:
        """The data type of a column of the table."""
        return self.table_column_types[self.table_columns.index(name)]

    def not_null(self, name: str) -> bool:
        """Whether the table declares the column ``NOT NULL``: key columns, and
        typed sink columns with ``nullable: false`` (system columns are always filled)."""
        if name in self.primary_key or (name in SYSTEM_COLUMNS and self.system_columns):
            return True
        i = self.columns.index(name)
        return self.column_types[i] != "string" and not self.nullable[i]

    def validate(self) -> None:
        """Rejects specs no table can have: no columns, duplicate names, key not a
        column, an unknown data type or strategy, a key the strategy cannot take,
        an event-time column that is not a timestamp column, a sink column named
        like a system column of a table that has them."""
        where = f'table "{self.table_id}"'
        if not self.columns:
            raise TargetError(f"{where}: a table needs at least one column")
        seen: set[str] = set()
        for name in self.columns:
            if name in seen:
                raise TargetError(f'{where}: column "{name}" appears twice')
            seen.add(name)
        for name in self.primary_key:
            if name not in seen:
                raise TargetError(f'{where}: primary key column "{name}" is not a column')
        if len(set(self.primary_key)) != len(self.primary_key):
            raise TargetError(f"{where}: primary key {format_names(self.primary_key)} names a column twice")
        if len(self.column_types) != len(self.columns) or len(self.nullable) != len(self.columns):
            raise TargetError(f"{where}: a data type and a nullability are needed for every column")
        for name, data_type in zip(self.columns, self.column_types, strict=True):
            if data_type not in DATA_TYPES:
                raise TargetError(
                    f'{where}: column "{name}" has data type "{data_type}", expected one of {", ".join(DATA_TYPES)}'
                )
        strategy = self.merge_strategy
        if strategy not in MERGE_STRATEGIES:
            raise TargetError(
                f'{where}: unknown mergeStrategy "{strategy}", expected one of {", ".join(MERGE_STRATEGIES)}'
            )
        if strategy == "append" and self.primary_key:
            raise TargetError(f"{where}: mergeStrategy append takes no primary key")
        if strategy in ("upsert", "ledger") and not self.primary_key:
            raise TargetError(f"{where}: mergeStrategy {strategy} needs a primary key")
        if self.event_time_column is not None:
            if self.event_time_column not in seen:
                raise TargetError(f'{where}: eventTimeColumn "{self.event_time_column}" is not a column')
            if self.column_type(self.event_time_column) != "timestamp":
                raise TargetError(
                    f'{where}: eventTimeColumn "{self.event_time_column}" must have dataType timestamp,'
                    f" it has {self.column_type(self.event_time_column)}"
                )
        if self.system_columns:
            for name in SYSTEM_COLUMNS:
                if name in seen:
                    raise TargetError(f'{where}: column name "{name}" is reserved for system columns')

    def check_matches(self, columns: Sequence[str], key: Sequence[str], types: Sequence[str] | None = None) -> None:
        """Raises :class:`TableMismatchError` unless the existing table, with
        ``columns`` and primary key ``key``, has exactly the spec's columns (names
        and order, system columns included) and primary key (the same set of
        columns), and, when ``types`` (the data type of each existing column, as
        the target reads it back) is given, the spec's data types."""
        wanted = self.table_columns
        if list(columns) != list(wanted):
            raise TableMismatchError(
                f'table "{self.table_id}" has columns {format_names(columns)}, the sink needs {format_names(wanted)}'
            )
        if sorted(key) != sorted(self.primary_key):
            if not key:
                detail = f"has no primary key, the sink needs primary key {format_names(self.primary_key)}"
            elif not self.primary_key:
                detail = f"has primary key {format_names(key)}, the sink needs no primary key"
            else:
                detail = f"has primary key {format_names(key)}, the sink needs {format_names(self.primary_key)}"
            raise TableMismatchError(f'table "{self.table_id}" {detail}')
        if types is None:
            return
        for name, have, want in zip(wanted, types, self.table_column_types, strict=True):
            # A type pushstream does not make (varchar of a table made by hand)
            # takes text, as before types existed.
            if have != want and (want != "string" or have in DATA_TYPES):
                shown = "text" if have == "string" else have
                raise TableMismatchError(f'table "{self.table_id}" column "{name}" is {shown}, the sink needs {want}')


@dataclass(frozen=True)
class SinkIdentity:
    """The sink an import or a credential belongs to (PostgreSQL keeps one sink user per sink)."""

    branch_id: int
    source_id: str
    sink_id: str


@dataclass(frozen=True)
class RejectedRow:
    """A row the database refused (a NUL character in PostgreSQL text, a value a
    constraint of the table does not allow, ...), with the database's reason."""

    #: The row as staged (canonical text, an empty field for NULL).
    values: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ImportRequest:
    """One staging file (all its slices) into one table.

    ``import_id`` identifies the file for good; importing the same id twice is a
    no-op the second time (the target records imported ids in the same
    transaction as the rows). ``paths`` are zstd-compressed Keboola CSV files
    (every field quoted, no header), imported together in one transaction.

    ``reject`` keeps rows the database refuses: when an import fails because
    of some of its rows, the target finds them (bisecting the rows, so a few bad
    rows cost a few extra statements, not one per row), calls ``reject`` once
    with all of them before it commits the rest, and records the import. Without
    ``reject`` such an import fails as a whole.
    """

    spec: TableSpec
    import_id: str
    paths: Sequence[Path]
    sink: SinkIdentity
    reject: Callable[[Sequence[RejectedRow]], None] | None = None


@dataclass(frozen=True)
class EventRange:
    """The earliest and latest event time of some rows, microseconds since the epoch (UTC)."""

    first_us: int
    last_us: int

    def union(self, other: EventRange | None) -> EventRange:
        """The range covering this one and ``other``."""
        if other is None:
            return self
        return EventRange(min(self.first_us, other.first_us), max(self.last_us, other.last_us))


@dataclass(frozen=True)
class ImportResult:
    rows_read: int
    already_imported: bool = False
    #: Rows the database refused, handed to the request's ``reject``.
    rejected: int = 0
    #: Earliest and latest value of the spec's event-time column over the rows
    #: the import wrote (refused rows left out; after the strategy's dedup within
    #: the file, so a ``ledger`` row whose key the table had counts too); ``None``
    #: without an event-time column, without a non-null value, or when the
    #: import was already done.
    event_range: EventRange | None = None


class Target(Protocol):
    """A destination database."""

    #: ``sqlite``, ``postgresql``, ...
    kind: str

    def ensure_table(self, spec: TableSpec) -> None:
        """Creates the table when missing (native column types, primary key and
        system columns from the spec); otherwise checks it matches exactly (names,
        key, types), raising :class:`TableMismatchError`."""
        ...

    def import_files(self, request: ImportRequest) -> ImportResult:
        """Imports the rows in one transaction by the spec's merge strategy
        (``append``; ``upsert``: last row per key wins within the file and against
        the table; ``ledger``: first row per key, a key the table has is kept;
        ``snapshot``: the import is the table's whole state), typed columns
        loaded with their types, system columns filled. Idempotent by
        ``import_id``. Raises :class:`TableMismatchError` when the table changed shape."""
        ...

    def tail(
        self, table_id: str, limit: int = 10, skip: int = 0, *, system: bool = False, order: str = "import"
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The last ``limit`` rows in import order (``order="event-time"``: by the
        table's event-time column), skipping the ``skip`` newest: (column names,
        rows oldest first), typed values for typed columns. ``system`` shows the
        system columns first (a table without them: :class:`TargetError`)."""
        ...

    def table_exists(self, table_id: str) -> bool: ...

    def table_ids(self) -> list[str]:
        """The ids of the tables of the database that are Keboola table ids
        (``in.c-bucket.table``), sorted; the command line names them when a table is missing."""
        ...

    def prepare_sink(self, sink: SinkIdentity, spec: TableSpec) -> None:
        """Sets up what imports of the sink need (PostgreSQL: a sink user that may
        only write its table). Idempotent."""
        ...

    def rotate_sink_credentials(self, sink: SinkIdentity) -> None:
        """New credentials for the sink (after it is disabled and enabled again)."""
        ...

    def drop_sink(self, sink: SinkIdentity) -> None:
        """Removes what :meth:`prepare_sink` created (the table stays)."""
        ...

    def close(self) -> None: ...


def parse_table_id(table_id: str) -> tuple[str, str]:
    """``in.c-bucket.table`` → (``in.c-bucket``, ``table``); raises ``ValueError``."""
    stage, sep, rest = table_id.partition(".")
    bucket, sep2, table = rest.partition(".")
    if not sep or not sep2 or stage not in ("in", "out") or not bucket.startswith("c-") or len(bucket) < 3 or not table:
        raise ValueError(f'invalid table id "{table_id}", expected "in.c-<bucket>.<table>"')
    return f"{stage}.{bucket}", table
