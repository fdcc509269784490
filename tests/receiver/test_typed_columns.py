"""Typed columns end to end: a sink created through the API with ``dataType`` /
``nullable`` columns, records posted to a real ``pushstream serve``, and the exact
bytes of the local slice or the exact 400 answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serverprocess import ServerProcess
from streamclient import Stream

COLUMNS: list[dict[str, Any]] = [
    {"type": "path", "name": "id", "path": "id", "dataType": "integer", "nullable": False, "primaryKey": True},
    {"type": "path", "name": "qty", "path": "qty", "dataType": "integer"},
    {"type": "path", "name": "price", "path": "price", "dataType": "number"},
    {"type": "path", "name": "paid", "path": "paid", "dataType": "boolean"},
    {"type": "path", "name": "at", "path": "at", "dataType": "timestamp"},
    {"type": "path", "name": "day", "path": "day", "dataType": "date"},
    {"type": "path", "name": "extra", "path": "extra", "dataType": "json"},
    {"type": "path", "name": "note", "path": "note", "defaultValue": "-"},
]
NDJSON = {"Content-Type": "application/x-ndjson"}


def slice_bytes(data_dir: Path, sink_id: str) -> bytes:
    """The bytes of the sink's local slices (all nodes), in path order."""
    paths = sorted((data_dir / "local").glob(f"*/*/{sink_id}/*/*/slice-*.csv"))
    return b"".join(path.read_bytes() for path in paths)


def write_failed(sink_id: str, message: str) -> dict[str, Any]:
    """The receiver's answer when the only sink of the source refuses the request."""
    sink = {"sinkId": sink_id, "statusCode": 400, "error": "stream.in.badRequest", "message": message}
    source = {
        "projectId": 1,
        "sourceId": "events",
        "branchId": 1,
        "statusCode": 400,
        "error": "stream.in.writeFailed",
        "message": "Written to 0/1 sinks.",
        "sinks": [sink],
    }
    return {
        "statusCode": 400,
        "error": "stream.in.writeFailed",
        "message": "Written to 0/1 sinks.",
        "sources": [source],
    }


@pytest.fixture
def stream(server: ServerProcess) -> Stream:
    stream = Stream(server).create()
    stream.sink("orders", COLUMNS)
    return stream


def test_the_api_keeps_the_typed_definition(server: ServerProcess, stream: Stream) -> None:
    sink = server.request("GET", "/v1/branches/default/sources/events/sinks/orders").json()
    assert sink["table"]["mapping"]["columns"] == COLUMNS


def test_values_are_written_in_canonical_form(server: ServerProcess, stream: Stream) -> None:
    response = stream.post(
        '{"id": 1, "qty": "3", "price": 49.28, "paid": true, "at": "2024-05-01T14:00:00.5+02:00",'
        ' "day": "2024-02-29", "extra": {"b": [1, "x"], "a": null}, "note": "first"}'
    )
    assert (response.status_code, response.text) == (200, "OK")
    # Nulls and missing paths of typed columns are NULL (the empty field).
    response = stream.post('{"id": "2", "qty": null, "price": "1e3", "paid": "false", "at": 1714564800}')
    assert (response.status_code, response.text) == (200, "OK")
    assert slice_bytes(server.data_dir, "orders") == (
        b'"1","3","49.28","true","2024-05-01T12:00:00.500000Z","2024-02-29","{""b"":[1,""x""],""a"":null}",'
        b'"""first"""\n'
        b'"2","","1000.0","false","2024-05-01T12:00:00.000000Z","","","""-"""\n'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"id": 1, "qty": "abc"}', 'column "qty": cannot convert "abc" to integer'),
        ('{"id": 1, "qty": 1.5}', 'column "qty": cannot convert 1.5 to integer'),
        ('{"id": 1, "at": "2023-02-29T10:00:00Z"}', 'column "at": cannot convert "2023-02-29T10:00:00Z" to timestamp'),
        ('{"id": 1, "day": "01/05/2024"}', 'column "day": cannot convert "01/05/2024" to date'),
        ('{"id": null}', 'column "id": no value, the column is not nullable'),
        ('{"qty": 1}', 'column "id": no value, the column is not nullable'),
    ],
)
def test_a_bad_value_is_a_400(server: ServerProcess, stream: Stream, body: str, message: str) -> None:
    response = stream.post(body)
    assert response.status_code == 400
    assert response.json() == write_failed("orders", message)
    assert slice_bytes(server.data_dir, "orders") == b""


def test_a_batch_with_one_bad_record_is_refused_whole(server: ServerProcess, stream: Stream) -> None:
    response = stream.post('{"id": 1, "price": 2.5}\n{"id": 2, "price": "cheap"}\n{"id": 3}\n', NDJSON)
    assert response.status_code == 400
    assert response.json() == write_failed("orders", 'record 2: column "price": cannot convert "cheap" to number')
    assert slice_bytes(server.data_dir, "orders") == b""


def test_csv_and_ndjson_give_the_same_rows(server: ServerProcess, stream: Stream) -> None:
    # A CSV batch is records of strings: typed columns read "49.28" as 49.28.
    ndjson = (
        '{"id": 7, "qty": 10, "price": 49.28, "paid": true, "at": "2024-05-01T12:00:00Z", "day": "2024-05-01"}\n'
        '{"id": 8, "qty": -1, "price": 0.5, "paid": false, "at": "2024-05-01 12:00:00.123456789",'
        ' "day": "2000-02-29"}\n'
    )
    csv = (
        "id,qty,price,paid,at,day\n"
        "7,10,49.28,true,2024-05-01T12:00:00Z,2024-05-01\n"
        "8,-1,0.5,false,2024-05-01 12:00:00.123456789,2000-02-29\n"
    )
    assert stream.post(ndjson, NDJSON).status_code == 200
    assert stream.post(csv, {"Content-Type": "text/csv"}).status_code == 200
    rows = (
        b'"7","10","49.28","true","2024-05-01T12:00:00.000000Z","2024-05-01","","""-"""\n'
        b'"8","-1","0.5","false","2024-05-01T12:00:00.123456Z","2000-02-29","","""-"""\n'
    )
    assert slice_bytes(server.data_dir, "orders") == rows * 2
