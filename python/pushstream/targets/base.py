"""The target interface: where imported rows end up.

A target is any database reachable through an ADBC driver. The coordinator only
talks to this interface; SQLite (the embedded default) and PostgreSQL implement
it (this module imports neither: :func:`pushstream.targets.open_target` picks
one). Table ids are Keboola's ``in.c-<bucket>.<table>``: the bucket maps to a
schema (PostgreSQL) or a name prefix (SQLite). Every column is text; the primary
key is the mapping's ``primaryKey`` columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


@dataclass(frozen=True)
class TableSpec:
    """The shape a sink needs: its table, columns in mapping order, primary key."""

    table_id: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...] = ()

    def validate(self) -> None:
        """Rejects specs no table can have: no columns, duplicate names, key not a column."""
        if not self.columns:
            raise TargetError(f'table "{self.table_id}": a table needs at least one column')
        seen: set[str] = set()
        for name in self.columns:
            if name in seen:
                raise TargetError(f'table "{self.table_id}": column "{name}" appears twice')
            seen.add(name)
        for name in self.primary_key:
            if name not in seen:
                raise TargetError(f'table "{self.table_id}": primary key column "{name}" is not a column')
        if len(set(self.primary_key)) != len(self.primary_key):
            raise TargetError(
                f'table "{self.table_id}": primary key {format_names(self.primary_key)} names a column twice'
            )

    def check_matches(self, columns: Sequence[str], key: Sequence[str]) -> None:
        """Raises :class:`TableMismatchError` unless the existing table, with
        ``columns`` and primary key ``key``, has exactly the spec's columns (names
        and order) and primary key (the same set of columns)."""
        if list(columns) != list(self.columns):
            raise TableMismatchError(
                f'table "{self.table_id}" has columns {format_names(columns)},'
                f" the sink needs {format_names(self.columns)}"
            )
        if sorted(key) != sorted(self.primary_key):
            if not key:
                detail = f"has no primary key, the sink needs primary key {format_names(self.primary_key)}"
            elif not self.primary_key:
                detail = f"has primary key {format_names(key)}, the sink needs no primary key"
            else:
                detail = f"has primary key {format_names(key)}, the sink needs {format_names(self.primary_key)}"
            raise TableMismatchError(f'table "{self.table_id}" {detail}')


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
class ImportResult:
    rows_read: int
    already_imported: bool = False
    #: Rows the database refused, handed to the request's ``reject``.
    rejected: int = 0


class Target(Protocol):
    """A destination database."""

    #: ``sqlite``, ``postgresql``, ...
    kind: str

    def ensure_table(self, spec: TableSpec) -> None:
        """Creates the table when missing (all columns text, primary key from the
        spec); otherwise checks it matches exactly, raising :class:`TableMismatchError`."""
        ...

    def import_files(self, request: ImportRequest) -> ImportResult:
        """Imports the rows in one transaction: bulk load into a temporary table,
        then merge (dedup on the primary key within the file and against the
        table, last write wins) or append (no key). Idempotent by ``import_id``.
        Raises :class:`TableMismatchError` when the table changed shape."""
        ...

    def tail(self, table_id: str, limit: int = 10, skip: int = 0) -> tuple[list[str], list[tuple[str | None, ...]]]:
        """The last ``limit`` rows in import order, skipping the ``skip`` newest:
        (column names, rows oldest first)."""
        ...

    def table_exists(self, table_id: str) -> bool: ...

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
