"""The ingest endpoint against a real `pushstream serve`: every response code, CORS,
verbose output, fan-out, batches, configuration changes, secret rotation."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from serverprocess import ServerProcess
from streamclient import BASE, Stream, local_rows

NOT_FOUND = {
    "statusCode": 404,
    "error": "stream.in.noSourceFound",
    "message": "The specified combination of projectID, sourceID and secret was not found.",
}
STATIC = [{"type": "body", "name": "body"}]
UNSUPPORTED = (
    'cannot parse request body:\n- unsupported content type "text/plain", '
    "supported types: application/json and application/x-www-form-urlencoded"
)
USER = [{"type": "path", "name": "user", "path": "user", "rawString": True}]


@pytest.fixture
def stream(server: ServerProcess) -> Stream:
    return Stream(server).create()


def test_one_record_is_acknowledged_after_it_is_on_disk(server: ServerProcess, stream: Stream) -> None:
    stream.sink(
        "all",
        [
            {"type": "uuid", "name": "id"},
            {"type": "datetime", "name": "at"},
            {"type": "ip", "name": "ip"},
            {"type": "headers", "name": "headers"},
            {"type": "body", "name": "body"},
            {"type": "path", "name": "user", "path": "user.name"},
        ],
    )
    before = time.time()
    response = stream.post('{"user": {"name": "Jan"}}', {"Content-Type": "application/json", "X-Trace": "t1"})
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    (row,) = local_rows(server.data_dir, "all")
    record_id, at, ip, headers, body, user = row
    assert uuid.UUID(record_id).version == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", at)
    assert abs(time.mktime(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone - before) < 5
    assert ip == "127.0.0.1"
    parsed_headers = json.loads(headers)
    assert parsed_headers["Content-Type"] == "application/json" and parsed_headers["X-Trace"] == "t1"
    assert list(parsed_headers) == sorted(parsed_headers)
    assert body == '{"user": {"name": "Jan"}}'
    assert user == '"Jan"'


def test_verbose_success(stream: Stream) -> None:
    stream.sink("a", STATIC)
    stream.sink("b", STATIC)
    response = stream.post("{}", verbose=True)
    assert response.status_code == 200
    assert response.json() == {
        "statusCode": 200,
        "message": "Successfully written to 2/2 sinks.",
        "sources": [
            {
                "projectId": 1,
                "sourceId": "events",
                "branchId": 1,
                "statusCode": 200,
                "message": "Successfully written to 2/2 sinks.",
                "sinks": [
                    {"sinkId": "a", "statusCode": 200, "message": "processed"},
                    {"sinkId": "b", "statusCode": 200, "message": "processed"},
                ],
            }
        ],
    }


def test_not_waiting_answers_202_accepted(stream: Stream) -> None:
    stream.sink("a", STATIC)
    stream.settings("a", **{"storage.level.local.encoding.sync.wait": False})
    response = stream.post("{}")
    assert (response.status_code, response.text) == (202, "OK")
    verbose = stream.post("{}", verbose=True).json()
    assert verbose["statusCode"] == 202
    assert verbose["sources"][0]["sinks"] == [{"sinkId": "a", "statusCode": 202, "message": "accepted"}]


def test_fan_out_with_one_failing_sink(server: ServerProcess, stream: Stream) -> None:
    stream.sink("raw", STATIC)
    stream.sink("user", USER)
    response = stream.post('{"nouser": 1}')
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "error": "stream.in.writeFailed",
        "message": "Written to 1/2 sinks.",
        "sources": [
            {
                "projectId": 1,
                "sourceId": "events",
                "branchId": 1,
                "statusCode": 400,
                "error": "stream.in.writeFailed",
                "message": "Written to 1/2 sinks.",
                "sinks": [
                    {"sinkId": "raw", "statusCode": 200, "message": "processed"},
                    {
                        "sinkId": "user",
                        "statusCode": 400,
                        "error": "stream.in.badRequest",
                        "message": 'column "user": path "user" not found in the body',
                    },
                ],
            }
        ],
    }
    assert local_rows(server.data_dir, "raw") == [['{"nouser": 1}']]
    assert local_rows(server.data_dir, "user") == []


@pytest.mark.parametrize(
    ("body", "headers", "status", "error", "message"),
    [
        ("{bad", {"Content-Type": "application/json"}, 400, "stream.in.badRequest", "malformed JSON body: "),
        ("user=x", {"Content-Type": "text/plain"}, 415, "stream.in.unsupportedContentType", UNSUPPORTED),
    ],
)
def test_body_errors_per_sink(
    server: ServerProcess, stream: Stream, body: str, headers: dict[str, str], status: int, error: str, message: str
) -> None:
    stream.sink("user", USER)
    response = stream.post(body, headers)
    assert response.status_code == status
    document = response.json()
    assert document["error"] == "stream.in.writeFailed"
    (sink,) = document["sources"][0]["sinks"]
    assert (sink["statusCode"], sink["error"]) == (status, error)
    assert sink["message"].startswith(message)
    assert local_rows(server.data_dir) == []


def test_form_bodies(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    response = stream.post("user=Jan+N%C3%A1k&x=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert local_rows(server.data_dir, "user") == [["Jan Nák"]]


def test_wrong_secret_source_or_project_are_the_same_404(stream: Stream) -> None:
    stream.sink("a", STATIC)
    base, _secret = stream.url.rsplit("/", 1)
    for url in (
        f"{base}/{'x' * 48}",
        stream.url.replace("/events/", "/nope/"),
        stream.url.replace("/stream/1/", "/stream/2/"),
    ):
        response = stream.post("{}", url=url)
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


def test_disabled_source(stream: Stream) -> None:
    stream.sink("a", STATIC)
    stream.wait_task(stream.server.request("PUT", f"{BASE}/events/disable"))
    response = stream.post("{}")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "error": "stream.in.disabledSource",
        "message": "The specified source is disabled in all branches.",
    }
    stream.wait_task(stream.server.request("PUT", f"{BASE}/events/enable"))
    assert stream.post("{}").status_code == 200


def test_no_enabled_sink_keeps_nothing(server: ServerProcess, stream: Stream) -> None:
    response = stream.post("{}")
    assert (response.status_code, response.text) == (200, "OK")
    stream.sink("a", STATIC)
    stream.wait_task(server.request("PUT", f"{BASE}/events/sinks/a/disable"))
    verbose = stream.post("{}", verbose=True)
    assert verbose.status_code == 200
    assert verbose.json() == {
        "statusCode": 200,
        "message": "No enabled sink found.",
        "sources": [
            {
                "projectId": 1,
                "sourceId": "events",
                "branchId": 1,
                "statusCode": 200,
                "message": "No enabled sink found.",
                "sinks": [],
            }
        ],
    }
    assert local_rows(server.data_dir) == []


def test_body_size_limits(server_factory: Any) -> None:
    server = server_factory(args=("--max-record-size", "1KB", "--max-batch-size", "4KB"))
    stream = Stream(server).create()
    stream.sink("a", STATIC)
    assert stream.post("x" * 1024, {"Content-Type": "text/plain"}).status_code == 200
    response = stream.post("x" * 1025, {"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert response.json() == {
        "statusCode": 413,
        "error": "stream.in.bodyTooLarge",
        "message": 'Request body size is over the maximum "1024B".',
    }
    ndjson = {"Content-Type": "application/x-ndjson"}
    assert stream.post("{}\n" * 1365, ndjson).status_code == 200
    too_big = stream.post("{}\n" * 1366, ndjson)
    assert (too_big.status_code, too_big.json()["message"]) == (413, 'Request body size is over the maximum "4096B".')
    # Chunked uploads (no Content-Length) are cut off at the limit too.
    chunked = requests.post(stream.url, data=iter([b"x" * 800, b"x" * 800]), headers={"Content-Type": "text/plain"})
    assert chunked.status_code == 413
    assert len(local_rows(server.data_dir, "a")) == 1 + 1365


def test_ndjson_and_csv_batches(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    response = stream.post('{"user":"a"}\n\n{"user":"b"}\r\n', {"Content-Type": "application/x-ndjson"}, verbose=True)
    assert response.status_code == 200, response.text
    assert response.json()["sources"][0]["sinks"] == [{"sinkId": "user", "statusCode": 200, "message": "processed"}]
    response = stream.post('user,other\nc,1\n"d, ""e""",2\n', {"Content-Type": "text/csv; charset=utf-8"})
    assert response.status_code == 200, response.text
    assert local_rows(server.data_dir, "user") == [["a"], ["b"], ["c"], ['d, "e"']]


