"""Merge strategies (append, upsert, ledger, snapshot) and system columns, on
SQLite and a real PostgreSQL: across retries of one import id, across two files,
across two sinks writing one table."""

from __future__ import annotations

from typing import Any

import pytest
from targethelpers import Staging

from pushstream.targets.base import SinkIdentity, TableSpec

FIRST = [["1", "a"], ["2", "b"], ["1", "c"]]
SECOND = [["3", "d"], ["2", "e"]]

#: (strategy, keyed) → the rows after importing FIRST then SECOND, in import order
#: (SQLite: rowid; an updated row keeps its place; checked as sets for PostgreSQL).
AFTER_BOTH: dict[tuple[str, bool], list[tuple[int, str]]] = {
    ("append", False): [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")],
    ("upsert", True): [(1, "c"), (2, "e"), (3, "d")],
    ("ledger", True): [(1, "a"), (2, "b"), (3, "d")],
    ("snapshot", True): [(2, "e"), (3, "d")],
    ("snapshot", False): [(3, "d"), (2, "e")],
}
#: The same with system columns: (_offset, _op, k, v) sorted by _offset.
SYSTEM_AFTER_BOTH: dict[tuple[str, bool], list[tuple[int, str, int, str]]] = {
    ("append", False): [(0, "+A", 1, "a"), (1, "+A", 2, "b"), (2, "+A", 1, "c"), (3, "+A", 3, "d"), (4, "+A", 2, "e")],
    # The last row of key 1 is the file's 3rd, of key 2 the 2nd: key 2 is numbered first.
    ("upsert", True): [(1, "+I", 1, "c"), (2, "+I", 3, "d"), (3, "+U", 2, "e")],
    # Ledger: a key the table has is skipped and takes no offset.
    ("ledger", True): [(0, "+A", 1, "a"), (1, "+A", 2, "b"), (2, "+A", 3, "d")],
    ("snapshot", True): [(2, "+I", 3, "d"), (3, "+U", 2, "e")],
    ("snapshot", False): [(3, "+I", 3, "d"), (4, "+I", 2, "e")],
}
CASES = list(AFTER_BOTH)


def spec_of(strategy: str, keyed: bool, system: bool = False, table: str = "in.c-merge.t") -> TableSpec:
    return TableSpec(
        table,
        ("k", "v"),
        ("k",) if keyed else (),
        column_types=("integer", "string"),
        merge_strategy=strategy,
        system_columns=system,
    )


def rows_by_import(target: Any, table_id: str) -> list[tuple[Any, ...]]:
    return target.tail(table_id, limit=1000)[1]


def same_rows(target: Any, got: list[tuple[Any, ...]], expected: list[Any]) -> None:
    # PostgreSQL's physical order moves an updated row: compare as multisets there.
    if type(target).__name__ == "PostgresTarget":
        assert sorted(got) == sorted(expected)
    else:
        assert got == expected


@pytest.mark.parametrize(("strategy", "keyed"), CASES)
def test_two_files_and_retries(target: Any, staging: Staging, strategy: str, keyed: bool) -> None:
    spec = spec_of(strategy, keyed)
    target.ensure_table(spec)
    first = staging.request(spec, FIRST, import_id="file-1")
    second = staging.request(spec, SECOND, import_id="file-2")
    assert target.import_files(first).rows_read == 3
    assert target.import_files(first).already_imported  # a retry writes nothing
    assert target.import_files(second).rows_read == 2
    assert target.import_files(first).already_imported
    assert target.import_files(second).already_imported
    same_rows(target, rows_by_import(target, spec.table_id), AFTER_BOTH[(strategy, keyed)])


@pytest.mark.parametrize(("strategy", "keyed"), CASES)
def test_system_columns(target: Any, staging: Staging, strategy: str, keyed: bool) -> None:
    spec = spec_of(strategy, keyed, system=True)
    target.ensure_table(spec)
    target.import_files(staging.request(spec, FIRST, import_id="file-1"))
    target.import_files(staging.request(spec, FIRST, import_id="file-1"))
    target.import_files(staging.request(spec, SECOND, import_id="file-2"))
    columns, rows = target.tail(spec.table_id, limit=1000, system=True)
    assert columns == ["_offset", "_op", "_system_time", "k", "v"]
    assert sorted((o, op, k, v) for o, op, _, k, v in rows) == SYSTEM_AFTER_BOTH[(strategy, keyed)]
    times = {t for _, _, t, _, _ in rows}
    assert all(len(t) == 27 and t.endswith("Z") and t[10] == "T" for t in times)
    # Without --system the system columns are not shown.
    assert target.tail(spec.table_id)[0] == ["k", "v"]


def test_offsets_are_never_reused(target: Any, staging: Staging) -> None:
    """A snapshot that deletes the newest rows does not hand their offsets out again."""
    spec = spec_of("snapshot", True, system=True)
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["1", "a"], ["2", "b"], ["3", "c"]]))
    target.import_files(staging.request(spec, [["1", "x"]]))
    target.import_files(staging.request(spec, [["1", "y"], ["4", "z"]]))
    rows = target.tail(spec.table_id, system=True)[1]
    assert sorted((o, op, k, v) for o, op, _, k, v in rows) == [(4, "+U", 1, "y"), (5, "+I", 4, "z")]


