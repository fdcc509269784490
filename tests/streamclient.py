"""Helpers of the end-to-end tests: configure a running server through the API,
send events, and read what landed on each storage level."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import requests
import zstandard

from pushstream import parse_csv
from serverprocess import ServerProcess

BASE = "/v1/branches/default/sources"
JSON = {"Content-Type": "application/json"}


class Stream:
    """A source with sinks on a running server."""

    def __init__(self, server: ServerProcess, source_id: str = "events") -> None:
        self.server = server
        self.source_id = source_id
        self.url = ""

    def wait_task(self, response: requests.Response, *, ok: bool = True) -> dict[str, Any]:
        assert response.status_code == 202, (response.status_code, response.text)
        task: dict[str, Any] = response.json()
        deadline = time.monotonic() + 30
        while not task["isFinished"]:
            assert time.monotonic() < deadline, task
            time.sleep(0.01)
            task = self.server.request("GET", f"/v1/tasks/{task['taskId']}").json()
        if ok:
            assert task["status"] == "success", task
        return task

    def create(self, **settings: Any) -> Stream:
        body: dict[str, Any] = {"sourceId": self.source_id, "name": self.source_id, "type": "http"}
        self.wait_task(self.server.request("POST", BASE, json=body))
        if settings:
            self.settings(**settings)
        self.refresh_url()
        return self

    def refresh_url(self) -> str:
        source = self.server.request("GET", f"{BASE}/{self.source_id}").json()
        self.url = source["http"]["url"]
        return self.url

    def settings(self, sink_id: str | None = None, **values: Any) -> None:
        path = f"{BASE}/{self.source_id}" + (f"/sinks/{sink_id}" if sink_id else "") + "/settings"
        patch = {"settings": [{"key": k.replace("__", "."), "value": v} for k, v in values.items()]}
        self.wait_task(self.server.request("PATCH", path, json=patch))

    def sink(
        self,
        sink_id: str,
        columns: list[dict[str, Any]],
        table_id: str | None = None,
        mapping: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        """Creates a sink; ``mapping`` adds to its ``table.mapping`` (``mergeStrategy``, ...)."""
        table = {
            "type": "keboola",
            "tableId": table_id or f"in.c-test.{sink_id}",
            "mapping": {"columns": columns, **(mapping or {})},
        }
        body = {"sinkId": sink_id, "name": sink_id, "type": "table", "table": table}
        self.wait_task(self.server.request("POST", f"{BASE}/{self.source_id}/sinks", json=body))
        if settings:
            self.settings(sink_id, **settings)

    def post(
        self, body: bytes | str, headers: dict[str, str] | None = None, *, verbose: bool = False, url: str | None = None
    ) -> requests.Response:
        data = body.encode() if isinstance(body, str) else body
        target = (url or self.url) + ("?verbose=true" if verbose else "")
        return requests.post(target, data=data, headers=JSON if headers is None else headers, timeout=30)

    def flush(self, sink_id: str | None = None, wait: float = 30) -> dict[str, Any]:
        path = f"{BASE}/{self.source_id}" + (f"/sinks/{sink_id}" if sink_id else "") + f"/flush?wait={wait}"
        response = self.server.request("POST", path)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def statistics(self, sink_id: str) -> dict[str, Any]:
        path = f"{BASE}/{self.source_id}/sinks/{sink_id}/statistics/total"
        result: dict[str, Any] = self.server.request("GET", path).json()
        return result


def local_rows(data_dir: Path, sink_id: str | None = None) -> list[list[str]]:
    """Rows in local slices (all nodes) and staging files of one sink (or all)."""
    rows: list[list[str]] = []
    pattern = f"*/*/{sink_id or '*'}/*/*/slice-*.csv"
    for path in sorted((data_dir / "local").glob(pattern)):
        rows += parse_csv(path.read_bytes())
    for path in sorted((data_dir / "staging").glob(f"*/*/{sink_id or '*'}/*/*.csv.zst")):
        with path.open("rb") as f:
            rows += parse_csv(zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read())
    return rows


def table_rows(data_dir: Path, table_id: str) -> list[tuple[str, ...]]:
    """Rows of a table in the default SQLite target, in import order."""
    db = sqlite3.connect(data_dir / "tables.sqlite")
    try:
        return [tuple(r) for r in db.execute(f'SELECT * FROM "{table_id}" ORDER BY rowid')]
    finally:
        db.close()


def load(
    stream: Stream, stop: threading.Event, acknowledged: list[int], clients: int = 8, *, keep_going: bool = False
) -> list[threading.Thread]:
    """Clients posting numbered events until ``stop``; the numbers answered 200 go
    into ``acknowledged``. A client ends when the server is gone, or with
    ``keep_going`` reconnects and goes on (a restarted worker)."""
    lock = threading.Lock()

    def client(offset: int) -> None:
        session = requests.Session()
        i = offset
        while not stop.is_set():
            padding = "x" * random.Random(i).randrange(2000)
            body = json.dumps({"n": i, "pad": padding, "quote": 'a "b"\nc'})
            try:
                response = session.post(stream.url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
            except requests.RequestException:
                if not keep_going:
                    return  # the server is gone
                session = requests.Session()
                i += clients  # this event may or may not have been taken: not acknowledged
                time.sleep(0.05)
                continue
            if response.status_code == 200:
                with lock:
                    acknowledged.append(i)
            i += clients

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    return threads
