"""Typed tables: every data type loaded from the core's canonical text into
native columns of SQLite and a real PostgreSQL, NULL from an empty field, the
types read back exactly; a table whose types differ from the sink's is refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from targethelpers import Staging

from pushstream.targets.base import EventRange, RejectedRow, TableMismatchError, TableSpec, TargetError
from pushstream.targets.sqlite import SqliteTarget
from rawsql import Raw

UTC = dt.UTC

#: data type → (canonical staged text, value read from SQLite, value read from PostgreSQL)
VALUES: dict[str, list[tuple[str, Any, Any]]] = {
    "integer": [
        ("42", 42, 42),
        ("-9223372036854775808", -9223372036854775808, -9223372036854775808),
        ("9223372036854775807", 9223372036854775807, 9223372036854775807),
    ],
    "number": [("49.28", 49.28, 49.28), ("1e300", 1e300, 1e300), ("-0.5", -0.5, -0.5), ("0.0", 0.0, 0.0)],
    "boolean": [("true", 1, True), ("false", 0, False)],
    "timestamp": [
        (
            "2024-05-01T12:00:00.123456Z",
            "2024-05-01T12:00:00.123456Z",
            dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        ),
        (
            "1969-12-31T23:59:59.999999Z",
            "1969-12-31T23:59:59.999999Z",
            dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ),
    ],
    "date": [("2024-02-29", "2024-02-29", dt.date(2024, 2, 29)), ("1900-01-01", "1900-01-01", dt.date(1900, 1, 1))],
    "json": [
        ('{"a":[1,2.5,null]}', '{"a":[1,2.5,null]}', '{"a": [1, 2.5, null]}'),
        ('"text"', '"text"', '"text"'),
        ("12345678901234567890", "12345678901234567890", "12345678901234567890"),
        # jsonb keeps numbers as numeric: 1e300 comes back written out.
        ("1e300", "1e300", "1" + "0" * 300),
    ],
}
#: What tail shows of each value (the same for both targets, but json: PostgreSQL
#: shows jsonb's text, the third value of :data:`VALUES`).
TAILED: dict[str, list[Any]] = {
    "integer": [42, -9223372036854775808, 9223372036854775807],
    "number": [49.28, 1e300, -0.5, 0.0],
    "boolean": [True, False],
    "timestamp": ["2024-05-01T12:00:00.123456Z", "1969-12-31T23:59:59.999999Z"],
    "date": ["2024-02-29", "1900-01-01"],
    "json": ['{"a":[1,2.5,null]}', '"text"', "12345678901234567890", "1e300"],
}
#: The declared type of each data type, as each database reports it.
DECLARED = {
    "sqlite": {
        "integer": "INTEGER",
        "number": "REAL",
        "boolean": "BOOLEAN",
        "timestamp": "TIMESTAMP",
        "date": "DATE",
        "json": "JSON_TEXT",
        "string": "TEXT",
    },
    "postgresql": {
        "integer": "bigint",
        "number": "double precision",
        "boolean": "boolean",
        "timestamp": "timestamp with time zone",
        "date": "date",
        "json": "jsonb",
        "string": "text",
    },
}


def kind(target: Any) -> str:
    return "sqlite" if isinstance(target, SqliteTarget) else "postgresql"


def select_values(target: Any, raw: Raw, table_id: str, column: str, data_type: str) -> list[Any]:
    """The column's values by id, as the database's driver returns them (jsonb as its text)."""
    value = f'"{column}"::text' if data_type == "json" and kind(target) == "postgresql" else f'"{column}"'
    return [r[0] for r in raw.sql(f'SELECT {value} FROM {raw.name(table_id)} ORDER BY "id"')]


def declared_types(target: Any, raw: Raw, table_id: str) -> list[str]:
    if kind(target) == "sqlite":
        return [r[0] for r in raw.sql(f"SELECT type FROM pragma_table_info('{table_id}') ORDER BY cid")]
    schema, table = target.table_name(table_id)
    return [
        r[0]
        for r in raw.sql(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            f' WHERE attrelid = \'"{schema}"."{table}"\'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum'
        )
    ]


@pytest.mark.parametrize("data_type", list(VALUES))
def test_every_type_is_loaded_native_with_null(target: Any, raw: Raw, staging: Staging, data_type: str) -> None:
    spec = TableSpec("in.c-typed.values", ("id", "v"), column_types=("string", data_type))
    target.ensure_table(spec)
    assert declared_types(target, raw, spec.table_id) == [
        "TEXT" if kind(target) == "sqlite" else "text",
        DECLARED[kind(target)][data_type],
    ]
    cases = VALUES[data_type]
    rows = [[f"{i}", text] for i, (text, _, _) in enumerate(cases)] + [["9", ""]]
    result = target.import_files(staging.request(spec, rows))
    assert result.rows_read == len(cases) + 1
    column = 1 if kind(target) == "sqlite" else 2
    assert select_values(target, raw, spec.table_id, "v", data_type) == [c[column] for c in cases] + [None]
    tailed = [c[2] for c in cases] if data_type == "json" and kind(target) == "postgresql" else TAILED[data_type]
    assert target.tail(spec.table_id) == (["id", "v"], [(f"{i}", v) for i, v in enumerate(tailed)] + [("9", None)])


def test_every_type_in_one_table_keyed_and_with_system_columns(target: Any, raw: Raw, staging: Staging) -> None:
    """Typed key, every type in one row, through the SQL merge path (system columns)."""
    types = tuple(VALUES)
    columns = ("id", *types)
    spec = TableSpec("in.c-typed.all", columns, ("id",), column_types=("integer", *types), system_columns=True)
    target.ensure_table(spec)
    first = ["1", *(VALUES[t][0][0] for t in types)]
    empty = ["2", *("" for _ in types)]
    target.import_files(staging.request(spec, [first, empty]))
    _, rows = target.tail(spec.table_id)
    json_text = '{"a": [1, 2.5, null]}' if kind(target) == "postgresql" else '{"a":[1,2.5,null]}'
    assert rows == [(1, *(TAILED[t][0] for t in types[:-1]), json_text), (2, *(None for _ in types))]
    # A string column keeps an empty field as an empty string, never NULL.
    text = TableSpec("in.c-typed.text", ("id", "s"), ("id",), column_types=("integer", "string"))
    target.ensure_table(text)
    target.import_files(staging.request(text, [["1", ""]]))
    assert target.tail(text.table_id)[1] == [(1, "")]


def test_untyped_sink_keeps_text_columns(target: Any, raw: Raw, staging: Staging) -> None:
    spec = TableSpec("in.c-typed.plain", ("id", "v"), ("id",))
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["1", ""], ["2", "42"]]))
    expected_type = "TEXT" if kind(target) == "sqlite" else "text"
    assert declared_types(target, raw, spec.table_id) == [expected_type, expected_type]
    assert target.tail(spec.table_id)[1] == [("1", ""), ("2", "42")]


def test_a_text_column_refuses_a_typed_sink(target: Any, staging: Staging) -> None:
    target.ensure_table(TableSpec("in.c-typed.t", ("id", "qty")))
    typed = TableSpec("in.c-typed.t", ("id", "qty"), column_types=("string", "integer"))
    message = 'table "in.c-typed.t" column "qty" is text, the sink needs integer'
    with pytest.raises(TableMismatchError) as err:
        target.ensure_table(typed)
    assert str(err.value) == message
    request = staging.request(typed, [["1", "5"]])
    with pytest.raises(TableMismatchError) as err:
        target.import_files(request)
    assert str(err.value) == message
    assert target.tail("in.c-typed.t")[1] == []


def test_a_typed_column_refuses_another_type(target: Any) -> None:
    target.ensure_table(TableSpec("in.c-typed.t", ("id", "qty"), column_types=("string", "integer")))
    with pytest.raises(TableMismatchError) as err:
        target.ensure_table(TableSpec("in.c-typed.t", ("id", "qty"), column_types=("string", "number")))
    assert str(err.value) == 'table "in.c-typed.t" column "qty" is integer, the sink needs number'
    with pytest.raises(TableMismatchError) as err:
        target.ensure_table(TableSpec("in.c-typed.t", ("id", "qty")))
    assert str(err.value) == 'table "in.c-typed.t" column "qty" is integer, the sink needs string'


def test_system_columns_are_part_of_the_shape(target: Any) -> None:
    target.ensure_table(TableSpec("in.c-typed.s", ("id",)))
    with pytest.raises(TableMismatchError) as err:
        target.ensure_table(TableSpec("in.c-typed.s", ("id",), system_columns=True))
    assert str(err.value) == ('table "in.c-typed.s" has columns [id], the sink needs [id, _offset, _op, _system_time]')


@pytest.mark.parametrize("key", [(), ("id",)])
def test_a_staged_value_not_of_its_type_fails_the_import(target: Any, staging: Staging, key: tuple[str, ...]) -> None:
    spec = TableSpec("in.c-typed.bad", ("id", "qty"), key, column_types=("string", "integer"))
    target.ensure_table(spec)
    with pytest.raises(TargetError) as err:
        target.import_files(staging.request(spec, [["1", "5"], ["2", "1.5"]]))
    assert str(err.value) == (
        "staged column \"qty\" has a value that is not integer: Failed to parse string: '1.5' as a scalar of type int64"
    )
    assert target.tail(spec.table_id)[1] == []


@pytest.mark.parametrize(
    ("strategy", "keyed"),
    [("append", False), ("upsert", True), ("ledger", True), ("snapshot", True), ("snapshot", False)],
)
@pytest.mark.parametrize("system", [False, True])
def test_a_null_in_a_not_nullable_column_is_rejected(
    target: Any, staging: Staging, strategy: str, keyed: bool, system: bool
) -> None:
    """The database refuses the row (NOT NULL); the rest of the file is imported
    by the strategy, in the same transaction, the refused row handed to ``reject``."""
    spec = TableSpec(
        "in.c-typed.required",
        ("id", "qty"),
        ("id",) if keyed else (),
        column_types=("string", "integer"),
        nullable=(True, False),
        merge_strategy=strategy,
        system_columns=system,
    )
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["0", "1"], ["1", "1"]]))
    refused: list[RejectedRow] = []
    request = staging.request(spec, [["1", "5"], ["2", ""], ["3", "7"]])
    result = target.import_files(
        type(request)(request.spec, request.import_id, request.paths, request.sink, reject=refused.extend)
    )
    assert (result.rows_read, result.rejected) == (3, 1)
    assert [r.values for r in refused] == [("2", "")]
    assert "null" in refused[0].reason.lower()
    expected = {
        "append": [("0", 1), ("1", 1), ("1", 5), ("3", 7)],
        "upsert": [("0", 1), ("1", 5), ("3", 7)],
        "ledger": [("0", 1), ("1", 1), ("3", 7)],
        "snapshot": [("1", 5), ("3", 7)],
    }[strategy]
    _columns, rows = target.tail(spec.table_id, system=system)
    assert sorted(r[-2:] for r in rows) == expected
    if system:
        offsets = sorted(r[0] for r in rows)
        assert offsets[-2:] == [offsets[-2], offsets[-2] + 1]  # the refused row takes no offset


def test_spec_validation() -> None:
    def refused(spec: TableSpec) -> str:
        with pytest.raises(TargetError) as err:
            spec.validate()
        return str(err.value)

    t = "in.c-b.t"
    assert refused(TableSpec(t, ("a",), ("a",), merge_strategy="append")) == (
        'table "in.c-b.t": mergeStrategy append takes no primary key'
    )
    assert (
        refused(TableSpec(t, ("a",), merge_strategy="upsert"))
        == 'table "in.c-b.t": mergeStrategy upsert needs a primary key'
    )
    assert (
        refused(TableSpec(t, ("a",), merge_strategy="ledger"))
        == 'table "in.c-b.t": mergeStrategy ledger needs a primary key'
    )
    assert refused(TableSpec(t, ("a",), merge_strategy="merge")) == (
        'table "in.c-b.t": unknown mergeStrategy "merge", expected one of append, upsert, ledger, snapshot'
    )
    assert refused(TableSpec(t, ("a",), column_types=("text",))) == (
        'table "in.c-b.t": column "a" has data type "text", expected one of'
        " string, integer, number, boolean, timestamp, date, json"
    )
    assert (
        refused(TableSpec(t, ("a",), event_time_column="b")) == 'table "in.c-b.t": eventTimeColumn "b" is not a column'
    )
    assert refused(TableSpec(t, ("a",), event_time_column="a")) == (
        'table "in.c-b.t": eventTimeColumn "a" must have dataType timestamp, it has string'
    )
    assert refused(TableSpec(t, ("_op",), system_columns=True)) == (
        'table "in.c-b.t": column name "_op" is reserved for system columns'
    )
    TableSpec(t, ("_op",)).validate()  # only reserved when the table has system columns
    TableSpec(t, ("a",), merge_strategy="snapshot").validate()
    TableSpec(t, ("a",), ("a",), merge_strategy="snapshot").validate()
    TableSpec(t, ("at",), column_types=("timestamp",), event_time_column="at").validate()
    # Defaults are today's table.
    assert TableSpec(t, ("a", "b")).column_types == ("string", "string")
    assert TableSpec(t, ("a", "b")).nullable == (True, True)
    assert TableSpec(t, ("a", "b")).merge_strategy == "append"
    assert TableSpec(t, ("a", "b"), ("a",)).merge_strategy == "upsert"


def _us(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1_000_000)


@pytest.mark.parametrize(
    ("strategy", "keyed", "system"),
    [("append", False, False), ("upsert", True, False), ("ledger", True, True), ("snapshot", False, False)],
)
def test_an_import_reports_the_event_time_range_of_the_rows_it_wrote(
    target: Any, staging: Staging, strategy: str, keyed: bool, system: bool
) -> None:
    """Min and max of the event-time column over the written rows, out of order,
    a NULL left out; a refused row (here the latest event) does not count."""
    spec = TableSpec(
        "in.c-typed.events",
        ("id", "at", "qty"),
        ("id",) if keyed else (),
        column_types=("string", "timestamp", "integer"),
        nullable=(True, True, False),
        merge_strategy=strategy,
        event_time_column="at",
        system_columns=system,
    )
    target.ensure_table(spec)
    rows = [
        ["1", "2026-11-30T12:00:00.000000Z", "1"],
        ["2", "2026-11-30T08:00:00.000001Z", "1"],
        ["3", "", "1"],
        ["4", "2026-11-30T10:00:00.000000Z", "1"],
    ]
    result = target.import_files(staging.request(spec, rows))
    assert result.event_range == EventRange(_us("2026-11-30T08:00:00.000001+00:00"), _us("2026-11-30T12:00:00+00:00"))

    refused: list[RejectedRow] = []
    latest_refused = ["5", "2026-12-01T00:00:00.000000Z", ""]
    request = staging.request(spec, [latest_refused, ["6", "2026-11-29T00:00:00.000000Z", "2"]])
    result = target.import_files(
        type(request)(request.spec, request.import_id, request.paths, request.sink, reject=refused.extend)
    )
    assert (result.rejected, [r.values[0] for r in refused]) == (1, ["5"])
    assert result.event_range == EventRange(_us("2026-11-29T00:00:00+00:00"), _us("2026-11-29T00:00:00+00:00"))
    # Imported already: nothing written, no range.
    assert target.import_files(request).event_range is None


def test_an_import_without_event_time_reports_no_range(target: Any, staging: Staging) -> None:
    spec = TableSpec("in.c-typed.plain", ("id", "at"), column_types=("string", "timestamp"))
    target.ensure_table(spec)
    assert target.import_files(staging.request(spec, [["1", "2026-11-30T12:00:00.000000Z"]])).event_range is None
    timed = TableSpec("in.c-typed.nulls", ("id", "at"), column_types=("string", "timestamp"), event_time_column="at")
    target.ensure_table(timed)
    assert target.import_files(staging.request(timed, [["1", ""]])).event_range is None