@pytest.mark.parametrize(("strategy", "keyed"), CASES)
@pytest.mark.parametrize("system", [False, True])
def test_two_sinks_write_one_table(target: Any, staging: Staging, strategy: str, keyed: bool, system: bool) -> None:
    spec = spec_of(strategy, keyed, system=system)
    one, two = SinkIdentity(1, "source", "one"), SinkIdentity(1, "source", "two")
    target.prepare_sink(one, spec)
    target.prepare_sink(two, spec)
    target.import_files(staging.request(spec, FIRST, import_id="one/file-1", sink=one))
    target.import_files(staging.request(spec, FIRST, import_id="one/file-1", sink=one))
    target.import_files(staging.request(spec, SECOND, import_id="two/file-1", sink=two))
    target.import_files(staging.request(spec, SECOND, import_id="two/file-1", sink=two))
    _columns, rows = target.tail(spec.table_id, limit=1000, system=system)
    if system:
        assert sorted((o, op, k, v) for o, op, _, k, v in rows) == SYSTEM_AFTER_BOTH[(strategy, keyed)]
    else:
        same_rows(target, rows, AFTER_BOTH[(strategy, keyed)])


def test_ledger_keeps_the_first_row_of_a_key_within_a_file(target: Any, staging: Staging) -> None:
    spec = spec_of("ledger", True)
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["1", "first"], ["1", "second"], ["2", "x"], ["1", "third"]]))
    assert sorted(rows_by_import(target, spec.table_id)) == [(1, "first"), (2, "x")]


def test_tail_by_event_time(target: Any, staging: Staging) -> None:
    spec = TableSpec(
        "in.c-merge.events",
        ("id", "at"),
        column_types=("string", "timestamp"),
        event_time_column="at",
        system_columns=True,
    )
    target.ensure_table(spec)
    target.import_files(
        staging.request(
            spec,
            [
                ["late", "2024-05-03T00:00:00.000000Z"],
                ["early", "2024-05-01T00:00:00.000000Z"],
                ["middle", "2024-05-02T00:00:00.000000Z"],
            ],
        )
    )
    columns, rows = target.tail(spec.table_id, limit=2, order="event-time")
    assert (columns, rows) == (
        ["id", "at"],
        [("middle", "2024-05-02T00:00:00.000000Z"), ("late", "2024-05-03T00:00:00.000000Z")],
    )
    assert [r[0] for r in target.tail(spec.table_id)[1]] == ["late", "early", "middle"]
    columns, rows = target.tail(spec.table_id, limit=1, order="event-time", system=True)
    # kamu tail's order: offset, op, system time, event time, the rest.
    assert columns == ["_offset", "_op", "_system_time", "at", "id"]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [(0, "+A", "2024-05-03T00:00:00.000000Z", "late")]


def test_tail_asks_for_what_the_table_lacks(target: Any, staging: Staging) -> None:
    from pushstream.targets.base import TargetError

    spec = TableSpec("in.c-merge.plain", ("id",))
    target.ensure_table(spec)
    with pytest.raises(TargetError) as err:
        target.tail(spec.table_id, system=True)
    assert str(err.value) == (
        'table "in.c-merge.plain" has no system columns (_offset, _op, _system_time):'
        ' the sink writing it needs "systemColumns": true in its mapping'
    )
    with pytest.raises(TargetError) as err:
        target.tail(spec.table_id, order="event-time")
    assert str(err.value) == (
        'table "in.c-merge.plain" has no event-time column: the sink writing it needs "eventTimeColumn" in its mapping'
    )
