"""The exact request shapes the Kafka Connect HTTP Sink connector sends with the
configurations of docs/kafka.md."""

from __future__ import annotations

import json

from serverprocess import ServerProcess
from streamclient import Stream, local_rows

COLUMNS = [
    {"type": "path", "name": "order", "path": "order_id", "rawString": True},
    {"type": "path", "name": "total", "path": "total"},
]
RECORDS = [{"order_id": f"o-{i}", "total": i * 1.5, "items": [i]} for i in range(5)]


def test_one_record_per_request(server: ServerProcess) -> None:
    stream = Stream(server).create()
    stream.sink("orders", COLUMNS)
    for record in RECORDS:
        # request.body.format=json, batch.max.size=1: the record value as the body.
        response = stream.post(json.dumps(record, separators=(",", ":")), {"Content-Type": "application/json"})
        assert (response.status_code, response.text) == (200, "OK")
    assert local_rows(server.data_dir, "orders") == [[f"o-{i}", json.dumps(i * 1.5)] for i in range(5)]


def test_ndjson_batches(server: ServerProcess) -> None:
    stream = Stream(server).create()
    stream.sink("orders", COLUMNS)
    # batch.prefix="", batch.suffix="", batch.separator="\n": values joined, no trailing newline.
    body = "\n".join(json.dumps(r, separators=(",", ":")) for r in RECORDS)
    response = stream.post(body, {"Content-Type": "application/x-ndjson"})
    assert (response.status_code, response.text) == (200, "OK")
    assert local_rows(server.data_dir, "orders") == [[f"o-{i}", json.dumps(i * 1.5)] for i in range(5)]


def test_default_batch_options_make_one_array_event(server: ServerProcess) -> None:
    stream = Stream(server).create()
    stream.sink("raw", [{"type": "body", "name": "body"}])
    body = "[" + ",".join(json.dumps(r) for r in RECORDS[:2]) + "]"
    assert stream.post(body, {"Content-Type": "application/json"}).status_code == 200
    assert local_rows(server.data_dir, "raw") == [[body]]
