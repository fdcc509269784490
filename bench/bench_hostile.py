"""Latency of normal requests with and without hostile clients, side by side in one run.

A real `pushstream serve` (default settings), one source with a path-mapped sink.
Normal load: `wrk` posting single ~54 B events at a fixed rate (open loop) and
reading `/health-check`. Hostile load (a separate process, on the same machine):
300 connections that send a body one byte a second, 300 that send headers one
byte a second, and a stream of cut bodies, oversize bodies and random bytes. The
scenarios are interleaved and repeated; medians are reported.

    .venv/bin/python bench/bench_hostile.py [--seconds S] [--repeat R] [--rate N]
    .venv/bin/python bench/bench_hostile.py --attack HOST:PORT PATH    # the hostile load alone
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from common import QUIET_SETTINGS, WRK_FIXED_RATE_LUA, free_port, machine, now, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "bench-hostile-token"
SOURCES = "/v1/branches/default/sources"
EVENT = b'{"a":"b","c":{"d":"e","f":"g"},"h":"i","j":[1,2,3],"k":1}'
LUA = (
    r"""
wrk.method = os.getenv("BENCH_METHOD")
if wrk.method == "POST" then
  wrk.body = os.getenv("BENCH_BODY")
  wrk.headers["Content-Type"] = "application/json"
end
"""
    + WRK_FIXED_RATE_LUA
    + r"""

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"seconds":%f,"p50":%d,"p99":%d,"errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status, e.timeout))
end
"""
)


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "pushstream.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--log-level", "warning"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PUSHSTREAM_API_TOKEN": TOKEN}
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(self.url + "/health-check", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"serve did not start:\n{self.log_path.read_text()}")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method, self.url + path, json=body, headers={"X-StorageApi-Token": TOKEN}, timeout=30
        )
        response.raise_for_status()
        result = response.json()
        if isinstance(result, dict) and "taskId" in result:
            while not result["isFinished"]:
                time.sleep(0.05)
                result = requests.get(
                    f"{self.url}/v1/tasks/{result['taskId']}", headers={"X-StorageApi-Token": TOKEN}, timeout=30
                ).json()
            assert result["status"] == "success", result
        return result

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def setup_source(server: Server) -> str:
    server.api("POST", SOURCES, {"sourceId": "bench", "name": "bench", "type": "http"})
    columns = [
        {"name": "id", "type": "uuid", "primaryKey": True},
        {"name": "a", "type": "path", "path": "a"},
        {"name": "cd", "type": "path", "path": "c.d"},
    ]
    table_ = {"type": "keboola", "tableId": "in.c-bench.hostile", "mapping": {"columns": columns}}
    server.api("POST", f"{SOURCES}/bench/sinks", {"sinkId": "s", "name": "s", "type": "table", "table": table_})
    settings = [{"key": k, "value": v} for k, v in QUIET_SETTINGS.items()]
    server.api("PATCH", f"{SOURCES}/bench/sinks/s/settings", {"settings": settings})
    url: str = server.api("GET", f"{SOURCES}/bench")["http"]["url"]
    return url


def run_wrk(url: str, method: str, *, seconds: float, rate: int, connections: int, lua: Path) -> dict[str, float]:
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_BODY": EVENT.decode(), "BENCH_RATE": str(rate)}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(lua), url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


# The hostile load.


def attack(host: str, port: int, path: str) -> None:
    """Runs until killed: slow bodies, slow headers, cut and oversize bodies, noise."""
    rng = random.Random(7)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

    def connect() -> socket.socket | None:
        try:
            conn = socket.create_connection((host, port), timeout=5)
        except OSError:
            return None
        conn.setblocking(False)
        return conn

    slow_bodies: list[socket.socket | None] = [None] * 300
    slow_heads: list[socket.socket | None] = [None] * 300
    while True:
        started = time.monotonic()
        for group, opening in ((slow_bodies, head + "Content-Length: 100000\r\n\r\n{"), (slow_heads, head)):
            for i, held in enumerate(group):
                conn = held
                try:
                    if conn is None:
                        conn = connect()
                        if conn is None:
                            continue
                        conn.send(opening.encode())
                        group[i] = conn
                    else:
                        conn.send(b" " if group is slow_bodies else b"X")
                        with contextlib.suppress(BlockingIOError):
                            if conn.recv(4096) == b"":
                                raise ConnectionError
                except OSError:
                    if conn is not None:
                        conn.close()
                    group[i] = None
        # Cut bodies, oversize bodies and random bytes, ~30 a second.
        while time.monotonic() - started < 1.0:
            conn = connect()
            if conn is not None:
                kind = rng.randrange(3)
                with contextlib.suppress(OSError):
                    if kind == 0:
                        conn.send((head + "Content-Length: 1000\r\n\r\n").encode() + b'{"a":"b"' * 10)
                    elif kind == 1:
                        conn.send((head + "Content-Length: 5000000\r\n\r\n").encode() + b"x" * 60000)
                    else:
                        conn.send(rng.randbytes(rng.randrange(1, 8192)))
                conn.close()
            time.sleep(0.03)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000, help="normal events per second (open loop)")
    parser.add_argument("--attack", nargs=2, metavar=("HOST:PORT", "PATH"))
    args = parser.parse_args()
    if args.attack:
        host, port = args.attack[0].rsplit(":", 1)
        attack(host, int(port), args.attack[1])
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (./dev.sh setup installs it)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    lua = workdir / "bench.lua"
    lua.write_text(LUA)
    server = Server(workdir)
    server.start()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        url = setup_source(server)
        path = "/stream/" + url.split("/stream/", 1)[1]
        for _ in range(args.repeat):
            for hostile in (False, True):
                attacker = None
                if hostile:
                    command = [sys.executable, __file__, "--attack", f"127.0.0.1:{server.port}", path]
                    attacker = subprocess.Popen(command)
                    time.sleep(3.0)  # the slow connections are open
                try:
                    for name, target, method, rate, connections in (
                        ("ingest POST", url, "POST", args.rate, 32),
                        ("GET /health-check", server.url + "/health-check", "GET", 200, 4),
                    ):
                        run = run_wrk(target, method, seconds=args.seconds, rate=rate, connections=connections, lua=lua)
                        results.setdefault((name, "with hostile load" if hostile else "alone"), []).append(run)
                finally:
                    if attacker is not None:
                        attacker.kill()
                        attacker.wait()
                        time.sleep(2.0)
    finally:
        server.stop()
    runs = f"median of {args.repeat} runs of {args.seconds:g} s"
    print(f"\n{now()}, {machine()}; normal load {args.rate} events/s; {runs}\n")
    rows = []
    for (name, scenario), runs in results.items():
        rows.append(
            (
                name,
                scenario,
                f"{statistics.median(r['requests'] / r['seconds'] for r in runs):,.0f}",
                f"{statistics.median(r['p50'] for r in runs) / 1000:.2f}",
                f"{statistics.median(r['p99'] for r in runs) / 1000:.2f}",
                str(sum(int(r["errors"]) + int(r["timeouts"]) for r in runs)),
            )
        )
    print(table(rows, ("requests", "scenario", "req/s", "p50 ms", "p99 ms", "failed")))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
