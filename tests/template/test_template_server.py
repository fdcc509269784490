"""Template semantics end to end, on a real `pushstream serve`: the rows and the
verbose answers of the receiver, and the API's test endpoint, for the cases of
Keboola's own template tests."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest

from serverprocess import ADMIN_TOKEN, ServerProcess
from streamclient import BASE, Stream, local_rows

UNSUPPORTED = (
    'cannot parse request body:\n- unsupported content type "", '
    "supported types: application/json and application/x-www-form-urlencoded"
)
DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def template(name: str, content: str) -> dict[str, Any]:
    return {"type": "template", "name": name, "template": {"language": "jsonnet", "content": content}}


def raw_post(server: ServerProcess, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
    """POSTs with exactly these headers (and Host, Content-Length); returns status and body."""
    lines = [("Host", f"127.0.0.1:{server.port}"), ("Content-Length", str(len(body))), *headers]
    lines.append(("Connection", "close"))
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def ingest_path(stream: Stream) -> str:
    return "/stream/" + stream.url.split("/stream/", 1)[1]


@pytest.fixture
def stream(server: ServerProcess) -> Stream:
    return Stream(server).create()


def test_rows_of_the_receiver(server: ServerProcess, stream: Stream) -> None:
    stream.sink("headers", [template("all", "HeaderStr()")])
    stream.sink("now", [template("now", "[Now(), Now('%Y-%m-%d')]")])
    headers = [("Content-Type", "application/vnd.api+json"), ("X-Header-1", "value1"), ("x-header-2", "value2")]
    assert raw_post(server, ingest_path(stream), headers, b'{"a": 1}') == (200, b"OK")
    [[header_str]] = local_rows(server.data_dir, "headers")
    assert json.loads(header_str) == (
        "Connection: close\nContent-Length: 8\nContent-Type: application/vnd.api+json\n"
        f"Host: 127.0.0.1:{server.port}\nX-Header-1: value1\nX-Header-2: value2\n"
    )
    [[now]] = local_rows(server.data_dir, "now")
    received, day = json.loads(now)
    assert DATETIME.fullmatch(received) and day == received[:10]


def test_verbose_answers_of_the_receiver(server: ServerProcess, stream: Stream) -> None:
    stream.sink("missing-header", [template("h", 'Header("x-header-3")')])
    stream.sink("missing-path", [template("p", 'Body("foo1.foo2")')])
    stream.sink("recursion", [template("r", "local f(x) = f(x); f(1)")])
    stream.sink("path", [template("p", 'Body("foo1")')])
    response = stream.post('{"foo1": {}}', {"Content-Type": "application/json", "X-Header-1": "v"}, verbose=True)
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "error": "stream.in.writeFailed",
        "message": "Written to 1/4 sinks.",
        "sources": [
            {
                "projectId": 1,
                "sourceId": "events",
                "branchId": 1,
                "statusCode": 400,
                "error": "stream.in.writeFailed",
                "message": "Written to 1/4 sinks.",
                "sinks": [
                    {
                        "sinkId": "missing-header",
                        "statusCode": 400,
                        "error": "stream.in.badRequest",
                        "message": 'column "h": header "X-Header-3" not found',
                    },
                    {
                        "sinkId": "missing-path",
                        "statusCode": 400,
                        "error": "stream.in.badRequest",
                        "message": 'column "p": path "foo1.foo2" not found in the body',
                    },
                    {"sinkId": "path", "statusCode": 200, "message": "processed"},
                    {
                        "sinkId": "recursion",
                        "statusCode": 400,
                        "error": "stream.in.badRequest",
                        "message": 'column "r": max stack frames exceeded.',
                    },
                ],
            }
        ],
    }
    assert local_rows(server.data_dir, "path") == [["{}"]]


def test_bodies_without_a_content_type_and_empty_bodies(server: ServerProcess, stream: Stream) -> None:
    stream.sink("raw", [template("s", "BodyStr()")])
    stream.sink("parsed", [template("b", "Body()")])
    status, body = raw_post(server, ingest_path(stream) + "?verbose=true", [], b"")
    assert status == 415
    sinks = json.loads(body)["sources"][0]["sinks"]
    assert sinks == [
        {
            "sinkId": "parsed",
            "statusCode": 415,
            "error": "stream.in.unsupportedContentType",
            "message": UNSUPPORTED,
        },
        {"sinkId": "raw", "statusCode": 200, "message": "processed"},
    ]
    assert local_rows(server.data_dir, "raw") == [['""']]
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    assert raw_post(server, ingest_path(stream), form, b"") == (200, b"OK")
    assert local_rows(server.data_dir, "parsed") == [["{}"]]


def test_the_api_test_endpoint(server: ServerProcess, stream: Stream) -> None:
    stream.sink("headers", [template("all", "HeaderStr()"), template("now", "[Now(), Now('%Y-%m-%d')]")])
    test_path = f"{BASE}/events/test"
    headers = [("X-StorageApi-Token", ADMIN_TOKEN), ("Content-Type", "application/json"), ("X-Header-1", "value1")]
    status, body = raw_post(server, test_path, headers, b"{}")
    assert status == 200, body
    [table] = json.loads(body)["tables"]
    [row] = table["rows"]
    header_str, now = (column["value"] for column in row["columns"])
    # The token is the caller's credential, not part of the event.
    assert json.loads(header_str) == (
        "Connection: close\nContent-Length: 2\nContent-Type: application/json\n"
        f"Host: 127.0.0.1:{server.port}\nX-Header-1: value1\n"
    )
    received, day = json.loads(now)
    assert DATETIME.fullmatch(received) and day == received[:10]


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        ('Header("x-header-3")', [("Content-Type", "application/json")], 'header "X-Header-3" not found'),
        ('Body("foo1.foo2")', [("Content-Type", "application/json")], 'path "foo1.foo2" not found in the body'),
        ("local f(x) = f(x); f(1)", [("Content-Type", "application/json")], "max stack frames exceeded."),
        ("Body()", [], UNSUPPORTED),
    ],
)
def test_the_api_test_endpoint_errors(
    server: ServerProcess, stream: Stream, content: str, headers: list[tuple[str, str]], message: str
) -> None:
    stream.sink("failing", [template("t", content)])
    status, body = raw_post(server, f"{BASE}/events/test", [("X-StorageApi-Token", ADMIN_TOKEN), *headers], b"{}")
    answer = json.loads(body)
    # The frame of the message belongs to the API; the reason is the template's.
    assert (400 <= status < 500, answer["statusCode"]) == (True, status)
    assert message in answer["message"], answer
