"""Helpers of the command-line tests: run ``pushstream`` commands against a real
server (in-process through click's runner, or as a subprocess), set up sources and
sinks through the API, and read what reached the tables."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from pushstream.cli import main
from serverprocess import ServerProcess

BASE = "/v1/branches/default/sources"
#: Columns of the sinks most tests use: the event's fields, as strings.
COLUMNS = [
    {"type": "path", "name": "id", "path": "id", "rawString": True},
    {"type": "path", "name": "name", "path": "name", "rawString": True},
]


def env_for(server: ServerProcess) -> dict[str, str]:
    return {"PUSHSTREAM_URL": server.url, "PUSHSTREAM_API_TOKEN": server.token}


def run_cli(server: ServerProcess | None, *args: str, input: bytes | str | None = None, **env: str) -> Result:
    """``pushstream ARGS`` in this process, with the server's URL and token in the environment."""
    environ = {**(env_for(server) if server else {}), **env}
    return CliRunner().invoke(main, list(args), input=input, env=environ, catch_exceptions=False)


def run_process(
    server: ServerProcess | None, *args: str, input: bytes | None = None, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """``python -m pushstream.cli ARGS`` as a subprocess (the console script's exit codes and pipes)."""
    environ = {**os.environ, **(env_for(server) if server else {}), **env}
    return subprocess.run(
        [sys.executable, "-m", "pushstream.cli", *args],
        input=input,
        capture_output=True,
        env=environ,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def wait_task(server: ServerProcess, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    deadline = time.monotonic() + 30
    while not task["isFinished"]:
        assert time.monotonic() < deadline, task
        time.sleep(0.01)
        task = server.request("GET", f"/v1/tasks/{task['taskId']}").json()
    assert task["status"] == "success", task
    return task


@dataclass
class Stream:
    """A source with one sink writing ``table``, made for one test."""

    server: ServerProcess
    source: str = field(default_factory=lambda: f"src-{uuid.uuid4().hex[:8]}")
    sink: str = "rows"
    table: str = ""

    def create(self, columns: list[dict[str, Any]] | None = None) -> Stream:
        self.table = self.table or f"in.c-cli.{self.source}"
        body = {"sourceId": self.source, "name": self.source, "type": "http"}
        wait_task(self.server, self.server.request("POST", BASE, json=body))
        table = {"type": "keboola", "tableId": self.table, "mapping": {"columns": columns or COLUMNS}}
        sink = {"sinkId": self.sink, "name": self.sink, "type": "table", "table": table}
        wait_task(self.server, self.server.request("POST", f"{BASE}/{self.source}/sinks", json=sink))
        return self

    def flush(self) -> dict[str, Any]:
        response = self.server.request("POST", f"{BASE}/{self.source}/flush?wait=60")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        assert result["imported"], result
        return result

    def received(self) -> int:
        """Records the sink has taken so far, on any level (statistics)."""
        path = f"{BASE}/{self.source}/sinks/{self.sink}/statistics/total"
        response = self.server.request("GET", path)
        assert response.status_code == 200, response.text
        return int(response.json()["total"]["recordsCount"])

    def rows(self) -> list[tuple[str, ...]]:
        """Rows of the table in import order (after :meth:`flush`); empty when there is no table."""
        path = self.server.data_dir / "tables.sqlite"
        if not path.exists():
            return []
        db = sqlite3.connect(path)
        try:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (self.table,)).fetchone()
            if not found:
                return []
            return [tuple(r) for r in db.execute(f'SELECT * FROM "{self.table}" ORDER BY rowid')]
        finally:
            db.close()


def ndjson(records: list[dict[str, Any]]) -> bytes:
    import orjson

    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": str(i), "name": f"person {i}"} for i in range(start, start + n)]


def as_rows(records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [(r["id"], r["name"]) for r in records]


class FakeServer:
    """A stand-in server on this machine: answers the API calls ``ingest`` makes for
    the source ``events`` and the given answers to ingest requests, one per request,
    then ``200 OK``. The source's ingest URL may point to another port (a server that
    went away)."""

    def __init__(self, answers: list[tuple[int, bytes]] | None = None, ingest_port: int | None = None) -> None:
        import http.server
        import threading

        self.answers = list(answers or [])
        self.bodies: list[bytes] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                import orjson

                if self.path.startswith(f"{BASE}/events/sinks"):
                    page = {"limit": 100, "totalCount": 1, "afterId": "", "lastId": "s"}
                    self._send(200, orjson.dumps({"sinks": [{"sinkId": "s"}], "page": page}))
                elif self.path == f"{BASE}/events":
                    url = f"http://127.0.0.1:{fake.ingest_port}/stream/1/events/secret"
                    self._send(200, orjson.dumps({"sourceId": "events", "type": "http", "http": {"url": url}}))
                else:
                    self._send(404, b'{"statusCode":404,"error":"stream.api.endpointNotFound","message":"no"}')

            def do_POST(self) -> None:
                fake.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                status, body = fake.answers.pop(0) if fake.answers else (200, b"OK")
                self._send(status, body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.ingest_port = ingest_port or self.port
        self.env = {"PUSHSTREAM_URL": f"http://127.0.0.1:{self.port}", "PUSHSTREAM_API_TOKEN": "t"}
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
