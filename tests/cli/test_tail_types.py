"""``pushstream tail`` of typed tables: typed values in every output format,
``--system`` (kamu tail's order) and ``--order event-time``, and what it says
of a table without system columns or event time. The table is made by the SQLite
target itself in a data dir, as the server's coordinator would."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
import zstandard
from clitest import run_cli

from pushstream.targets.base import ImportRequest, SinkIdentity, TableSpec
from pushstream.targets.sqlite import SqliteTarget

TABLE = "in.c-typed.orders"
SPEC = TableSpec(
    TABLE,
    ("id", "qty", "price", "paid", "at", "meta"),
    ("id",),
    column_types=("string", "integer", "number", "boolean", "timestamp", "json"),
    event_time_column="at",
    system_columns=True,
)
ROWS = [
    ["b", "2", "49.28", "true", "2024-05-02T08:00:00.000000Z", '{"n":1}'],
    ["a", "1", "1e300", "false", "2024-05-01T08:00:00.500000Z", ""],
    ["c", "", "", "", "2024-05-03T08:00:00.000000Z", "[]"],
]


def _staged(path: Path, rows: list[list[str]]) -> Path:
    text = "".join(",".join('"' + v.replace('"', '""') + '"' for v in row) + "\n" for row in rows)
    path.write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = SqliteTarget(tmp_path / "tables.sqlite")
    try:
        target.ensure_table(SPEC)
        target.ensure_table(TableSpec("in.c-typed.plain", ("id",)))
        request = ImportRequest(SPEC, "file-1", [_staged(tmp_path / "f.csv.zst", ROWS)], SinkIdentity(1, "s", "k"))
        target.import_files(request)
    finally:
        target.close()
    return tmp_path


def _tail(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli(None, "tail", *args, "--data-dir", str(data_dir))
    return result.exit_code, result.stdout, result.stderr


def test_typed_values_in_json_and_ndjson(data_dir: Path) -> None:
    code, out, err = _tail(data_dir, TABLE, "-o", "ndjson")
    assert (code, err) == (0, "")
    assert [orjson.loads(line) for line in out.splitlines()] == [
        {"id": "b", "qty": 2, "price": 49.28, "paid": True, "at": "2024-05-02T08:00:00.000000Z", "meta": '{"n":1}'},
        {"id": "a", "qty": 1, "price": 1e300, "paid": False, "at": "2024-05-01T08:00:00.500000Z", "meta": None},
        {"id": "c", "qty": None, "price": None, "paid": None, "at": "2024-05-03T08:00:00.000000Z", "meta": "[]"},
    ]
    code, out, _ = _tail(data_dir, TABLE, "-o", "json", "-n", "1")
    assert orjson.loads(out)[0]["qty"] is None
    assert '"qty": null' in out


def test_table_and_csv(data_dir: Path) -> None:
    code, out, _ = _tail(data_dir, TABLE, "-o", "csv", "-n", "2")
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [
        ["id", "qty", "price", "paid", "at", "meta"],
        ["a", "1", "1e+300", "false", "2024-05-01T08:00:00.500000Z", ""],
        ["c", "", "", "", "2024-05-03T08:00:00.000000Z", "[]"],
    ]
    code, out, _ = _tail(data_dir, TABLE, "-n", "1")
    assert out.splitlines()[1] == "│ id │ qty │ price │ paid │ at                          │ meta │"
    assert out.splitlines()[3] == "│ c  │     │       │      │ 2024-05-03T08:00:00.000000Z │ []   │"


def test_system_columns_and_event_time_order(data_dir: Path) -> None:
    code, out, err = _tail(data_dir, TABLE, "--system", "--order", "event-time", "-o", "ndjson")
    assert (code, err) == (0, "")
    rows = [orjson.loads(line) for line in out.splitlines()]
    # kamu tail's order: offset, op, system time, the event time, then the rest.
    assert list(rows[0]) == ["_offset", "_op", "_system_time", "at", "id", "qty", "price", "paid", "meta"]
    assert [(r["at"], r["id"], r["_offset"], r["_op"]) for r in rows] == [
        ("2024-05-01T08:00:00.500000Z", "a", 1, "+I"),
        ("2024-05-02T08:00:00.000000Z", "b", 0, "+I"),
        ("2024-05-03T08:00:00.000000Z", "c", 2, "+I"),
    ]
    assert len({r["_system_time"] for r in rows}) == 1


def test_what_a_table_lacks(data_dir: Path) -> None:
    code, _, err = _tail(data_dir, "in.c-typed.plain", "--system")
    assert (code, err) == (
        3,
        'Error: table "in.c-typed.plain" has no system columns (_offset, _op, _system_time):'
        ' the sink writing it needs "systemColumns": true in its mapping\n',
    )
    code, _, err = _tail(data_dir, "in.c-typed.plain", "--order", "event-time")
    assert (code, err) == (
        3,
        'Error: table "in.c-typed.plain" has no event-time column:'
        ' the sink writing it needs "eventTimeColumn" in its mapping\n',
    )
    code, _, err = _tail(data_dir, TABLE, "--order", "newest")
    assert code == 1 and "Invalid value for '--order': 'newest' is not one of 'import', 'event-time'" in err
