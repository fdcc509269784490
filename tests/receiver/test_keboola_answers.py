"""The receiver's answers as Keboola's receiver gives them, against a real
`pushstream serve`: CORS preflight, routing errors, unknown and disabled sources,
size limits of headers and bodies, and the branches of a verbose answer."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

import clustermode
from pushstream.config import ServerConfig, load_config
from pushstream.errors import ConfigError
from pushstream.wiring import open_catalog
from serverprocess import ServerProcess
from streamclient import BASE, Stream, local_rows

STATIC = [{"type": "body", "name": "body"}]
NO_SOURCE = {
    "statusCode": 404,
    "error": "stream.in.noSourceFound",
    "message": "The specified combination of projectID, sourceID and secret was not found.",
}
ROUTE_NOT_FOUND = {
    "statusCode": 404,
    "error": "stream.in.routeNotFound",
    "message": "Not found, please send data using POST /stream/<projectID>/<sourceID>/<secret>",
}


@pytest.fixture
def stream(server: ServerProcess) -> Stream:
    stream = Stream(server).create()
    stream.sink("a", STATIC)
    return stream


def _ingest_url(
    stream: Stream, project: str | None = None, source: str | None = None, secret: str | None = None
) -> str:
    base, project_id, source_id, source_secret = stream.url.rsplit("/", 3)
    return f"{base}/{project or project_id}/{source or source_id}/{secret or source_secret}"


def test_options_is_a_cors_preflight(stream: Stream) -> None:
    for url in (stream.url, _ingest_url(stream, source="unknown")):
        response = requests.options(url, headers={"Origin": "https://example.com"}, timeout=10)
        assert response.status_code == 200
        assert response.content == b""
        # Header names are case-insensitive (granian sends them in lower case).
        ours = {
            k.lower(): v for k, v in response.headers.items() if k.lower() not in ("date", "server", "content-length")
        }
        assert ours == {
            "allow": "OPTIONS, POST",
            "access-control-allow-methods": "OPTIONS, POST",
            "access-control-allow-headers": "*",
            "access-control-expose-headers": "*",
            "access-control-allow-origin": "*",
        }
        assert response.headers.get("Content-Length", "0") == "0"


@pytest.mark.parametrize("project", ["foo", "1x", "1.0", "١"])
def test_a_project_id_that_is_no_number_is_a_bad_request(stream: Stream, project: str) -> None:
    response = stream.post("{}", url=_ingest_url(stream, project=project))
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "error": "stream.in.badRequest",
        "message": f'Invalid project ID "{project}".',
    }


@pytest.mark.parametrize("project", ["01", "+1", "2", "-1", "99999999999999999999999"])
def test_another_project_or_this_one_written_differently_is_not_found(
    server: ServerProcess, stream: Stream, project: str
) -> None:
    response = stream.post("{}", url=_ingest_url(stream, project=project))
    assert response.status_code == 404
    assert response.json() == NO_SOURCE
    assert local_rows(server.data_dir) == []


def test_unknown_source_or_secret(stream: Stream) -> None:
    for url in (_ingest_url(stream, source="nope"), _ingest_url(stream, secret="x" * 48)):
        response = stream.post("{}", url=url)
        assert response.status_code == 404
        assert response.json() == NO_SOURCE
        assert response.headers["Content-Type"] == "application/json"


def test_a_disabled_source(stream: Stream) -> None:
    stream.wait_task(stream.server.request("PUT", f"{BASE}/events/disable"))
    response = stream.post("{}")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "error": "stream.in.disabledSource",
        "message": "The specified source is disabled in all branches.",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/stream"),
        ("POST", "/stream/"),
        ("POST", "/stream/1"),
        ("POST", "/stream/1/events"),
        ("POST", "/stream/1/events/"),
        ("POST", "/stream/1//secret"),
        ("POST", "/stream/1/events/secret/extra"),
        ("GET", "/stream/foo"),
        ("OPTIONS", "/stream/1/events"),
    ],
)
def test_paths_that_are_no_ingest_route(server: ServerProcess, method: str, path: str) -> None:
    response = requests.request(method, server.url + path, data=b"{}", timeout=10)
    assert response.status_code == 404
    assert response.json() == ROUTE_NOT_FOUND


def test_the_api_keeps_its_own_not_found(server: ServerProcess) -> None:
    for path in ("/streams", "/v1/nope"):
        response = requests.post(server.url + path, data=b"{}", timeout=10)
        assert response.status_code == 404
        assert response.json()["error"] == "stream.api.endpointNotFound"


def test_a_body_over_the_limit(server_factory: Any) -> None:
    server = server_factory(args=("--max-record-size", "1KB"))
    stream = Stream(server).create()
    stream.sink("a", STATIC)
    response = stream.post("x" * 1025, {"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert response.json() == {
        "statusCode": 413,
        "error": "stream.in.bodyTooLarge",
        "message": 'Request body size is over the maximum "1024B".',
    }


def test_a_one_megabyte_header_gets_an_answer(server: ServerProcess, stream: Stream) -> None:
    """The default limit is 64KB; the HTTP server reads heads large enough to answer."""
    response = stream.post("{}", {"Content-Type": "application/json", "X-Big": "x" * (1 << 20)})
    assert response.status_code == 413
    assert response.json() == {
        "statusCode": 413,
        "error": "stream.in.headerTooLarge",
        "message": 'Request header size is over the maximum "65536B".',
    }
    assert local_rows(server.data_dir) == []
    assert stream.post("{}").status_code == 200


def _raw_post(server: ServerProcess, path: str, header_lines: list[str]) -> tuple[int, bytes]:
    """A request whose every header line is given (the limit counts ``Name: value\\r\\n``)."""
    head = f"POST {path} HTTP/1.1\r\n" + "".join(line + "\r\n" for line in header_lines) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"{}")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_the_header_limit_is_exact(server_factory: Any) -> None:
    server = server_factory(args=("--max-header-size", "1KB"))
    stream = Stream(server).create()
    stream.sink("a", STATIC)
    path = stream.url.split(str(server.port), 1)[1]
    fixed = ["Host: 127.0.0.1", "Content-Type: application/json", "Content-Length: 2", "Connection: close"]
    used = sum(len(line) + 2 for line in fixed)
    pad = "X-Pad: "
    fits = [*fixed, pad + "x" * (1024 - used - len(pad) - 2)]
    assert sum(len(line) + 2 for line in fits) == 1024
    assert _raw_post(server, path, fits) == (200, b"OK")
    status, body = _raw_post(server, path, [*fixed, pad + "x" * (1024 - used - len(pad) - 1)])
    assert status == 413
    assert body == (
        b'{"statusCode":413,"error":"stream.in.headerTooLarge",'
        b'"message":"Request header size is over the maximum \\"1024B\\"."}'
    )
    assert len(local_rows(server.data_dir, "a")) == 1


def test_verbose_answers_list_every_branch(server_factory: Any, tmp_path: Path) -> None:
    """A source in two branches under one secret: the branch without an enabled sink is listed as such."""
    data_dir = tmp_path / "branches"
    first = server_factory(data_dir)
    stream = Stream(first).create()
    stream.sink("a", STATIC)
    first.stop()
    # The same source in a second branch (made the default one), without sinks.
    second = server_factory(data_dir, args=("--default-branch-id", "2"))
    Stream(second).create()
    second.stop()
    # PUSHSTREAM_TEST_CLUSTER=1: the servers' catalog is in PostgreSQL.
    catalog = open_catalog(ServerConfig(data_dir=data_dir, default_branch_id=2, cluster=clustermode.url_for(data_dir)))
    try:
        with catalog.transaction() as tx:
            main, other = tx.get_source(1, "events"), tx.get_source(2, "events")
            assert main is not None and other is not None
            tx.put_source(replace(other, secret=main.secret))
    finally:
        catalog.close()
    second.start()
    url = stream.url.replace(f":{first.port}/", f":{second.port}/")
    response = Stream(second).post("{}", url=url, verbose=True)
    assert response.status_code == 200
    assert response.json() == {
        "statusCode": 200,
        "message": "Successfully written to 1/1 sinks.",
        "sources": [
            {
                "projectId": 1,
                "sourceId": "events",
                "branchId": 1,
                "statusCode": 200,
                "message": "Successfully written to 1/1 sinks.",
                "sinks": [{"sinkId": "a", "statusCode": 200, "message": "processed"}],
            },
            {
                "projectId": 1,
                "sourceId": "events",
                "branchId": 2,
                "statusCode": 200,
                "message": "No enabled sink found.",
                "sinks": [],
            },
        ],
    }


def test_the_header_limit_is_configured_like_the_body_limits(tmp_path: Path) -> None:
    config = load_config(env={"PUSHSTREAM_MAX_HEADER_SIZE": "2KB"}, data_dir=tmp_path)
    assert config.max_header_size == 2048
    assert ServerConfig().max_header_size == 65536
    with pytest.raises(ConfigError, match="max_header_size must be at most 1MB"):
        ServerConfig(max_header_size=(1 << 20) + 1)
