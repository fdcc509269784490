"""SQLite only: table naming, WAL and concurrent use while an import runs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from targethelpers import Staging

from pushstream.targets.base import ImportResult, TableSpec, TargetError
from pushstream.targets.sqlite import SqliteTarget
from rawsql import Raw

SPEC = TableSpec("in.c-bucket.events", ("id", "body"))
KEYED = TableSpec("in.c-bucket.users", ("id", "body"), ("id",))


def test_table_is_named_by_its_id_and_in_wal_mode(sqlite_target: SqliteTarget) -> None:
    sqlite_target.ensure_table(KEYED)
    raw = Raw(sqlite_target, None)
    assert raw.sql("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name") == [
        ("_pushstream_imports",),
        ("_pushstream_offsets",),
        ("_pushstream_tables",),
        ("in.c-bucket.users",),
    ]
    assert raw.sql("PRAGMA journal_mode") == [("wal",)]
    sql = raw.sql("SELECT sql FROM sqlite_schema WHERE name = 'in.c-bucket.users'")[0][0]
    assert sql == 'CREATE TABLE "in.c-bucket.users" ("id" TEXT NOT NULL, "body" TEXT, PRIMARY KEY ("id"))'


def test_column_names_differing_only_in_case_are_refused(sqlite_target: SqliteTarget) -> None:
    with pytest.raises(TargetError, match="ignore case"):
        sqlite_target.ensure_table(TableSpec("in.c-b.t", ("id", "ID")))


def test_ensure_table_and_tail_while_an_import_runs(sqlite_target: SqliteTarget, staging: Staging) -> None:
    """The API checks and creates tables from its own threads while the
    coordinator imports: nobody fails, the writers take turns."""
    sqlite_target.ensure_table(SPEC)
    rows = [[str(i), "x" * 100] for i in range(200_000)]
    request = staging.request(SPEC, rows)
    results: list[ImportResult] = []
    importer = threading.Thread(target=lambda: results.append(sqlite_target.import_files(request)))
    importer.start()
    created = 0
    while importer.is_alive() or created < 3:
        spec = TableSpec(f"in.c-api.t{created}", ("a", "b"), ("a",))
        sqlite_target.ensure_table(spec)
        assert sqlite_target.table_exists(spec.table_id)
        sqlite_target.ensure_table(SPEC)
        count = len(sqlite_target.tail(SPEC.table_id, limit=1_000_000)[1])
        assert count in (0, 200_000)  # never a part of the import
        created += 1
    importer.join()
    assert results and results[0].rows_read == 200_000
    assert len(sqlite_target.tail(SPEC.table_id, limit=1_000_000)[1]) == 200_000


def test_another_process_reads_all_or_nothing(sqlite_target: SqliteTarget, staging: Staging, tmp_path: Path) -> None:
    sqlite_target.ensure_table(KEYED)
    sqlite_target.import_files(staging.request(KEYED, [[str(i), "old"] for i in range(50_000)]))
    request = staging.request(KEYED, [[str(i), "new"] for i in range(25_000, 125_000)])
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(sqlite_target.path)!r}, timeout=30)\n"
            "seen = set()\n"
            "end = time.monotonic() + 30\n"
            "while time.monotonic() < end:\n"
            "    seen.add(db.execute('SELECT count(*), sum(body = \\'new\\') FROM \"in.c-bucket.users\"').fetchone())\n"
            "    if (125000, 100000) in seen: break\n"
            "print(sorted(seen))\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.2)
    sqlite_target.import_files(request)
    out, _ = reader.communicate(timeout=60)
    assert set(eval(out)) <= {(50_000, 0), (125_000, 100_000)}


def test_connections_per_thread_are_closed(tmp_path: Path, staging: Staging) -> None:
    target = SqliteTarget(tmp_path / "t.sqlite")
    threads = [
        threading.Thread(target=target.ensure_table, args=(TableSpec(f"in.c-b.t{i}", ("a",)),)) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(target._connections) >= 4
    target.close()
    assert target._connections == []


_OPEN_AT_ONCE = """
import sys, time
from pushstream.targets.base import TableSpec
from pushstream.targets.sqlite import SqliteTarget
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
target = SqliteTarget(sys.argv[1])
for _ in range(20):  # and write at once, as a coordinator creating its tables would
    target.ensure_table(TableSpec("in.c-b.t" + sys.argv[3], ("a",), ()))
target.close()
"""


def test_processes_opening_a_new_database_at_once(tmp_path: Path) -> None:
    """Server workers and the coordinator open a new target database at the same
    moment: every one of them gets it (in WAL mode), none fails with "locked"."""
    for attempt in range(5):
        path = tmp_path / f"tables-{attempt}.sqlite"
        start = time.time() + 1.0
        command = [sys.executable, "-c", _OPEN_AT_ONCE, str(path), str(start)]
        children = [subprocess.Popen([*command, str(n)], stderr=subprocess.PIPE) for n in range(6)]
        errors = [child.communicate(timeout=60)[1].decode() for child in children]
        assert [child.returncode for child in children] == [0] * 6, "\n".join(errors)
        target = SqliteTarget(path)
        try:
            assert Raw(target, None).sql("PRAGMA journal_mode") == [("wal",)]
        finally:
            target.close()
