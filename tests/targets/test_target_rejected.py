"""Rows a database refuses go to the request's ``reject`` with the reason, while
the other rows of the file are imported in the same transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
from targethelpers import Staging

from pushstream.targets.base import RejectedRow, TableSpec, TargetError
from pushstream.targets.postgresql import PostgresTarget
from pushstream.targets.rows import write_bisecting
from pushstream.targets.sqlite import SqliteTarget
from rawsql import Raw

PLAIN = TableSpec("in.c-bucket.checked", ("id", "v"))
KEYED = TableSpec("in.c-bucket.checked", ("id", "v"), ("id",))


def _checked_table(target: Any, raw: Raw, spec: TableSpec) -> None:
    """The table with a constraint pushstream does not know about, added by hand."""
    if isinstance(target, PostgresTarget):
        target.ensure_table(spec)
        raw.sql(f'ALTER TABLE {raw.name(spec.table_id)} ADD CHECK (length("v") < 4)')
        return
    key = ', PRIMARY KEY ("id")' if spec.primary_key else ""
    raw.sql(f'CREATE TABLE {raw.name(spec.table_id)} ("id" TEXT NOT NULL, "v" TEXT CHECK (length("v") < 4){key})')


class Rejected:
    def __init__(self) -> None:
        self.calls: list[list[RejectedRow]] = []

    def __call__(self, rows: Sequence[RejectedRow]) -> None:
        self.calls.append(list(rows))


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_refused_rows_are_rejected_and_the_rest_imported(
    target: Any, raw: Raw, staging: Staging, spec: TableSpec
) -> None:
    _checked_table(target, raw, spec)
    rows = [[f"{i:05d}", "bad!" if i in (3, 700, 701, 1999) else "ok"] for i in range(2000)]
    rejected = Rejected()
    request = dataclasses.replace(staging.request(spec, rows[:1000], rows[1000:]), reject=rejected)
    result = target.import_files(request)
    assert (result.rows_read, result.rejected) == (2000, 4)
    assert len(rejected.calls) == 1
    assert [r.values for r in rejected.calls[0]] == [
        ("00003", "bad!"),
        ("00700", "bad!"),
        ("00701", "bad!"),
        ("01999", "bad!"),
    ]
    assert all("check" in r.reason.lower() for r in rejected.calls[0]), rejected.calls
    kept = sorted(row[0] for row in target.tail(spec.table_id, limit=10_000)[1])
    assert kept == [r[0] for r in rows if r[1] == "ok"]
    # Recorded as imported: once more is a no-op, nothing rejected twice.
    again = target.import_files(request)
    assert again.already_imported and len(rejected.calls) == 1


def test_without_reject_the_import_fails_as_a_whole(target: Any, raw: Raw, staging: Staging) -> None:
    _checked_table(target, raw, PLAIN)
    with pytest.raises(TargetError):
        target.import_files(staging.request(PLAIN, [["1", "ok"], ["2", "bad!"]]))
    assert target.tail(PLAIN.table_id)[1] == []


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_postgresql_refuses_nul_and_imports_the_rest(
    pg_target: PostgresTarget, staging: Staging, spec: TableSpec
) -> None:
    rows = [["a", "1"], ["b", "x\x00y"], ["c", "3"]]
    rejected = Rejected()
    result = pg_target.import_files(dataclasses.replace(staging.request(spec, rows), reject=rejected))
    assert (result.rows_read, result.rejected) == (3, 1)
    assert [r.values for r in rejected.calls[0]] == [("b", "x\x00y")]
    assert "0x00" in rejected.calls[0][0].reason
    assert sorted(pg_target.tail(spec.table_id)[1]) == [("a", "1"), ("c", "3")]


def test_sqlite_keeps_nul(sqlite_target: SqliteTarget, staging: Staging) -> None:
    rejected = Rejected()
    request = dataclasses.replace(staging.request(PLAIN, [["b", "x\x00y"]]), reject=rejected)
    assert sqlite_target.import_files(request).rejected == 0
    assert sqlite_target.tail(PLAIN.table_id)[1] == [("b", "x\x00y")]


def test_bisecting_finds_few_bad_rows_in_few_attempts() -> None:
    """A few bad rows among many cost a few dozen statements, not one per row,
    and the good rows are written in their order."""
    n = 100_000
    bad = {17, 50_000, 50_001, 99_999}
    rows = pa.table({"id": [str(i) for i in range(n)]})
    written: list[str] = []
    attempts = 0

    def attempt(part: pa.Table) -> str | None:
        nonlocal attempts
        attempts += 1
        ids = part.column("id").to_pylist()
        if bad & {int(i) for i in ids}:
            return "refused"
        written.extend(ids)
        return None

    refused = write_bisecting(rows, attempt, "refused")
    assert [r.values for r in refused] == [(str(i),) for i in sorted(bad)]
    assert written == [str(i) for i in range(n) if i not in bad]
    assert attempts < 4 * len(bad) * 17  # about 2·k·log2(n/k); row by row would be 100,000