def test_malformed_batch_line_rejects_the_whole_request(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    stream.sink("raw", STATIC)
    response = stream.post('{"user":"a"}\n{"user":"b"}\n{"user": oops}\n', {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 400
    document = response.json()
    assert document["error"] == "stream.in.badRequest"
    assert document["message"].startswith("line 3: malformed JSON: ")
    response = stream.post("user,x\na,1\nb\n", {"Content-Type": "text/csv"})
    assert response.json() == {
        "statusCode": 400,
        "error": "stream.in.badRequest",
        "message": "line 3: expected 2 fields like the header row, found 1",
    }
    assert local_rows(server.data_dir) == []


def test_a_failing_record_in_a_batch_drops_the_batch_for_that_sink(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    stream.sink("raw", STATIC)
    response = stream.post('{"user":"a"}\n{"x":1}\n', {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 400
    sinks = response.json()["sources"][0]["sinks"]
    assert sinks[1] == {
        "sinkId": "user",
        "statusCode": 400,
        "error": "stream.in.badRequest",
        "message": 'record 2: column "user": path "user" not found in the body',
    }
    assert local_rows(server.data_dir, "user") == []
    assert len(local_rows(server.data_dir, "raw")) == 2


def test_methods(stream: Stream) -> None:
    stream.sink("a", STATIC)
    response = requests.get(stream.url)
    assert response.status_code == 405
    assert response.json() == {
        "statusCode": 405,
        "error": "stream.in.methodNotAllowed",
        "message": 'Method "GET" is not allowed, use POST.',
    }
    assert response.headers["Allow"] == "OPTIONS, POST"


def test_secret_rotation_invalidates_the_old_url_at_once(stream: Stream) -> None:
    stream.sink("a", STATIC)
    old = stream.url
    assert stream.post("{}").status_code == 200
    rotated = stream.server.request("POST", f"{BASE}/events/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["http"]["url"]
    assert new != old
    assert stream.post("{}", url=old).json() == NOT_FOUND
    assert stream.post("{}", url=new).status_code == 200


def test_read_your_writes(server: ServerProcess, stream: Stream) -> None:
    """An event sent right after a task reports success is routed by the new configuration."""
    for i in range(5):
        stream.sink(f"s{i}", STATIC)
        assert stream.post(f'{{"n": {i}}}').status_code == 200
        # The new sink got the event sent right after its creation (and only that one).
        assert local_rows(server.data_dir, f"s{i}") == [[f'{{"n": {i}}}']]
    stream.wait_task(server.request("PUT", f"{BASE}/events/sinks/s0/disable"))
    stream.post('{"n": 9}')
    assert local_rows(server.data_dir, "s0") == [[f'{{"n": {i}}}'] for i in range(5)]
    assert local_rows(server.data_dir, "s1")[-1] == ['{"n": 9}']


def test_configuration_changes_under_load(server: ServerProcess, stream: Stream) -> None:
    """Sinks are added and changed while clients send: no request fails, every
    acknowledged event is kept, and a new mapping applies to later events."""
    stream.sink("base", STATIC)
    stop = threading.Event()
    acknowledged: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        i = offset
        session = requests.Session()
        while not stop.is_set():
            response = session.post(
                stream.url, data=json.dumps({"n": i, "user": "u"}), headers={"Content-Type": "application/json"}
            )
            if response.status_code == 200:
                with lock:
                    acknowledged.append(i)
            else:
                failures.append(f"{response.status_code} {response.text}")
            i += 8

    clients = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for c in clients:
        c.start()
    time.sleep(0.3)
    stream.sink("late", USER)
    time.sleep(0.2)
    table = {
        "table": {"tableId": "in.c-test.base2", "mapping": {"columns": [{"type": "path", "name": "n", "path": "n"}]}}
    }
    stream.wait_task(server.request("PATCH", f"{BASE}/events/sinks/base", json=table))
    marker = max(acknowledged)
    time.sleep(0.3)
    stop.set()
    for c in clients:
        c.join()
    assert failures == []
    rows = local_rows(server.data_dir, "base")
    bodies = [json.loads(r[0])["n"] for r in rows if r[0].startswith("{")]
    numbers = [int(r[0]) for r in rows if not r[0].startswith("{")]
    assert sorted(bodies + numbers) == sorted(acknowledged)
    assert numbers, "the new mapping never applied"
    assert len(local_rows(server.data_dir, "late")) > 0
    assert marker in acknowledged


def test_files_and_statistics_follow(server: ServerProcess, stream: Stream, tmp_path: Path) -> None:
    stream.sink("a", STATIC)
    for i in range(3):
        stream.post(f'{{"i": {i}}}')
    deadline = time.monotonic() + 5
    while stream.statistics("a")["total"]["recordsCount"] != 3:
        assert time.monotonic() < deadline, stream.statistics("a")
        time.sleep(0.1)
    local = stream.statistics("a")["levels"]["local"]
    assert local["recordsCount"] == 3 and local["uncompressedSize"] == sum(len(f'"{{""i"": {i}}}"\n') for i in range(3))
