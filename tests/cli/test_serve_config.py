"""The options of ``serve`` against slow and hostile clients, from flags and environment."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import urllib.parse
from typing import Any

import pytest

from pushstream.config import ServerConfig, load_config
from pushstream.errors import ConfigError
from serverprocess import PUSHSTREAM
from streamclient import Stream, table_rows


def test_defaults() -> None:
    config = load_config({})
    assert (config.body_timeout, config.idle_timeout, config.max_ingest_requests) == (60.0, 75.0, 1024)
    # By the target's kind (see pushstream.coordinator.pipeline.default_import_concurrency).
    assert config.import_concurrency is None


def test_environment_and_flags() -> None:
    env = {"PUSHSTREAM_BODY_TIMEOUT": "2.5", "PUSHSTREAM_IDLE_TIMEOUT": "9", "PUSHSTREAM_MAX_INGEST_REQUESTS": "7"}
    config = load_config(env)
    assert (config.body_timeout, config.idle_timeout, config.max_ingest_requests) == (2.5, 9.0, 7)
    assert load_config(env, body_timeout=4.0).body_timeout == 4.0
    assert ServerConfig.from_json(config.to_json()) == config
    config = load_config({"PUSHSTREAM_IMPORT_CONCURRENCY": "3"})
    assert config.import_concurrency == 3
    assert load_config({"PUSHSTREAM_IMPORT_CONCURRENCY": "3"}, import_concurrency=2).import_concurrency == 2
    assert ServerConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUSHSTREAM_BODY_TIMEOUT": "soon"}, "PUSHSTREAM_BODY_TIMEOUT must be a number of seconds"),
        ({"PUSHSTREAM_IDLE_TIMEOUT": "0"}, "idle_timeout must be a positive number of seconds"),
        ({"PUSHSTREAM_MAX_INGEST_REQUESTS": "0"}, "max_ingest_requests must be a positive integer"),
        ({"PUSHSTREAM_IMPORT_CONCURRENCY": "0"}, "import_concurrency must be a positive integer"),
        ({"PUSHSTREAM_IMPORT_CONCURRENCY": "many"}, "PUSHSTREAM_IMPORT_CONCURRENCY must be an integer"),
    ],
)
def test_invalid_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_help_names_the_options() -> None:
    result = subprocess.run([*PUSHSTREAM, "serve", "--help"], capture_output=True, text=True, check=True)
    for option in ("--body-timeout", "--idle-timeout", "--max-ingest-requests", "--import-concurrency"):
        assert option in result.stdout


def test_front_defaults_to_guarded_and_is_checked() -> None:
    assert load_config({}).front == "guarded"
    assert load_config({"PUSHSTREAM_FRONT": "direct"}).front == "direct"
    with pytest.raises(ConfigError, match='front must be one of guarded, direct, found "fast"'):
        load_config({"PUSHSTREAM_FRONT": "fast"})


def test_direct_front_serves_the_api_and_ingest_and_refuses_short_bodies(server_factory: Any) -> None:
    """``--front direct`` (behind a buffering proxy): the WSGI server calls the app;
    a body shorter than its Content-Length is still never stored."""
    server = server_factory(args=("--front", "direct"))
    stream = Stream(server).create()
    stream.sink("rows", [{"type": "body", "name": "body"}])
    assert stream.post('{"a": 1}').status_code == 200
    host, port, path = _split(stream.url)
    with socket.create_connection((host, port), timeout=10) as conn:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        conn.sendall(head.encode() + b'{"cut": ')
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                answer += chunk
    assert b" 200 " not in answer.split(b"\r\n", 1)[0]
    stream.flush()
    assert table_rows(server.data_dir, "in.c-test.rows") == [('{"a": 1}',)]


def _split(url: str) -> tuple[str, int, str]:
    parsed = urllib.parse.urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    return parsed.hostname, parsed.port, parsed.path
