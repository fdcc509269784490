"""Typed tables from the command line (issue 15): ``sinks create`` flags make the exact
API JSON, ``sinks show`` shows them, and ``ingest`` sends CSV values of typed columns
(``--schema`` or the sinks' types) as typed JSON — asserted on what reached a real
server (the ``body`` column holds the JSON the client posted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from clitest import BASE, Stream, ndjson, run_cli, wait_task

from pushstream.client.csv_types import CsvTypes, parse_schema
from pushstream.client.errors import InputError, UsageError
from pushstream.client.inputs import prepare_inputs
from serverprocess import ServerProcess

DATA_TYPES = "string, integer, number, boolean, timestamp, date, json"


def _sink(server: ServerProcess, source: str, sink: str) -> dict[str, Any]:
    response = server.request("GET", f"{BASE}/{source}/sinks/{sink}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_a_typed_sink(cli_server: ServerProcess) -> None:
    stream = Stream(cli_server).create()
    result = run_cli(
        cli_server, "sinks", "create", stream.source, "trips", "--table", "in.c-geo.trips",
        "--column", "trip:path:id:integer",
        "--column", "t:path::timestamp",
        "--column", "lat:path:pos.lat:NUMBER",
        "--column", "at:datetime:timestamp",
        "--column", "cost:template:std.format('%d:%d', [Body('a'), Body('b')])",
        "--column", "raw:body",
        "--column", "tags:path",
        "--type", "cost=string", "--type", "tags=json", "--type", "lat=number",
        "--primary-key", "trip", "--not-null", "t", "--not-null", "trip",
        "--event-time", "t", "--merge", "ledger", "--system-columns",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _sink(cli_server, stream.source, "trips")["table"] == {
        "type": "keboola",
        "tableId": "in.c-geo.trips",
        "mapping": {
            "columns": [
                {
                    "type": "path",
                    "name": "trip",
                    "primaryKey": True,
                    "path": "id",
                    "dataType": "integer",
                    "nullable": False,
                },
                {"type": "path", "name": "t", "path": "t", "dataType": "timestamp", "nullable": False},
                {"type": "path", "name": "lat", "path": "pos.lat", "dataType": "number"},
                {"type": "datetime", "name": "at", "dataType": "timestamp"},
                {
                    "type": "template",
                    "name": "cost",
                    "template": {"language": "jsonnet", "content": "std.format('%d:%d', [Body('a'), Body('b')])"},
                    "dataType": "string",
                },
                {"type": "body", "name": "raw"},
                {"type": "path", "name": "tags", "path": "tags", "dataType": "json"},
            ],
            "eventTimeColumn": "t",
            "mergeStrategy": "ledger",
            "systemColumns": True,
        },
    }
    lines = result.stdout.splitlines()
    assert lines[9:12] == ["merge:       ledger", "event time:  t", "system:      _offset, _op, _system_time"]
    assert result.stdout.endswith(
        "┌──────┬──────────┬─────────────────────┬─────┬─────────────────────────────────────────────┐\n"
        "│ name │ type     │ data type           │ key │ details                                     │\n"
        "├──────┼──────────┼─────────────────────┼─────┼─────────────────────────────────────────────┤\n"
        "│ trip │ path     │ integer, not null   │ yes │ id                                          │\n"
        "│ t    │ path     │ timestamp, not null │     │ t                                           │\n"
        "│ lat  │ path     │ number              │     │ pos.lat                                     │\n"
        "│ at   │ datetime │ timestamp           │     │                                             │\n"
        "│ cost │ template │ string              │     │ std.format('%d:%d', [Body('a'), Body('b')]) │\n"
        "│ raw  │ body     │ string              │     │                                             │\n"
        "│ tags │ path     │ json                │     │ tags                                        │\n"
        "└──────┴──────────┴─────────────────────┴─────┴─────────────────────────────────────────────┘\n"
    )
    # show says the same, and the range of the imported event times; an untyped
    # sink shows no data types and the merge strategy in effect.
    shown_lines = run_cli(cli_server, "sinks", "show", stream.source, "trips").stdout.splitlines()
    assert shown_lines == [*lines[:11], "event range: none imported yet", *lines[11:]]
    shown = run_cli(cli_server, "sinks", "show", stream.source, "rows").stdout
    assert "merge:       append (default)\n" in shown and "data type" not in shown and "event time" not in shown


def test_show_prints_the_event_time_range(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create([{"type": "path", "name": "t", "path": "t", "dataType": "timestamp"}])
    run_cli(cli_server, "sinks", "create", stream.source, "timed", "--table", "in.c-cli.timed",
            "--column", "t:path::timestamp", "--event-time", "t")  # fmt: skip
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"t": "2026-11-30T12:00:00Z"}\n{"t": "2026-11-29T23:00:00+02:00"}\n{"t": null}\n')
    assert run_cli(cli_server, "ingest", stream.source, str(path)).exit_code == 0
    stream.flush()
    shown = run_cli(cli_server, "sinks", "show", stream.source, "timed").stdout
    assert "event time:  t\nevent range: 2026-11-29T21:00:00.000Z .. 2026-11-30T12:00:00.000Z\n" in shown
    # JSON output is the sink as the API has it.
    as_json = orjson.loads(run_cli(cli_server, "sinks", "show", stream.source, "timed", "-o", "json").stdout)
    assert as_json["sinkId"] == "timed" and "statistics" not in as_json


def test_flags_leave_out_what_is_not_asked_for(cli_server: ServerProcess) -> None:
    stream = Stream(cli_server).create()
    result = run_cli(
        cli_server, "sinks", "create", stream.source, "plain", "--table", "in.c-geo.plain",
        "--column", "id:path", "--primary-key", "id", "--column", "b:body",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _sink(cli_server, stream.source, "plain")["table"]["mapping"] == {
        "columns": [{"type": "path", "name": "id", "primaryKey": True, "path": "id"}, {"type": "body", "name": "b"}]
    }
    assert "merge:       upsert (default)\n" in result.stdout


def test_typed_sink_errors(cli_server: ServerProcess) -> None:
    stream = Stream(cli_server).create()
    base = ["sinks", "create", stream.source, "s", "--table", "in.c-x.typed"]
    cases = [
        (
            [*base, "--column", "a:path:x:float"],
            1,
            f'invalid --column "a:path:x:float": unknown data type "float", expected one of {DATA_TYPES}',
        ),
        (
            [*base, "--column", "a:datetime:when"],
            1,
            f'invalid --column "a:datetime:when": unknown data type "when", expected one of {DATA_TYPES}',
        ),
        (
            [*base, "--column", "a:path", "--type", "a=double"],
            1,
            f'invalid --type "a=double": unknown data type "double", expected one of {DATA_TYPES}',
        ),
        ([*base, "--column", "a:path", "--type", "a"], 1, 'invalid --type "a": expected NAME=DATATYPE'),
        ([*base, "--column", "a:path", "--type", "b=integer"], 1, "--type names no column: b"),
        (
            [*base, "--column", "a:path", "--type", "a=integer", "--type", "a=number"],
            1,
            '--type gives column "a" two data types: integer and number',
        ),
        (
            [*base, "--column", "a:path::integer", "--type", "a=number"],
            1,
            'column "a" is integer in --column and number in --type',
        ),
        ([*base, "--column", "a:path", "--not-null", "b"], 1, "--not-null names no column: b"),
        ([*base, "--column", "a:path", "--event-time", "b"], 1, "--event-time names no column: b"),
        ([*base, "--column", "a:path", "--merge", "merge"], 1, "'merge' is not one of 'append', 'upsert', 'ledger'"),
        # The API's checks, through the client.
        (
            [*base, "--column", "a:path", "--event-time", "a"],
            3,
            '"body.table.mapping.eventTimeColumn" must name a column of dataType timestamp, found "a" of dataType '
            "string. (400 stream.api.badRequest)",
        ),
        (
            [*base, "--column", "a:path", "--primary-key", "a", "--merge", "append"],
            3,
            '"body.table.mapping.mergeStrategy": mergeStrategy append takes no primary key, found primaryKey on '
            'column "a". (400 stream.api.badRequest)',
        ),
        (
            [*base, "--column", "_op:path", "--system-columns"],
            3,
            'Column name "_op" is reserved for the system column "_op"',
        ),
    ]
    for args, code, message in cases:
        result = run_cli(cli_server, *args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    assert [s["sinkId"] for s in cli_server.request("GET", f"{BASE}/{stream.source}/sinks").json()["sinks"]] == ["rows"]


# ingest: typed CSV.

CSV = (
    "t,long,lat,n,ok,d,s,j\n"
    '2024-05-01T12:00:00Z,13.4050,52.52,7,true,2024-05-01,x,"{""a"": [1, 2]}"\n'
    "1714564800.25,-0.5,1e3,-12,FALSE,2024-02-29,,null\n"
    ",,,,,,,\n"
)
SCHEMA = "t TIMESTAMP, long DOUBLE, lat double, n BIGINT, ok BOOLEAN, d DATE, s STRING, j JSON"
TYPED_RECORDS = [
    {
        "t": "2024-05-01T12:00:00Z",
        "long": 13.4050,
        "lat": 52.52,
        "n": 7,
        "ok": True,
        "d": "2024-05-01",
        "s": "x",
        "j": {"a": [1, 2]},
    },
    {"t": 1714564800.25, "long": -0.5, "lat": 1e3, "n": -12, "ok": False, "d": "2024-02-29", "s": "", "j": None},
    {"t": None, "long": None, "lat": None, "n": None, "ok": None, "d": None, "s": "", "j": None},
]
# The JSON the client posts: numbers as written in the CSV.
TYPED_BODIES = [
    '{"t":"2024-05-01T12:00:00Z","long":13.4050,"lat":52.52,"n":7,"ok":true,"d":"2024-05-01","s":"x",'
    '"j":{"a": [1, 2]}}',
    '{"t":1714564800.25,"long":-0.5,"lat":1e3,"n":-12,"ok":false,"d":"2024-02-29","s":"","j":null}',
    '{"t":null,"long":null,"lat":null,"n":null,"ok":null,"d":null,"s":"","j":null}',
]


def test_ingest_csv_with_a_schema(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create([{"type": "body", "name": "body"}])
    path = tmp_path / "typed.csv"
    path.write_text(CSV)
    result = run_cli(cli_server, "ingest", "--parallel", "1", stream.source, str(path), "--schema", SCHEMA)
    assert result.exit_code == 0, result.output
    assert "ingested 3 records" in result.stderr
    stream.flush()
    assert stream.rows() == [(body,) for body in TYPED_BODIES]
    assert [orjson.loads(body) for body in TYPED_BODIES] == TYPED_RECORDS


def test_schema_columns_not_named_stay_strings(cli_server: ServerProcess, tmp_path: Path) -> None:
    # A sink types "n", but --schema wins: "n" is not named there, so it stays a string.
    stream = Stream(cli_server).create(
        [{"type": "path", "name": "n", "path": "n", "dataType": "integer"}, {"type": "body", "name": "body"}]
    )
    path = tmp_path / "typed.csv"
    path.write_text("n,qty,price\n7,3,2.5\n")
    result = run_cli(cli_server, "ingest", stream.source, str(path), "--schema", "qty int, price Float")
    assert result.exit_code == 0, result.output
    stream.flush()
    assert [row[-1] for row in stream.rows()] == ['{"n":"7","qty":3,"price":2.5}']


def test_ingest_csv_typed_by_the_sinks(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create(
        [
            {"type": "path", "name": "total", "path": "total", "dataType": "number"},
            {"type": "path", "name": "paid", "path": "paid", "dataType": "boolean"},
            # Not a top-level key: no CSV column is typed by it.
            {"type": "path", "name": "nested", "path": "order.qty", "dataType": "integer", "defaultValue": "0"},
            {"type": "path", "name": "id", "path": "id"},
            {"type": "body", "name": "body"},
        ]
    )
    # A second, disabled sink with another type for "total" does not count.
    table = {
        "type": "keboola",
        "tableId": f"{stream.table}-other",
        "mapping": {"columns": [{"type": "path", "name": "total", "path": "total", "dataType": "string"}]},
    }
    other = {"sinkId": "other", "name": "other", "type": "table", "table": table}
    wait_task(cli_server, cli_server.request("POST", f"{BASE}/{stream.source}/sinks", json=other))
    wait_task(cli_server, cli_server.request("PUT", f"{BASE}/{stream.source}/sinks/other/disable"))
    records = [
        {"id": "1", "total": 49.28, "paid": True, "order.qty": "2"},
        {"id": "2", "total": None, "paid": False, "order.qty": ""},
    ]
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text("id,total,paid,order.qty\n1,49.28,true,2\n2,,false,\n")
    ndjson_path = tmp_path / "orders.ndjson"
    ndjson_path.write_bytes(ndjson(records))
    result = run_cli(cli_server, "ingest", "--parallel", "1", stream.source, str(csv_path), str(ndjson_path))
    assert result.exit_code == 0, result.output
    stream.flush()
    rows = stream.rows()
    # CSV and NDJSON of the same data: the same rows (the body is the JSON posted).
    assert rows[:2] == rows[2:]
    assert [row[-1] for row in rows[:2]] == [orjson.dumps(r).decode() for r in records]


def test_ndjson_is_not_changed_by_typed_sinks(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create(
        [{"type": "path", "name": "n", "path": "n", "dataType": "integer"}, {"type": "body", "name": "body"}]
    )
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'{"n": "7"}\n')
    result = run_cli(cli_server, "ingest", stream.source, str(path))
    assert result.exit_code == 0, result.output
    stream.flush()
    assert [row[-1] for row in stream.rows()] == ['{"n": "7"}']


def test_two_sinks_that_disagree_stop_ingest(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create([{"type": "path", "name": "q", "path": "qty", "dataType": "integer"}])
    table = {
        "type": "keboola",
        "tableId": f"{stream.table}-b",
        "mapping": {"columns": [{"type": "path", "name": "amount", "path": "qty", "dataType": "number"}]},
    }
    sink = {"sinkId": "b", "name": "b", "type": "table", "table": table}
    wait_task(cli_server, cli_server.request("POST", f"{BASE}/{stream.source}/sinks", json=sink))
    path = tmp_path / "a.csv"
    path.write_text("qty\n1\n")
    # An NDJSON input before it is not sent either.
    first = tmp_path / "first.ndjson"
    first.write_text('{"qty": 1}\n')
    result = run_cli(cli_server, "ingest", stream.source, str(first), str(path))
    assert result.exit_code == 1
    assert result.stderr == (
        f'Error: {path}: CSV column "qty" has two data types: number in sink "b" column "amount" and integer in '
        'sink "rows" column "q"; give the column\'s type with --schema\n'
    )
    assert stream.received() == 0
    # NDJSON alone is not concerned.
    result = run_cli(cli_server, "ingest", stream.source, str(first))
    assert result.exit_code == 0, result.output
    # --schema settles it.
    result = run_cli(cli_server, "ingest", stream.source, str(path), "--schema", "qty BIGINT")
    assert result.exit_code == 0, result.output
    stream.flush()
    # The sink "rows" types its column "q" integer: the table has a native integer column.
    assert stream.rows() == [(1,), (1,)]


@pytest.mark.parametrize(
    ("schema", "content", "message"),
    [
        ("n BIGINT", "n\n1\n1.5\n", 'a.csv:3: column "n": cannot convert "1.5" to integer'),
        (
            "n BIGINT",
            "n\n9223372036854775808\n",
            'a.csv:2: column "n": cannot convert "9223372036854775808" to integer',
        ),
        ("x DOUBLE", "x\nabc\n", 'a.csv:2: column "x": cannot convert "abc" to number'),
        ("x DOUBLE", "x\nNaN\n", 'a.csv:2: column "x": cannot convert "NaN" to number'),
        ("x DOUBLE", "x\n1e400\n", 'a.csv:2: column "x": cannot convert "1e400" to number'),
        ("ok BOOL", "ok\nyes\n", 'a.csv:2: column "ok": cannot convert "yes" to boolean'),
        ("t TIMESTAMP", "t\n2024-13-01\n", 'a.csv:2: column "t": cannot convert "2024-13-01" to timestamp'),
        ("t TIMESTAMP", "t\n01/05/2024\n", 'a.csv:2: column "t": cannot convert "01/05/2024" to timestamp'),
        ("d DATE", "d\n2023-02-29\n", 'a.csv:2: column "d": cannot convert "2023-02-29" to date'),
        ("d DATE", "d\n2024-05-01T00:00:00Z\n", 'a.csv:2: column "d": cannot convert "2024-05-01T00:00:00Z" to date'),
        ("j JSON", 'j\n"{a: 1}"\n', 'a.csv:2: column "j": cannot convert "{a: 1}" to json'),
        # The line of a row is where it starts in the file.
        ("n INT", 'n,s\n1,"two\nlines"\nx,y\n', 'a.csv:4: column "n": cannot convert "x" to integer'),
        ("nope INT", "n\n1\n", 'a.csv:1: --schema names columns that are not in the header row: "nope"'),
    ],
)
def test_bad_typed_values_send_nothing(
    cli_server: ServerProcess, tmp_path: Path, schema: str, content: str, message: str
) -> None:
    stream = Stream(cli_server).create([{"type": "body", "name": "body"}])
    # An input before the bad one is not sent either.
    good = tmp_path / "good.ndjson"
    good.write_text('{"n": 1}\n')
    path = tmp_path / "a.csv"
    path.write_text(content)
    result = run_cli(cli_server, "ingest", stream.source, str(good), str(path), "--schema", schema)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {tmp_path}/{message}\n"
    assert stream.received() == 0


def test_schema_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("n\n1\n")
    cases = [
        ("n DECIMAL", 'invalid --schema: unknown type "DECIMAL" of column "n", expected one of STRING, TEXT, VARCHAR,'),
        ("n", 'invalid --schema item "n": expected NAME TYPE, e.g. "lat DOUBLE"'),
        (" , ", 'invalid --schema: expected NAME TYPE pairs separated by commas, e.g. "t TIMESTAMP, n BIGINT"'),
        ("n INT, n BIGINT", 'invalid --schema: column "n" is given twice'),
    ]
    for schema, message in cases:
        result = run_cli(None, "ingest", "--dry-run", "src", str(path), "--schema", schema)
        assert result.exit_code == 1, (schema, result.output)
        assert f"\nError: {message}" in result.stderr, result.stderr
    ndjson_path = tmp_path / "a.ndjson"
    ndjson_path.write_text('{"n": 1}\n')
    result = run_cli(None, "ingest", "--dry-run", "src", str(ndjson_path), "--schema", "n INT")
    assert result.exit_code == 1
    assert result.stderr.endswith("\nError: --schema types CSV input, and no input is CSV\n")


def test_dry_run_checks_typed_values(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("n\n1\nx\n")
    result = run_cli(None, "ingest", "--dry-run", "src", str(path), "--schema", "n INT")
    assert (result.exit_code, result.stderr) == (2, f'Error: {path}:3: column "n": cannot convert "x" to integer\n')


def test_the_translated_ndjson(tmp_path: Path) -> None:
    # The input side alone: what a typed CSV becomes, byte for byte.
    path = tmp_path / "a.csv"
    path.write_text(
        CSV
        + 'now,+1,.5,0,True,2024-01-01,s,"[1,\n2]"\n2024-05-01 12:00:00.123456789+02:00,5.,0,0,false,2024-01-01,s,1\n'
    )
    with prepare_inputs(
        [str(path)], csv_types=CsvTypes.from_schema(SCHEMA.replace("t TIMESTAMP", "t STRING"))
    ) as prepared:
        (item,) = prepared.inputs
        with item.open() as stream:
            lines = stream.read().decode().splitlines()
    assert lines[:2] == [body.replace('"t":1714564800.25', '"t":"1714564800.25"') for body in TYPED_BODIES[:2]]
    assert lines[2] == TYPED_BODIES[2].replace('"t":null', '"t":""')
    assert lines[3] == '{"t":"now","long":1.0,"lat":0.5,"n":0,"ok":true,"d":"2024-01-01","s":"s","j":[1,2]}'
    assert lines[4] == (
        '{"t":"2024-05-01 12:00:00.123456789+02:00","long":5.0,"lat":0,"n":0,"ok":false,"d":"2024-01-01","s":"s","j":1}'
    )
    with pytest.raises(InputError) as caught:
        prepare_inputs([str(path)], csv_types=CsvTypes.from_schema(SCHEMA))
    assert str(caught.value) == f'{path}:5: column "t": cannot convert "now" to timestamp'


def test_parse_schema() -> None:
    assert parse_schema("t TIMESTAMP, long DOUBLE, lat DOUBLE, n BIGINT, ok BOOLEAN, d DATE, s STRING") == {
        "t": "timestamp",
        "long": "number",
        "lat": "number",
        "n": "integer",
        "ok": "boolean",
        "d": "date",
        "s": "string",
    }
    assert parse_schema('`a b` int, "c,d" Json, e timestamptz, f number') == {
        "a b": "integer",
        "c,d": "json",
        "e": "timestamp",
        "f": "number",
    }
    with pytest.raises(UsageError):
        parse_schema("a INT b INT")


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        # The forms the core reads as timestamps pass as they are; numbers are epoch seconds.
        ("2024-05-01", '"2024-05-01"'),
        ("2024-05-01T12:00", '"2024-05-01T12:00"'),
        ("2024-05-01t12:00:00z", '"2024-05-01t12:00:00z"'),
        ("2024-05-01 12:00:00,5+0200", '"2024-05-01 12:00:00,5+0200"'),
        ("2024-05-01T12:00:00.1234567890-07", '"2024-05-01T12:00:00.1234567890-07"'),
        ("2024-02-29T23:59:59+23:59", '"2024-02-29T23:59:59+23:59"'),
        ("-1.5", "-1.5"),
        ("1714564800", "1714564800"),
        ("0001-01-01", '"0001-01-01"'),
        # CSV cannot tell a number from a string: digits are epoch seconds (the core reads
        # the string "20240501" as no timestamp, the number 20240501 as one).
        ("20240501", "20240501"),
    ],
)
def test_timestamps_the_core_reads(tmp_path: Path, text: str, sent: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f't\n"{text}"\n')
    with (
        prepare_inputs([str(path)], csv_types=CsvTypes.from_schema("t TIMESTAMP")) as prepared,
        prepared.inputs[0].open() as stream,
    ):
        assert stream.read() == f'{{"t":{sent}}}\n'.encode()


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60",
        "2024-05-01T12:00:60",
        "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:00+2",
        "2024-05-01T12",
        "2023-02-29",
        "0000-01-01",
        "2024-05-01Z",
        "+1714564800",
    ],
)
def test_timestamps_the_core_refuses(tmp_path: Path, text: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"t\n{text}\n")
    with pytest.raises(InputError) as caught:
        prepare_inputs([str(path)], csv_types=CsvTypes.from_schema("t TIMESTAMP"))
    assert str(caught.value) == f'{path}:2: column "t": cannot convert "{text}" to timestamp'
