"""Runs SQL on a target's database by hand, as an operator altering a table would."""

from __future__ import annotations

from typing import Any

from pgcluster import PgCluster
from pushstream.targets.sqlite import SqliteTarget


class Raw:
    """Runs SQL on a target's database by hand, as a person altering a table
    would: ``sqlite3`` for SQLite, the superuser for PostgreSQL."""

    def __init__(self, target: Any, cluster: PgCluster | None) -> None:
        self.target = target
        self.cluster = cluster

    def name(self, table_id: str) -> str:
        """The quoted name of a table id in this target."""
        if isinstance(self.target, SqliteTarget):
            return '"' + table_id + '"'
        schema, table = self.target.table_name(table_id)
        return f'"{schema}"."{table}"'

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        if isinstance(self.target, SqliteTarget):
            # Through ADBC's SQLite, not Python's sqlite3 module: two copies of the
            # SQLite library in one process break each other's POSIX locks (closing
            # one's file descriptor drops the other's locks), see "How To Corrupt
            # An SQLite Database File", section 2.2.1.
            import adbc_driver_sqlite.dbapi as sqlite_dbapi

            with sqlite_dbapi.connect(str(self.target.path), autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("PRAGMA busy_timeout = 30000")
                cur.fetchall()
                cur.execute(statement)
                return list(cur.fetchall()) if cur.description else []
        assert self.cluster is not None
        database = self.target.url.split("/")[-1].split("?")[0]
        return self.cluster.execute(statement, database=database)

    def count(self, table_id: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM {self.name(table_id)}")[0][0])
