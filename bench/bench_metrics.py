"""What the metrics cost per ingest request: the receiver of a real app (its
slices, its sink, the core) called with and without the layer that counts
requests, events and latency (``pushstream.receiver.observe.ObservedApp``), in
prometheus_client's multiprocess mode as ``serve`` runs it. Single JSON events of
~500 B, one thread; the runs alternate. Two sync modes: ``cache`` (no fdatasync,
so the overhead is not hidden behind the disk) and the default ``disk``.

    .venv/bin/python bench/bench_metrics.py [--requests N] [--repeat R]
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# Before anything creates a metric: the mode `pushstream serve` runs in.
_METRICS_DIR = tempfile.mkdtemp(prefix="pushstream-bench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR

from common import machine, now, sample_event, table  # noqa: E402
from pushstream.app import close_app, create_app  # noqa: E402
from pushstream.config import ServerConfig  # noqa: E402

TOKEN = "bench-token"
BASE = "/v1/branches/default/sources"


def _wait(client: Any, response: Any) -> None:
    task = response.get_json()
    while not task["isFinished"]:
        time.sleep(0.01)
        task = client.get(f"/v1/tasks/{task['taskId']}", headers={"X-StorageApi-Token": TOKEN}).get_json()
    assert task["status"] == "success", task


def _source(client: Any, source_id: str) -> str:
    headers = {"X-StorageApi-Token": TOKEN}
    _wait(client, client.post(BASE, json={"sourceId": source_id, "name": source_id, "type": "http"}, headers=headers))
    columns = [
        {"type": "uuid", "name": "id"},
        {"type": "datetime", "name": "at"},
        {"type": "path", "name": "user", "path": "user.id"},
        {"type": "body", "name": "body"},
    ]
    sink = {
        "sinkId": "rows",
        "name": "rows",
        "type": "table",
        "table": {"type": "keboola", "tableId": f"in.c-bench.{source_id}", "mapping": {"columns": columns}},
    }
    _wait(client, client.post(f"{BASE}/{source_id}/sinks", json=sink, headers=headers))
    url: str = client.get(f"{BASE}/{source_id}", headers=headers).get_json()["http"]["url"]
    return url.split("://", 1)[1].split("/", 1)[1]


def _start_response(answer: list[str], status: str, headers: Any, exc_info: Any = None) -> None:
    answer.append(status)


def _run(app: Any, path: str, bodies: list[bytes]) -> float:
    """Events per second of ``app`` taking ``bodies`` one request each."""
    started = time.perf_counter()
    for body in bodies:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/" + path,
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
        }
        answer: list[str] = []
        app(environ, functools.partial(_start_response, answer))
        if answer[0][:3] != "200":
            raise RuntimeError(answer)
    return len(bodies) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bodies = [sample_event(i) for i in range(args.requests)]
    rows: list[tuple[str, ...]] = []
    print(f"# {machine()}, {now()}; {args.requests} single events per run, median of {args.repeat}")
    for mode in ("cache", "disk"):
        with tempfile.TemporaryDirectory(prefix="pushstream-bench-") as tmp:
            settings = {"storage.level.local.encoding.sync.mode": mode}
            app = create_app(ServerConfig(data_dir=Path(tmp) / "data", api_token=TOKEN, settings=settings))
            try:
                observed = app.wsgi_app
                bare = observed.app  # type: ignore[attr-defined]
                path = _source(app.test_client(), f"metrics-{mode}")
                _run(bare, path, bodies[:200])
                _run(observed, path, bodies[:200])
                with_metrics, without = [], []
                for _ in range(args.repeat):
                    without.append(_run(bare, path, bodies))
                    with_metrics.append(_run(observed, path, bodies))
            finally:
                close_app(app)
        plain, counted = statistics.median(without), statistics.median(with_metrics)
        overhead_us = (1 / counted - 1 / plain) * 1e6
        rows.append(
            (f"sync {mode}", f"{plain:,.0f}", f"{counted:,.0f}", f"{counted / plain:.3f}", f"{overhead_us:+.1f}")
        )
        print(
            f"sync {mode}: without {sorted(round(r) for r in without)}, with {sorted(round(r) for r in with_metrics)}"
        )
    plain, counted = _layer_only(args.repeat)
    rows.append(
        (
            "layer only",
            f"{plain:,.0f}",
            f"{counted:,.0f}",
            f"{counted / plain:.3f}",
            f"{(1 / counted - 1 / plain) * 1e6:+.2f}",
        )
    )
    print(table(rows, ("scenario", "events/s without", "events/s with metrics", "ratio", "µs/request")))


def _layer_only(repeat: int, requests: int = 50_000) -> tuple[float, float]:
    """Requests/s of a stand-in receiver (answers "OK" and leaves the source and
    outcomes in the environ, as the real one does) with and without the layer:
    the layer's own cost, without the noise of the disk and the core."""
    from pushstream.metrics import metrics
    from pushstream.receiver.observe import OUTCOMES_KEY, SOURCE_KEY, ObservedApp

    outcomes = [("rows", "processed", 1, "")]

    def receiver(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ[SOURCE_KEY] = "events"
        environ[OUTCOMES_KEY] = outcomes
        start_response("200 OK", [("Content-Length", "2")])
        return [b"OK"]

    observed = ObservedApp(receiver, metrics())
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/stream/1/events/secret"}

    def rate(app: Any) -> float:
        start_response = functools.partial(_start_response, [])
        started = time.perf_counter()
        for _ in range(requests):
            app(dict(environ), start_response)
        return requests / (time.perf_counter() - started)

    without, with_layer = [], []
    for _ in range(repeat * 3):
        without.append(rate(receiver))
        with_layer.append(rate(observed))
    metrics().flush_ingest()
    return statistics.median(without), statistics.median(with_layer)


if __name__ == "__main__":
    main()
