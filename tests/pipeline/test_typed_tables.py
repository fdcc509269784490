"""Typed tables end to end: events posted to a real ``pushstream serve`` are mapped
by the core into typed values and imported into native columns of SQLite and of
PostgreSQL; null and missing values land as NULL, an unconvertible value is a 400
and lands nowhere; merge strategies and system columns through the whole path."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import pytest

from pgcluster import PgCluster
from serverprocess import ServerProcess
from streamclient import Stream

COLUMNS = [
    {"type": "path", "name": "s", "path": "s", "rawString": True},
    {"type": "path", "name": "i", "path": "i", "dataType": "integer"},
    {"type": "path", "name": "n", "path": "n", "dataType": "number"},
    {"type": "path", "name": "b", "path": "b", "dataType": "boolean"},
    {"type": "path", "name": "t", "path": "t", "dataType": "timestamp"},
    {"type": "path", "name": "d", "path": "d", "dataType": "date"},
    {"type": "path", "name": "j", "path": "j", "dataType": "json"},
]
VALID = (
    '{"s": "valid", "i": -42, "n": 49.28, "b": true, "t": "2024-05-01T12:00:00.5+02:00", "d": "2024-02-29",'
    ' "j": {"a": [1, 2]}}'
)
NULLS = '{"s": "null", "i": null, "n": null, "b": null, "t": null, "d": null, "j": null}'
MISSING = '{"s": "missing"}'
# Strings are read as the type too (what form posts and CSV give).
STRINGS = '{"s": "strings", "i": "7", "n": "0.5", "b": "false", "t": 0, "d": "1999-12-31", "j": "text"}'


def _server(server_factory: Any, target: str, pg_admin_url: str | None) -> ServerProcess:
    args = ("--target", pg_admin_url) if target == "postgresql" and pg_admin_url else ()
    server: ServerProcess = server_factory(args=args)
    return server


def _rows(server: ServerProcess, target: str, pg: PgCluster | None, pg_url: str | None, sql: str) -> list[tuple]:
    if target == "postgresql":
        assert pg is not None and pg_url is not None
        return pg.execute(sql.replace("TABLE", '"in.c-test"."typed"'), database=pg_url.rsplit("/", 1)[1])
    db = sqlite3.connect(server.data_dir / "tables.sqlite")
    try:
        return [tuple(r) for r in db.execute(sql.replace("TABLE", '"in.c-test.typed"'))]
    finally:
        db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest) -> tuple[str, PgCluster | None, str | None]:
    if request.param == "sqlite":
        return ("sqlite", None, None)
    return ("postgresql", request.getfixturevalue("pg_cluster"), request.getfixturevalue("pg_admin_url"))


def test_every_type_valid_null_missing_and_unconvertible(server_factory: Any, target: Any) -> None:
    kind, pg, pg_url = target
    server = _server(server_factory, kind, pg_url)
    stream = Stream(server).create()
    stream.sink("typed", COLUMNS)
    for body in (VALID, NULLS, MISSING, STRINGS):
        response = stream.post(body)
        assert response.status_code == 200, response.text
    bad = stream.post('{"s": "bad", "i": 1.5}')
    assert bad.status_code == 400
    assert bad.json()["sources"][0]["sinks"][0]["message"] == 'column "i": cannot convert 1.5 to integer'
    assert stream.flush(wait=60)["imported"]

    rows = _rows(server, kind, pg, pg_url, "SELECT s, i, n, b, t, d, j FROM TABLE ORDER BY s")
    if kind == "sqlite":
        # SQLite has no timestamp, date or JSON storage class: canonical text in
        # columns declared TIMESTAMP, DATE and JSON_TEXT; booleans are 0/1.
        assert rows == [
            ("missing", None, None, None, None, None, None),
            ("null", None, None, None, None, None, None),
            ("strings", 7, 0.5, 0, "1970-01-01T00:00:00.000000Z", "1999-12-31", '"text"'),
            ("valid", -42, 49.28, 1, "2024-05-01T10:00:00.500000Z", "2024-02-29", '{"a":[1,2]}'),
        ]
        declared = _rows(server, kind, pg, pg_url, "SELECT name, type FROM pragma_table_info('in.c-test.typed')")
        assert declared == [
            ("s", "TEXT"),
            ("i", "INTEGER"),
            ("n", "REAL"),
            ("b", "BOOLEAN"),
            ("t", "TIMESTAMP"),
            ("d", "DATE"),
            ("j", "JSON_TEXT"),
        ]
    else:
        utc = dt.UTC
        assert rows == [
            ("missing", None, None, None, None, None, None),
            ("null", None, None, None, None, None, None),
            ("strings", 7, 0.5, False, dt.datetime(1970, 1, 1, tzinfo=utc), dt.date(1999, 12, 31), '"text"'),
            (
                "valid",
                -42,
                49.28,
                True,
                dt.datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=utc),
                dt.date(2024, 2, 29),
                '{"a": [1, 2]}',
            ),
        ]
        declared = _rows(
            server,
            kind,
            pg,
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'in.c-test' AND table_name = 'typed' ORDER BY ordinal_position",
        )
        assert declared == [
            ("s", "text"),
            ("i", "bigint"),
            ("n", "double precision"),
            ("b", "boolean"),
            ("t", "timestamp with time zone"),
            ("d", "date"),
            ("j", "jsonb"),
        ]


def test_a_not_nullable_column_refuses_a_missing_value(server_factory: Any, target: Any) -> None:
    kind, pg, pg_url = target
    server = _server(server_factory, kind, pg_url)
    stream = Stream(server).create()
    stream.sink("typed", [{"type": "path", "name": "i", "path": "i", "dataType": "integer", "nullable": False}])
    missing = stream.post("{}")
    assert missing.status_code == 400
    assert missing.json()["sources"][0]["sinks"][0]["message"] == 'column "i": no value, the column is not nullable'
    assert stream.post('{"i": 3}').status_code == 200
    assert stream.flush(wait=60)["imported"]
    assert _rows(server, kind, pg, pg_url, "SELECT i FROM TABLE") == [(3,)]


def test_ledger_keeps_the_first_write_and_system_columns_tell_the_operation(server_factory: Any, target: Any) -> None:
    kind, pg, pg_url = target
    server = _server(server_factory, kind, pg_url)
    stream = Stream(server).create()
    columns = [
        {"type": "path", "name": "id", "path": "id", "dataType": "integer", "primaryKey": True},
        {"type": "path", "name": "v", "path": "v", "rawString": True},
    ]
    stream.sink("typed", columns, mapping={"mergeStrategy": "ledger", "systemColumns": True})
    for body in ('{"id": 1, "v": "first"}', '{"id": 2, "v": "b"}', '{"id": 1, "v": "second"}'):
        assert stream.post(body).status_code == 200
    assert stream.flush(wait=60)["imported"]
    assert stream.post('{"id": 2, "v": "later"}').status_code == 200
    assert stream.post('{"id": 3, "v": "c"}').status_code == 200
    assert stream.flush(wait=60)["imported"]
    rows = _rows(server, kind, pg, pg_url, "SELECT id, v, _offset, _op FROM TABLE ORDER BY id")
    assert rows == [(1, "first", 0, "+A"), (2, "b", 1, "+A"), (3, "c", 2, "+A")]
