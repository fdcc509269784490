"""`pushstream ingest` of a 1 GB NDJSON file (~500 B events) into a path-mapped sink
of a real server on this machine, end to end: from starting the command to the
last batch acknowledged (durable: `sync.wait=true`, `fdatasync`'d), which includes
reading and checking the whole file before anything is sent.

Scenarios, interleaved in every repetition:

- **ingest**: `pushstream ingest SOURCE events.ndjson` (defaults: 4 connections,
  4 MB batches) as its own process; records/s, the client's CPU time (its worker
  processes included) and its share of the wall time;
- **check only**: `pushstream ingest --dry-run` (the read + check pass alone);
- **server ceiling**: a minimal concurrent NDJSON poster in this process (the file
  pre-split in memory into the same batches, the same connections): what the
  server takes when the client costs almost nothing.

The server's CPU (all its processes) is measured over each scenario too. Client
and server share the machine's cores. Between scenarios the benchmark waits until
the server is idle. The sink's upload and import triggers are set to their maxima
so the coordinator does not import during the runs (rows stay on the local level;
the import is `bench_import.py`'s subject).

    .venv/bin/python bench/bench_ingest.py [--size-mb 1024] [--repeat 3] [--parallel 4]
        [--batch-size 4MB] [--workers 1] [--keep-file]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import requests

from common import QUIET_SETTINGS, free_port, machine, now, sample_event, table

TOKEN = "bench-token"
BASE = "/v1/branches/default/sources"
PUSHSTREAM = [sys.executable, "-m", "pushstream.cli"]
COLUMNS = [
    {"type": "datetime", "name": "at"},
    {"type": "path", "name": "id", "path": "id"},
    {"type": "path", "name": "event", "path": "event", "rawString": True},
    {"type": "path", "name": "user", "path": "user.id"},
    {"type": "path", "name": "url", "path": "url", "rawString": True},
    {"type": "path", "name": "items", "path": "items"},
]


def generate(path: Path, size: int) -> int:
    """Writes ~`size` bytes of NDJSON events (deterministic); returns the records."""
    n = 0
    written = 0
    with path.open("wb") as f:
        while written < size:
            chunk = b"".join(sample_event(i) + b"\n" for i in range(n, n + 10_000))
            f.write(chunk)
            written += len(chunk)
            n += 10_000
    return n


class Server:
    def __init__(self, data_dir: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PUSHSTREAM_API_TOKEN": TOKEN}
        self.log = (data_dir.parent / "server.log").open("wb")
        self.process = subprocess.Popen(
            [
                *PUSHSTREAM,
                "serve",
                *("--port", str(self.port), "--data-dir", str(data_dir)),
                *("--workers", str(workers), "--log-level", "warning"),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/health-check", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, self.url + path, headers={"X-StorageApi-Token": TOKEN}, timeout=60, **kwargs
        )
        response.raise_for_status()
        task = response.json()
        while isinstance(task, dict) and "taskId" in task and not task["isFinished"]:
            time.sleep(0.02)
            task = requests.get(
                f"{self.url}/v1/tasks/{task['taskId']}", headers={"X-StorageApi-Token": TOKEN}, timeout=60
            ).json()
        return task

    def stream(self, name: str) -> str:
        """A source with one path-mapped sink; returns the ingest URL."""
        self.request("POST", BASE, json={"sourceId": name, "name": name, "type": "http"})
        table = {"type": "keboola", "tableId": f"in.c-bench.{name}", "mapping": {"columns": COLUMNS}}
        self.request(
            "POST", f"{BASE}/{name}/sinks", json={"sinkId": "sink", "name": "sink", "type": "table", "table": table}
        )
        settings = [{"key": k, "value": v} for k, v in QUIET_SETTINGS.items()]
        self.request("PATCH", f"{BASE}/{name}/sinks/sink/settings", json={"settings": settings})
        return str(self.request("GET", f"{BASE}/{name}")["http"]["url"])

    def cpu(self) -> float:
        """CPU seconds of the server and all its processes so far (live ones)."""
        return sum(self.cpu_by_role().values())

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds so far of the coordinator and of the rest (the request workers)."""
        roles = {"workers": 0.0, "coordinator": 0.0}
        try:
            root = psutil.Process(self.process.pid)
            for proc in [root, *root.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                    role = "coordinator" if "pushstream.coordinator" in " ".join(proc.cmdline()) else "workers"
                    roles[role] += times.user + times.system
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
        return roles

    def settle(self, limit: float = 60.0) -> None:
        """Waits until the server uses less than 5 % of a core (background work done)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self.cpu()
            time.sleep(1.0)
            if self.cpu() - before < 0.05:
                return

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@dataclass
class Run:
    records: int
    size: int
    wall: float
    client_cpu: float
    server_cpu: float
    coordinator_cpu: float = 0.0
    busy_before: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.wall


def wait_idle(limit: float, busy: float = 0.15) -> float:
    """Waits (at most ``limit`` seconds) until the machine is idle: less than ``busy``
    of its CPU used over 2 s. Returns the busy share seen last. The machine is
    shared; a run that starts while others load it measures them, not pushstream."""
    deadline = time.monotonic() + limit
    while True:
        share = psutil.cpu_percent(interval=2.0) / 100
        if share < busy or time.monotonic() >= deadline:
            return share


def run_ingest(server: Server, source: str, path: Path, records: int, extra: list[str]) -> Run:
    env = {**os.environ, "PUSHSTREAM_URL": server.url, "PUSHSTREAM_API_TOKEN": TOKEN}
    server_before = server.cpu_by_role()
    started = time.perf_counter()
    process = subprocess.Popen([*PUSHSTREAM, "ingest", source, str(path), *extra], env=env, stderr=subprocess.PIPE)
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"ingest failed ({process.returncode}): {err.decode()}")
    client = usage.ru_utime + usage.ru_stime
    return _run(records, path.stat().st_size, wall, client, server=server, before=server_before)


def _run(records: int, size: int, wall: float, client: float, *, server: Server, before: dict[str, float]) -> Run:
    after = server.cpu_by_role()
    spent = {role: after[role] - before[role] for role in after}
    return Run(records, size, wall, client, sum(spent.values()), spent["coordinator"])


def run_ceiling(server: Server, url: str, batches: list[bytes], records: int, parallel: int) -> Run:
    parts = urlsplit(url)
    lock = threading.Lock()
    queue = list(reversed(batches))
    errors: list[str] = []

    def post() -> None:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        headers = {"Content-Type": "application/x-ndjson"}
        while True:
            with lock:
                if not queue or errors:
                    break
                body = queue.pop()
            connection.request("POST", parts.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                errors.append(f"{response.status} {answer[:200]!r}")
        connection.close()

    server_before = server.cpu_by_role()
    cpu_before = time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=post) for _ in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"the server refused a batch: {errors[0]}")
    size = sum(len(b) for b in batches)
    return _run(records, size, wall, time.process_time() - cpu_before, server=server, before=server_before)


def split(data: bytes, batch_size: int) -> list[bytes]:
    batches = []
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + batch_size) + 1
        if end <= start:
            end = data.index(b"\n", start) + 1
        batches.append(data[start:end])
        start = end
    return batches


def parse_size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated NDJSON file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4, help="connections (ingest and the poster)")
    parser.add_argument("--batch-size", default="4MB")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--dir", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--keep-file", action="store_true", help="keep the generated file for the next run")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=300.0,
        help="before each scenario, wait up to this many seconds for the machine to be idle (0: do not wait)",
    )
    args = parser.parse_args()
    batch_size = parse_size(args.batch_size)

    work = args.dir or Path(tempfile.gettempdir()) / "pushstream-bench-ingest"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"events-{args.size_mb}MB.ndjson"
    if path.exists() and path.stat().st_size >= args.size_mb << 20:
        with path.open("rb") as f:
            records = sum(block.count(b"\n") for block in iter(lambda: f.read(8 << 20), b""))
    else:
        print(f"generating {args.size_mb} MB of events into {path} ...", file=sys.stderr)
        records = generate(path, args.size_mb << 20)
    size = path.stat().st_size
    print(f"{records:,} records, {size / 1e6:,.0f} MB, {size / records:.0f} B per record", file=sys.stderr)
    data = path.read_bytes()
    batches = split(data, batch_size)
    del data

    data_dir = work / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    load = os.getloadavg()
    server = Server(data_dir, args.workers)
    results: dict[str, list[Run]] = {"ingest": [], "check": [], "ceiling": []}
    options = ["--parallel", str(args.parallel), "--batch-size", str(batch_size), "--quiet"]
    try:
        for i in range(args.repeat):
            source = f"ingest-{i}"
            server.stream(source)
            ceiling_url = server.stream(f"ceiling-{i}")
            for name, runs in results.items():
                server.settle()
                busy = wait_idle(args.wait_idle) if args.wait_idle > 0 else 0.0
                if name == "ceiling":
                    run = run_ceiling(server, ceiling_url, batches, records, args.parallel)
                else:
                    extra = [*options, "--dry-run"] if name == "check" else options
                    run = run_ingest(server, source, path, records, extra)
                run.busy_before = busy
                runs.append(run)
                print(
                    f"run {i + 1} {name:8}: {run.rate:10,.0f} records/s  {run.wall:6.2f} s  "
                    f"client CPU {run.client_cpu:5.2f} s  server CPU {run.server_cpu:5.2f} s "
                    f"(coordinator {run.coordinator_cpu:4.2f} s)  machine busy before {busy:.0%}, "
                    f"load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                )
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        if not args.keep_file:
            path.unlink(missing_ok=True)

    labels = {
        "ingest": "`pushstream ingest` (end to end)",
        "check": "`pushstream ingest --dry-run` (read + check only)",
        "ceiling": "server ceiling (minimal poster, same batches)",
    }
    rows = []
    for name, runs in results.items():
        rate = statistics.median(r.rate for r in runs)
        wall = statistics.median(r.wall for r in runs)
        client = statistics.median(r.client_cpu for r in runs)
        share = statistics.median(r.client_cpu / r.wall for r in runs)
        server_share = statistics.median(r.server_cpu / r.wall for r in runs)
        server_cpu = statistics.median(r.server_cpu for r in runs)
        rows.append(
            (
                labels[name],
                f"{rate:,.0f}",
                f"{rate * size / records / 1e6:,.0f}",
                f"{wall:.2f}",
                f"{client:.2f}",
                f"{share:.2f}",
                f"{server_cpu:.1f}" if name != "check" else "-",
                f"{server_share:.2f}" if name != "check" else "-",
                " / ".join(f"{r.rate / 1000:,.0f}k" for r in runs),
                " / ".join(f"{r.busy_before:.0%}" for r in runs),
            )
        )
    print(f"\n{now()}, {machine()}, load average at start {load[0]:.1f}")
    print(
        f"{records:,} records ({size / 1e6:,.0f} MB, {size / records:.0f} B each), {args.parallel} connections, "
        f"{batch_size >> 20} MB batches, server --workers {args.workers}, median of {args.repeat}:\n"
    )
    print(
        table(
            rows,
            (
                "scenario",
                "records/s",
                "MB/s",
                "wall s",
                "client CPU s",
                "client CPU / wall",
                "server CPU s",
                "server CPU / wall",
                "runs",
                "machine busy before",
            ),
        )
    )
    ingest = statistics.median(r.rate for r in results["ingest"])
    ceiling = statistics.median(r.rate for r in results["ceiling"])
    print(f"\ningest / server ceiling: {ingest / ceiling:.2f}; target 300,000 records/s: {ingest / 300_000:.2f}x")
    per_record = statistics.median(r.server_cpu / r.records * 1e6 for r in results["ceiling"])
    end_load = os.getloadavg()[0]
    print(f"server CPU per record (ceiling runs): {per_record:.1f} us; load average at the end {end_load:.1f}")


if __name__ == "__main__":
    main()
