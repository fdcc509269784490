"""``serve --access-log`` (JSON lines on stdout, the secret redacted), its absence by
default, errors counted without it, and a default start that does not warn."""

from __future__ import annotations

import time
from typing import Any

import orjson
import requests
from opstest import create_stream, sample, scrape

from serverprocess import ServerProcess


def access_lines(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            entry = orjson.loads(line)
            if "method" in entry:
                lines.append(entry)
    return lines


def test_access_log_lines(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--access-log",))
    source, url = create_stream(server)
    secret = url.rsplit("/", 1)[1]
    assert requests.post(url, json={"id": "1"}, timeout=30, headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    assert requests.post(url + "x", json={"id": "1"}, timeout=30).status_code == 404
    assert requests.get(f"{server.url}/health-check", timeout=30).status_code == 200
    deadline = time.monotonic() + 30
    while len([e for e in access_lines(server) if e["path"] == "/health-check"]) < 1 + 1:
        # The server's own start polls /health-check once at least; ours is the last one.
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    entries = access_lines(server)
    assert secret not in server.log()
    ingest = [e for e in entries if e["path"].startswith("/stream/")]
    assert [(e["method"], e["path"], e["status"]) for e in ingest] == [
        ("POST", f"/stream/1/{source}/[redacted]", 200),
        ("POST", f"/stream/1/{source}/[redacted]", 404),
    ]
    assert ingest[0]["bytes"] == 2  # "OK"
    assert ingest[1]["bytes"] == len(requests.post(url + "x", json={}, timeout=30).content)
    # Without --trust-proxy the forwarded address is not believed.
    assert {e["client"] for e in ingest} == {"127.0.0.1"}
    assert all(e["duration"] >= 0 for e in entries)
    assert set(entries[0]) == {"time", "method", "path", "status", "bytes", "duration", "client"}
    assert entries[0]["time"].endswith("Z")
    health = [e for e in entries if e["path"] == "/health-check"]
    assert health[-1]["status"] == 200
    assert health[-1]["bytes"] == 2


def test_trusted_proxy_client_ip(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--access-log", "--trust-proxy"))
    _, url = create_stream(server)
    headers = {"X-Forwarded-For": "10.1.2.3, 10.0.0.1"}
    assert requests.post(url, json={"id": "1"}, headers=headers, timeout=30).status_code == 200
    deadline = time.monotonic() + 30
    while not [e for e in access_lines(server) if e["path"].startswith("/stream/")] and time.monotonic() < deadline:
        time.sleep(0.05)
    ingest = [e for e in access_lines(server) if e["path"].startswith("/stream/")]
    assert [e["client"] for e in ingest] == ["10.1.2.3"]


def test_no_access_log_by_default_errors_still_counted(server_factory: Any) -> None:
    server: ServerProcess = server_factory()
    source, url = create_stream(server)
    assert requests.post(url + "x", json={"id": "1"}, timeout=30).status_code == 404
    assert requests.post(url, data=b"{", headers={"Content-Type": "application/json"}, timeout=30).status_code == 400
    samples = scrape(server)
    assert sample(samples, "pushstream_ingest_requests_total", source="", status="404") == 1
    assert sample(samples, "pushstream_ingest_requests_total", source=source, status="400") == 1
    assert access_lines(server) == []


def test_default_start_does_not_warn(server_factory: Any) -> None:
    for front in ("guarded", "direct"):
        server: ServerProcess = server_factory(args=("--front", front))
        levels = [orjson.loads(line)["level"] for line in server.log().splitlines() if line.startswith("{")]
        server.stop()
        assert "warning" not in levels, server.log()
