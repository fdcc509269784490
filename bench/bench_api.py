"""Requests/s of the Stream API's configuration calls against a real `pushstream serve`
on this machine: the current tree and, with `--baseline`, another build side by side.

Operations, each a round of requests over keep-alive connections from client threads:

- **create source**: `POST /v1/branches/default/sources` (answered 202 with a task;
  the round's sources are deleted with `cascade=true` after it, unmeasured);
- **get source**: `GET .../sources/{id}` of one of 20 sources;
- **list sources**: `GET .../sources` (a page of 20 sources);
- **create sink**: `POST .../sources/{id}/sinks` with a 6-column mapping (the
  round's source is deleted after it, unmeasured).

Every server gets one round of every operation per repetition, the servers
alternating; the figures are medians over the repetitions, the ratio is the current
tree's over the baseline's. Each server runs with one worker in its own data dir.

    .venv/bin/python bench/bench_api.py [--baseline PATH_TO_PUSHSTREAM] [--repeat 5] [--threads 4]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from common import free_port, machine, now, table

TOKEN = "bench-token"
BASE = "/v1/branches/default/sources"
CURRENT = [sys.executable, "-m", "pushstream.cli"]
READ_ROUND = 2_000
LISTED_SOURCES = 20
# A branch takes 100 sources: the listed ones, the one of the sinks round and these.
SOURCES_ROUND = 60
# A source takes 100 sinks.
SINKS_ROUND = 100
COLUMNS = [
    {"type": "datetime", "name": "at"},
    {"type": "path", "name": "id", "path": "id"},
    {"type": "path", "name": "event", "path": "event", "rawString": True},
    {"type": "path", "name": "user", "path": "user.id"},
    {"type": "path", "name": "url", "path": "url", "rawString": True},
    {"type": "path", "name": "items", "path": "items"},
]


class Server:
    """A `pushstream serve` with one worker on a free port, in a data dir of its own."""

    def __init__(self, label: str, command: list[str], root: Path) -> None:
        self.label = label
        self.port = free_port()
        data_dir = root / label
        data_dir.mkdir()
        self.log = (root / f"{label}.log").open("wb")
        self.process = subprocess.Popen(
            [
                *command,
                "serve",
                *("--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(data_dir)),
                *("--workers", "1", "--log-level", "warning"),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PUSHSTREAM_API_TOKEN": TOKEN},
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.call("GET", "/health-check", parse=False) == 200:
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline or self.process.poll() is not None:
                raise RuntimeError(f"{label}: the server did not start (see {root / label}.log)")
            time.sleep(0.1)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        conn: http.client.HTTPConnection | None = None,
        parse: bool = True,
    ) -> Any:
        own = conn is None
        conn = conn or self.connection()
        try:
            headers = {"X-StorageApi-Token": TOKEN, "Content-Type": "application/json"}
            conn.request(method, path, body=None if body is None else orjson.dumps(body), headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status >= 400:
                raise RuntimeError(f"{self.label}: {method} {path} -> {response.status} {data[:200]!r}")
            return orjson.loads(data) if parse and data else response.status
        finally:
            if own:
                conn.close()

    def settle(self, answer: Any) -> None:
        """Waits (bounded) until the task of ``answer`` has finished."""
        deadline = time.monotonic() + 60
        while isinstance(answer, dict) and not answer.get("isFinished", True):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.label}: task {answer['taskId']} did not finish")
            time.sleep(0.02)
            answer = self.call("GET", f"/v1/tasks/{answer['taskId']}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def rate(server: Server, requests: list[tuple[str, str, Any]], threads: int) -> tuple[float, list[Any]]:
    """Sends ``requests`` from ``threads`` keep-alive connections; (requests/s, answers)."""
    answers: list[Any] = [None] * len(requests)
    errors: list[BaseException] = []
    next_index = iter(range(len(requests)))
    lock = threading.Lock()

    def work() -> None:
        conn = server.connection()
        try:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                method, path, body = requests[index]
                answers[index] = server.call(method, path, body, conn=conn)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return len(requests) / elapsed, answers


def create_sources(server: Server, threads: int, round_no: int) -> float:
    ids = [f"bench-{round_no}-{i}" for i in range(SOURCES_ROUND)]
    requests = [("POST", BASE, {"sourceId": i, "name": i, "type": "http"}) for i in ids]
    measured, answers = rate(server, requests, threads)
    for answer in answers:
        server.settle(answer)
    for source_id in ids:
        server.settle(server.call("DELETE", f"{BASE}/{source_id}?cascade=true"))
    return measured


def get_source(server: Server, threads: int, round_no: int) -> float:
    requests = [("GET", f"{BASE}/listed-{i % LISTED_SOURCES}", None) for i in range(READ_ROUND)]
    return rate(server, requests, threads)[0]


def list_sources(server: Server, threads: int, round_no: int) -> float:
    return rate(server, [("GET", BASE, None)] * (READ_ROUND // 4), threads)[0]


def create_sinks(server: Server, threads: int, round_no: int) -> float:
    source_id = f"sinks-{round_no}"
    server.settle(server.call("POST", BASE, {"sourceId": source_id, "name": source_id, "type": "http"}))
    requests = []
    for i in range(SINKS_ROUND):
        table_ = {"type": "keboola", "tableId": f"in.c-bench.t{round_no}-{i}", "mapping": {"columns": COLUMNS}}
        body = {"sinkId": f"sink-{i}", "name": f"sink {i}", "type": "table", "table": table_}
        requests.append(("POST", f"{BASE}/{source_id}/sinks", body))
    measured, answers = rate(server, requests, threads)
    for answer in answers:
        server.settle(answer)
    server.settle(server.call("DELETE", f"{BASE}/{source_id}?cascade=true"))
    return measured


OPERATIONS: dict[str, Callable[[Server, int, int], float]] = {
    "create source": create_sources,
    "get source": get_source,
    "list sources": list_sources,
    "create sink": create_sinks,
}


def _spread(rates: list[float]) -> str:
    return f"{min(rates):,.0f}–{max(rates):,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="a pushstream executable to compare with (another build)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pushstream-bench-api-"))
    commands = {"current": CURRENT}
    if args.baseline:
        commands["baseline"] = [str(args.baseline)]
    servers: list[Server] = []
    try:
        for label, command in commands.items():
            servers.append(Server(label, command, root))
        for server in servers:
            for i in range(LISTED_SOURCES):
                body = {"sourceId": f"listed-{i}", "name": f"listed {i}", "type": "http"}
                server.settle(server.call("POST", BASE, body))
            # Warm-up: one round of every operation, not counted.
            for name, operation in OPERATIONS.items():
                operation(server, args.threads, 900 + list(OPERATIONS).index(name))
        rates: dict[tuple[str, str], list[float]] = {}
        for round_no in range(args.repeat):
            for name, operation in OPERATIONS.items():
                for server in servers if round_no % 2 == 0 else reversed(servers):
                    rates.setdefault((server.label, name), []).append(operation(server, args.threads, round_no))
            print(f"round {round_no + 1}/{args.repeat} done", file=sys.stderr, flush=True)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{machine()}\n{now()}, {args.threads} client threads, median of {args.repeat}:\n")
    rows = []
    for name in OPERATIONS:
        current = statistics.median(rates["current", name])
        row = [name, f"{current:,.0f}", _spread(rates["current", name])]
        if args.baseline:
            baseline = statistics.median(rates["baseline", name])
            row += [f"{baseline:,.0f}", _spread(rates["baseline", name]), f"{current / baseline:.2f}x"]
        rows.append(tuple(row))
    header = ("operation", "current req/s", "runs", "baseline req/s", "runs", "current / baseline")
    print(table(rows, header if args.baseline else header[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
