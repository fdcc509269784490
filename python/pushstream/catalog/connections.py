"""One SQLite connection per thread to one database file, with exclusive write
transactions. The catalog and the storage state (both in ``state.sqlite``)
share this."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pushstream.errors import CatalogError


class ThreadConnections:
    """Per-thread connections (autocommit, ``synchronous=FULL``, 60 s busy timeout)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False

    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        if self._closed:
            raise CatalogError(f"{self.path} is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA busy_timeout = 60000")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """An exclusive write transaction (``BEGIN IMMEDIATE``): commits at the end
        of the block, rolls back when it raises."""
        db = self.db()
        if db.in_transaction:
            raise CatalogError("a transaction of this thread is already open; nested transactions are not supported")
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except BaseException:
            # A COMMIT that fails (disk full, I/O error) can leave the transaction
            # open, holding the write lock: every other connection would then wait
            # for it forever. Roll back so that the next attempt starts clean.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        db = self.db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        """Closes the connections of every thread; later use raises :class:`CatalogError`."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
