"""Helpers of the operations tests: a source with a sink on a real server, and the
server's ``/metrics`` parsed with ``prometheus_client``'s own parser."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from serverprocess import ServerProcess

BASE = "/v1/branches/default/sources"
COLUMNS = [
    {"type": "path", "name": "id", "path": "id", "rawString": True},
    {"type": "body", "name": "body"},
]


def wait_task(server: ServerProcess, response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    deadline = time.monotonic() + 30
    while not task["isFinished"]:
        assert time.monotonic() < deadline, task
        time.sleep(0.01)
        task = server.request("GET", f"/v1/tasks/{task['taskId']}").json()
    assert task["status"] == "success", task
    return task


def create_stream(server: ServerProcess, source: str | None = None, sink: str = "rows") -> tuple[str, str]:
    """Creates a source with one sink; returns (source id, ingest URL)."""
    source = source or f"src-{uuid.uuid4().hex[:8]}"
    wait_task(server, server.request("POST", BASE, json={"sourceId": source, "name": source, "type": "http"}))
    table = {"type": "keboola", "tableId": f"in.c-ops.{source}", "mapping": {"columns": COLUMNS}}
    body = {"sinkId": sink, "name": sink, "type": "table", "table": table}
    wait_task(server, server.request("POST", f"{BASE}/{source}/sinks", json=body))
    url: str = server.request("GET", f"{BASE}/{source}").json()["http"]["url"]
    return source, url


def scrape(server: ServerProcess, **kwargs: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` as {(sample name, sorted labels): value}."""
    response = requests.get(f"{server.url}/metrics", timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape_until(
    server: ServerProcess, done: Callable[[dict[tuple[str, tuple[tuple[str, str], ...]], float]], bool]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrapes until ``done`` holds (values other processes copy every second), at most 30 s."""
    deadline = time.monotonic() + 30
    while True:
        samples = scrape(server)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)
