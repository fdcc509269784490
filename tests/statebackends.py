"""The implementations of the catalog and the storage state, side by side, for tests
that hold for both: SQLite (``state.sqlite`` in a temporary directory) and the
PostgreSQL control plane of ``serve --cluster`` (a fresh database of the test
cluster). :meth:`StateBackend.query` inspects the tables with the database's own
driver, with ``?`` placeholders on both."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from pushstream.catalog import STATE_FILE, Catalog, SqliteCatalog
from pushstream.catalog.pg_connections import parse_url
from pushstream.catalog.postgresql import PgCatalog
from pushstream.storage.base import StorageState
from pushstream.storage.pg_state import PgStorageState
from pushstream.storage.revision import revision_file
from pushstream.storage.sqlite_state import SqliteStorageState

KINDS = ("sqlite", "postgresql")


class StateBackend:
    """One installation's state store: ``kind`` ``sqlite`` (``location``: the file)
    or ``postgresql`` (``location``: the ``--cluster`` URL); revision bumps are
    announced in ``data_dir``'s revision file on both."""

    def __init__(self, kind: str, data_dir: Path, url: str | None = None) -> None:
        self.kind = kind
        self.data_dir = data_dir
        self.location = str(data_dir / STATE_FILE) if url is None else url

    @property
    def is_postgresql(self) -> bool:
        return self.kind == "postgresql"

    def catalog(self, operator_settings: dict[str, Any] | None = None) -> Catalog:
        return open_catalog(self.kind, self.location, self.data_dir, operator_settings)

    def storage(self) -> StorageState:
        if self.is_postgresql:
            return PgStorageState(self.location, revisions=revision_file(self.data_dir))
        return SqliteStorageState(self.location)

    def query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Runs one statement in its own transaction; its rows (none for a change)."""
        if self.is_postgresql:
            conninfo, schema = parse_url(self.location)
            with psycopg.connect(conninfo, options=f"-c search_path={schema}") as db:
                cursor = db.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
                return cursor.fetchall() if cursor.description else []
        with sqlite3.connect(self.location) as db:
            return db.execute(statement, params).fetchall()


def raw_execute(store: Any, statement: str, params: tuple[Any, ...] = ()) -> Any:
    """Runs one statement (``?`` placeholders) on a catalog, a storage state or a
    transaction of either, whichever database it is on (tests only: bypasses
    the interfaces)."""
    if hasattr(store, "_session"):  # a PostgreSQL transaction
        return store._session.execute(statement.replace("?", "%s"), params)
    if hasattr(store, "_connection"):  # a SQLite transaction
        return store._connection.execute(statement, params)
    if isinstance(store, (PgCatalog, PgStorageState)):
        return store._db().execute(statement.replace("?", "%s"), params)
    return store._db().execute(statement, params)


def open_catalog(kind: str, location: str, data_dir: Path, operator_settings: dict[str, Any] | None = None) -> Catalog:
    """A catalog of ``kind`` at ``location`` (usable in a subprocess)."""
    if kind == "postgresql":
        return PgCatalog(location, operator_settings, storage_revisions=revision_file(data_dir))
    return SqliteCatalog(location, operator_settings)
