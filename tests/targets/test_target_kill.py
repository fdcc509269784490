"""``kill -9`` of a process in the middle of an import, with every merge strategy,
on SQLite and a real PostgreSQL: the table is either as before the import or as
after it (never in between), and importing the same id again afterwards leaves it
imported exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from targethelpers import Staging

from pushstream.targets.base import SinkIdentity, TableSpec
from pushstream.targets.postgresql import PostgresTarget
from pushstream.targets.sqlite import SqliteTarget

#: Rows in the table before the import, and in the imported file (keys repeat).
BEFORE = 5_000
FILE_ROWS = 30_000
KEYS = 12_000

IMPORTER = """
import json, sys, time
from pathlib import Path
from pushstream.targets import open_target
from pushstream.targets.base import ImportRequest, SinkIdentity, TableSpec
from pushstream.targets.postgresql import PostgresTarget
from pushstream.targets.sqlite import SqliteTarget
url, data_dir, spec, path, pause = sys.argv[1:]

def paused(record):
    # Every row is written, the import id not yet recorded: the parent kills us here.
    def wrapped(*args, **kwargs):
        print("written", flush=True)
        time.sleep(600)
        return record(*args, **kwargs)
    return wrapped

if pause == "pause":
    SqliteTarget._record_import = staticmethod(paused(SqliteTarget._record_import))
    PostgresTarget._finish = paused(PostgresTarget._finish)
spec = json.loads(spec)
spec = TableSpec(spec["table_id"], tuple(spec["columns"]), tuple(spec["primary_key"]),
                 column_types=tuple(spec["column_types"]), merge_strategy=spec["merge_strategy"],
                 system_columns=spec["system_columns"])
target = open_target(url, Path(data_dir))
request = ImportRequest(spec, "file-2", [Path(path)], SinkIdentity(1, "source", "sink"))
print("importing", flush=True)
target.import_files(request)
print("imported", flush=True)
"""

CASES = [("append", False), ("upsert", True), ("ledger", True), ("snapshot", True), ("snapshot", False)]


def file_rows() -> list[tuple[int, str]]:
    return [((i * 7919) % KEYS + BEFORE // 2, f"v{i}") for i in range(FILE_ROWS)]


def expected_after(
    strategy: str, keyed: bool, before: list[tuple[int, str]], rows: list[tuple[int, str]]
) -> list[tuple[int, str]]:
    """The table after the import, by the merge strategy."""
    if strategy == "append":
        return sorted(before + rows)
    if strategy == "snapshot" and not keyed:
        return sorted(rows)
    table: dict[int, str] = {} if strategy == "snapshot" else dict(before)
    for key, value in rows:
        if strategy == "ledger":
            table.setdefault(key, value)
        else:
            table[key] = value
    return sorted(table.items())


def table_rows(target: Any, table_id: str) -> list[tuple[int, str]]:
    return sorted((r[0], r[1]) for r in target.tail(table_id, limit=10**7)[1])


def url_of(target: Any) -> str:
    return f"sqlite:///{target.path}" if isinstance(target, SqliteTarget) else target.url


@pytest.mark.parametrize(("strategy", "keyed"), CASES)
@pytest.mark.parametrize("system", [False, True])
def test_kill_during_import(
    target: Any, staging: Staging, tmp_path: Path, strategy: str, keyed: bool, system: bool
) -> None:
    rnd = random.Random(f"{strategy}{keyed}{system}")
    spec = TableSpec(
        "in.c-kill.t",
        ("k", "v"),
        ("k",) if keyed else (),
        column_types=("integer", "string"),
        merge_strategy=strategy,
        system_columns=system,
    )
    target.ensure_table(spec)
    before = [(k, "before") for k in range(BEFORE)]
    target.import_files(staging.request(spec, [[str(k), v] for k, v in before], import_id="file-1"))
    rows = file_rows()
    path = staging.file([[str(k), v] for k, v in rows])
    after = expected_after(strategy, keyed, before, rows)
    spec_json = json.dumps(
        {
            "table_id": spec.table_id,
            "columns": spec.columns,
            "primary_key": spec.primary_key,
            "column_types": spec.column_types,
            "merge_strategy": spec.merge_strategy,
            "system_columns": spec.system_columns,
        }
    )
    if isinstance(target, PostgresTarget):
        target.prepare_sink(SinkIdentity(1, "source", "sink"), spec)
    for pause in ("pause", "random"):
        process = subprocess.Popen(
            [sys.executable, "-c", IMPORTER, url_of(target), str(tmp_path), spec_json, str(path), pause],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert process.stdout is not None
        assert process.stdout.readline() == b"importing\n"
        if pause == "pause":
            # Killed with every row written and nothing committed.
            assert process.stdout.readline() == b"written\n"
        else:
            # Killed at some moment of the import (or after it).
            time.sleep(rnd.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        state = table_rows(target, spec.table_id)
        # All of the import or nothing of it.
        assert state == sorted(before) if pause == "pause" else state in (sorted(before), after)
    request = staging.request(spec, [[str(k), v] for k, v in rows], import_id="file-2")
    target.import_files(request)
    target.import_files(request)
    assert table_rows(target, spec.table_id) == after
    if system:
        offsets = sorted(r[0] for r in target.tail(spec.table_id, limit=10**7, system=True)[1])
        assert len(offsets) == len(set(offsets))
        if strategy in ("append", "ledger"):
            # Rolled-back imports hand out no offsets: numbered 0, 1, 2, ... without gaps.
            assert offsets == list(range(len(offsets)))
