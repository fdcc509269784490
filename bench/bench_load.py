"""Receiver load benchmark: HTTP requests into durable local slices, in the style of
Keboola's k6 scenario, with the load generator (`wrk`, a Lua script for the POST
bodies) on the same 2-core machine.

Five servers run side by side, with the same workers and request threads:
`pushstream serve` (its default guarded front, ASGI, and `--front direct`, granian
WSGI), and, all granian WSGI, a no-op Flask endpoint (the framework
ceiling), a no-op bare WSGI callable (the WSGI server's own ceiling) and a
hand-written Flask handler (orjson + csv + `os.fsync` per request), the last
three from `baseline_apps.py`. The scenarios are interleaved and repeated, and the
medians are reported:

- single events of ~54 B and ~1 KB, a static mapping (`uuid`, `datetime`, `body`)
  and a path mapping (`uuid`, `datetime`, 3 paths), `sync.wait=true`: closed loop
  (a fixed number of connections, as many requests as they can) and open loop at
  a fixed rate of 10,000 requests/s (requests scheduled by the Lua script);
- NDJSON batches of 1,000 events.

The sources' staging and import triggers are set to their maxima so that the
coordinator does not import while measuring: the figures are those of the
receiver (HTTP → mapped rows fsync'd in the local slices). The NDJSON runs still
fill slices past the largest size trigger (50 MB), which the coordinator then
compresses; every run waits until the server is idle again.

    .venv/bin/python bench/bench_load.py [--seconds S] [--repeat R] [--workers N] [--threads T]
    .venv/bin/python bench/bench_load.py --sweep      # compare server configurations
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from common import QUIET_SETTINGS, WRK_FIXED_RATE_LUA, free_port, machine, now, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
TOKEN = "bench-load-token"
SOURCES = "/v1/branches/default/sources"

#: ~54 B, the small payload of Keboola's scenario; the 1 KB one adds a padding field.
SMALL_EVENT = b'{"a":"b","c":{"d":"e","f":"g"},"h":"i","j":[1,2,3],"k":1}'
LARGE_EVENT = SMALL_EVENT[:-1] + b',"pad":"' + b"x" * (1024 - len(SMALL_EVENT) - 9) + b'"}'
PAYLOADS = {"54B": SMALL_EVENT, "1KB": LARGE_EVENT}
BATCH = 1000
FIXED_RATE = 10_000

COLUMNS = {
    "static": [
        {"name": "id", "type": "uuid", "primaryKey": True},
        {"name": "datetime", "type": "datetime"},
        {"name": "body", "type": "body"},
    ],
    "path": [
        {"name": "id", "type": "uuid", "primaryKey": True},
        {"name": "datetime", "type": "datetime"},
        {"name": "a", "type": "path", "path": "a"},
        {"name": "cd", "type": "path", "path": "c.d"},
        {"name": "j0", "type": "path", "path": "j[0]"},
    ],
}
# One Lua script for every run: the body from a file, an optional fixed rate,
# and the summary as one JSON line (latencies in microseconds).
LUA = (
    r"""
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")

"""
    + WRK_FIXED_RATE_LUA
    + r"""

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH {"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""
)


def busy_cpu_seconds() -> float:
    """CPU time used by everything on the machine so far (all cores, idle and iowait excluded)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def settle(servers: list[Server], timeout: float = 60.0, interval: float = 0.3) -> None:
    """Waits until the servers are idle: the coordinator compresses the slices that
    earlier runs filled in the background, which must not run into the next
    measurement."""
    deadline = time.monotonic() + timeout
    last = sum(server.cpu_seconds() for server in servers)
    while servers and time.monotonic() < deadline:
        time.sleep(interval)
        used = sum(server.cpu_seconds() for server in servers)
        if used - last <= 0.05 * interval * len(servers):
            return
        last = used


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk is missing: installing the Debian package (as ./dev.sh setup does)", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)


class Server:
    """A server process on a free port with its own data dir; stopped with SIGTERM."""

    def __init__(self, name: str, command: list[str], data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.name = name
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir.parent / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # A session of its own, so that stopping it reaches the worker processes too.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if requests.get(self.url + "/health-check", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the processes of the server's session."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == self.process.pid:  # session id
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, self.url + path, headers={"X-StorageApi-Token": TOKEN}, timeout=30, **kwargs
        )
        if response.status_code == 202:
            task = response.json()
            while not task["isFinished"]:
                time.sleep(0.02)
                task = requests.get(
                    self.url + f"/v1/tasks/{task['taskId']}", headers={"X-StorageApi-Token": TOKEN}, timeout=30
                ).json()
            if task["status"] != "success":
                raise RuntimeError(f"{method} {path}: {task}")
            return task
        response.raise_for_status()
        return response.json()


def start_pushstream(work: Path, workers: int, threads: int, front: str = "guarded") -> tuple[Server, dict[str, str]]:
    """`pushstream serve` with one source per mapping; returns the server and the ingest URLs."""
    port = free_port()
    command = [
        *[str(ROOT / ".venv/bin/python"), "-m", "pushstream.cli", "serve"],
        *["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(work / "pushstream")],
        *["--workers", str(workers), "--threads", str(threads), "--log-level", "warning", "--front", front],
    ]
    server = Server("pushstream", command, work / "pushstream", port, {"PUSHSTREAM_API_TOKEN": TOKEN})
    try:
        return server, configure(server)
    except BaseException:
        server.stop()
        raise


def configure(server: Server) -> dict[str, str]:
    """One source per mapping, each with one sink; returns the ingest URLs."""
    urls = {}
    for mapping, columns in COLUMNS.items():
        server.api("POST", SOURCES, json={"sourceId": mapping, "name": mapping, "type": "http"})
        settings = [{"key": k, "value": v} for k, v in QUIET_SETTINGS.items()]
        server.api("PATCH", f"{SOURCES}/{mapping}/settings", json={"settings": settings})
        table_ = {"type": "keboola", "tableId": f"in.c-bench.{mapping}", "mapping": {"columns": columns}}
        sink = {"sinkId": mapping, "name": mapping, "type": "table", "table": table_}
        server.api("POST", f"{SOURCES}/{mapping}/sinks", json=sink)
        urls[mapping] = server.api("GET", f"{SOURCES}/{mapping}")["http"]["url"]
    return urls


def start_baseline(kind: str, work: Path, workers: int, threads: int) -> tuple[Server, dict[str, str]]:
    port = free_port()
    command = [
        *[str(ROOT / ".venv/bin/python"), str(HERE / "baseline_apps.py"), kind],
        *["--port", str(port), "--data-dir", str(work / kind), "--workers", str(workers), "--threads", str(threads)],
    ]
    server = Server(kind, command, work / kind, port, {"PYTHONPATH": str(HERE)})
    secret = "x" * 48
    return server, {mapping: f"{server.url}/stream/1/{mapping}/{secret}" for mapping in COLUMNS}


@dataclass
class Scenario:
    name: str
    server: str
    mapping: str
    payload: str
    events_per_request: int
    connections: int
    rate: int = 0  # requests/s for the open loop; 0 = closed loop
    #: Server configuration: (workers, request threads per worker).
    config: tuple[int, int] = (1, 64)
    runs: list[dict[str, float]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.server, *self.config)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


def run_wrk(
    url: str, body_file: Path, content_type: str, *, connections: int, seconds: float, rate: int, lua: Path
) -> dict[str, float]:
    env = {
        **os.environ,
        "BENCH_BODY": str(body_file),
        "BENCH_CONTENT_TYPE": content_type,
        "BENCH_RATE": str(rate),
    }
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(lua), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    summary = json.loads(line.removeprefix("BENCH "))
    seconds_run = summary["duration_us"] / 1e6
    return {
        "seconds": seconds_run,
        "client_cpu": client_cpu,
        "requests_per_s": summary["requests"] / seconds_run,
        "errors": summary["errors"] + summary["status_errors"],
        "p50_ms": summary["p50"] / 1000,
        "p90_ms": summary["p90"] / 1000,
        "p99_ms": summary["p99"] / 1000,
        "max_ms": summary["max"] / 1000,
    }


def default_scenarios(connections: int, batch_connections: int, config: tuple[int, int]) -> list[Scenario]:
    found: list[Scenario] = []
    for payload in PAYLOADS:
        for mapping in COLUMNS:
            found.append(Scenario(f"receiver, {mapping}, {payload}", "pushstream", mapping, payload, 1, connections))
            name = f"receiver --front direct, {mapping}, {payload}"
            found.append(Scenario(name, "pushstream-direct", mapping, payload, 1, connections))
        found.append(Scenario(f"no-op Flask, {payload}", "noop", "static", payload, 1, connections))
        found.append(Scenario(f"no-op bare WSGI, {payload}", "wsgi", "static", payload, 1, connections))
        for mapping in COLUMNS:
            name = f"hand-written Flask, {mapping}, {payload}"
            found.append(Scenario(name, "handwritten", mapping, payload, 1, connections))
    for payload in PAYLOADS:
        for mapping in COLUMNS:
            name = f"receiver at {FIXED_RATE:,}/s, {mapping}, {payload}"
            found.append(Scenario(name, "pushstream", mapping, payload, 1, 128, rate=FIXED_RATE))
    # Latency below saturation, for comparison.
    half = FIXED_RATE // 2
    found.append(Scenario(f"receiver at {half:,}/s, static, 54B", "pushstream", "static", "54B", 1, 128, rate=half))
    for payload in PAYLOADS:
        for mapping in COLUMNS:
            name = f"receiver, NDJSON x{BATCH:,}, {mapping}, {payload}"
            found.append(Scenario(name, "pushstream", mapping, payload, BATCH, batch_connections))
    for scenario in found:
        scenario.config = config
    return found


def body_files(work: Path) -> dict[tuple[str, int], Path]:
    files = {}
    for payload, event in PAYLOADS.items():
        for count in (1, BATCH):
            path = work / f"body-{payload}-{count}"
            path.write_bytes(event if count == 1 else b"\n".join([event] * count) + b"\n")
            files[(payload, count)] = path
    return files


def measure(work: Path, scenarios: list[Scenario], *, seconds: int, repeat: int) -> None:
    """Starts the servers the scenarios need (all at once), runs the scenarios
    interleaved `repeat` times, stops the servers."""
    work.mkdir(parents=True, exist_ok=True)
    lua = work / "post.lua"
    lua.write_text(LUA)
    bodies = body_files(work)
    servers: dict[tuple[str, int, int], Server] = {}
    urls: dict[tuple[str, int, int], dict[str, str]] = {}
    try:
        for key in dict.fromkeys(s.key for s in scenarios):
            kind, workers, threads = key
            directory = work / f"{kind}-w{workers}-t{threads}"
            if kind == "pushstream":
                servers[key], urls[key] = start_pushstream(directory, workers, threads)
            elif kind == "pushstream-direct":
                servers[key], urls[key] = start_pushstream(directory, workers, threads, front="direct")
            else:
                servers[key], urls[key] = start_baseline(kind, directory, workers, threads)
        with_coordinator = [server for key, server in servers.items() if key[0].startswith("pushstream")]
        for s in scenarios:  # warm up every path once
            body = bodies[(s.payload, s.events_per_request)]
            run_wrk(urls[s.key][s.mapping], body, content_type(s), connections=4, seconds=1, rate=0, lua=lua)
        for round_ in range(repeat):
            for s in scenarios:
                body = bodies[(s.payload, s.events_per_request)]
                settle(with_coordinator)
                server = servers[s.key]
                cpu_before = server.cpu_seconds()
                busy_before = busy_cpu_seconds()
                run = run_wrk(
                    urls[s.key][s.mapping],
                    body,
                    content_type(s),
                    connections=s.connections,
                    seconds=seconds,
                    rate=s.rate,
                    lua=lua,
                )
                run["events_per_s"] = run["requests_per_s"] * s.events_per_request
                cpu = server.cpu_seconds() - cpu_before
                busy = busy_cpu_seconds() - busy_before
                # Cores busy with other work than this server and wrk (the machine is shared).
                run["other_cores"] = max(0.0, busy - cpu - run["client_cpu"]) / run["seconds"]
                events = run["events_per_s"] * run["seconds"]
                run["cpu_us_per_event"] = cpu * 1e6 / events
                run["client_cpu_us_per_event"] = run["client_cpu"] * 1e6 / events
                run["round"] = round_
                s.runs.append(run)
                print(
                    f"  [{round_ + 1}/{repeat}] {s.name}: {run['events_per_s']:,.0f} events/s, "
                    f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                    f"server CPU {run['cpu_us_per_event']:.1f} us/event, other load {run['other_cores']:.2f} cores"
                    + (f", {run['errors']:.0f} errors" if run["errors"] else ""),
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()


def content_type(s: Scenario) -> str:
    return "application/x-ndjson" if s.events_per_request > 1 else "application/json"


def ratio(scenario: Scenario, baseline: Scenario | None) -> float | None:
    """Median over the rounds of the rates measured in the same round."""
    if baseline is None or not baseline.runs:
        return None
    by_round = {r["round"]: r["events_per_s"] for r in baseline.runs}
    return statistics.median(r["events_per_s"] / by_round[r["round"]] for r in scenario.runs)


def report(scenarios: list[Scenario]) -> str:
    by_name = {s.name: s for s in scenarios}
    rows = []
    for s in scenarios:
        vs_noop = vs_wsgi = vs_hand = None
        if s.server.startswith("pushstream") and s.events_per_request == 1 and not s.rate:
            vs_noop = ratio(s, by_name.get(f"no-op Flask, {s.payload}"))
            vs_wsgi = ratio(s, by_name.get(f"no-op bare WSGI, {s.payload}"))
            vs_hand = ratio(s, by_name.get(f"hand-written Flask, {s.mapping}, {s.payload}"))
        errors = sum(r["errors"] for r in s.runs)
        rows.append(
            (
                s.name,
                f"{s.connections}" + (f" @ {s.rate:,}/s" if s.rate else ""),
                f"{s.median('events_per_s'):,.0f}",
                f"{s.median('p50_ms'):.2f}",
                f"{s.median('p99_ms'):.2f}",
                f"{s.median('cpu_us_per_event'):.1f} / {s.median('client_cpu_us_per_event'):.1f}",
                f"{s.median('other_cores'):.2f}",
                "-" if vs_noop is None else f"{vs_noop:.0%}",
                "-" if vs_wsgi is None else f"{vs_wsgi:.0%}",
                "-" if vs_hand is None else f"{vs_hand:.1f}x",
                f"{errors:,.0f}",
            )
        )
    header = (
        "scenario",
        "connections",
        "events/s",
        "p50 ms",
        "p99 ms",
        "CPU us/event server / wrk",
        "other load (cores)",
        "vs no-op Flask",
        "vs bare WSGI",
        "vs hand-written",
        "errors",
    )
    return table(rows, header)


def plot(scenarios: list[Scenario], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    shown = scenarios[::-1]  # first scenario on top
    names = [s.name for s in shown]
    rates = [s.median("events_per_s") for s in shown]
    p50 = [s.median("p50_ms") for s in shown]
    p99 = [s.median("p99_ms") for s in shown]
    colors = {
        "pushstream": "tab:blue",
        "pushstream-direct": "tab:cyan",
        "noop": "tab:gray",
        "wsgi": "silver",
        "handwritten": "tab:orange",
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 0.4 * len(names) + 2), sharey=True)
    y = list(range(len(names)))
    left.barh(y, rates, color=[colors[s.server] for s in shown])
    left.set_xscale("log")
    left.set_xlabel("events/s (log scale)")
    for target, label in ((10_000, "10k/s"), (500_000, "500k/s")):
        left.axvline(target, color="tab:red", linestyle=":", linewidth=1)
        left.text(target, len(names) - 0.4, f" target {label}", color="tab:red", fontsize=8)
    for i, rate in enumerate(rates):
        left.text(rate, i, f" {rate:,.0f}", va="center", fontsize=8)
    left.set_yticks(y, names, fontsize=8)
    left.legend(
        handles=[
            Patch(color=colors["pushstream"], label="pushstream receiver (guarded front)"),
            Patch(color=colors["pushstream-direct"], label="pushstream receiver, --front direct"),
            Patch(color=colors["noop"], label="no-op Flask endpoint"),
            Patch(color=colors["wsgi"], label="no-op bare WSGI callable"),
            Patch(color=colors["handwritten"], label="hand-written Flask handler"),
        ],
        loc="center right",
        fontsize=8,
    )
    height = 0.4
    right.barh([i + height / 2 for i in y], p50, height, label="p50", color="tab:green")
    right.barh([i - height / 2 for i in y], p99, height, label="p99", color="tab:purple")
    right.axvline(20, color="tab:red", linestyle=":", linewidth=1)
    right.text(20, len(names) - 0.4, " p99 target 20 ms", color="tab:red", fontsize=8)
    right.set_xscale("log")
    right.set_xlabel("latency ms (log scale)")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


SWEEP = [(1, 16), (1, 64), (1, 256), (2, 16), (2, 64), (2, 256)]


def sweep_scenarios(connections: int, batch_connections: int, config: tuple[int, int]) -> list[Scenario]:
    label = f"{config[0]} x {config[1]}: "
    return [
        Scenario(label + "receiver, static, 54B", "pushstream", "static", "54B", 1, connections, config=config),
        Scenario(label + "no-op Flask, 54B", "noop", "static", "54B", 1, connections, config=config),
        Scenario(
            label + f"receiver at {FIXED_RATE:,}/s, static, 54B",
            "pushstream",
            "static",
            "54B",
            1,
            128,
            rate=FIXED_RATE,
            config=config,
        ),
        Scenario(
            label + f"receiver, NDJSON x{BATCH:,}, static, 54B",
            "pushstream",
            "static",
            "54B",
            BATCH,
            batch_connections,
            config=config,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="duration of one run (whole seconds)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--connections", type=int, default=128, help="closed loop, single events")
    parser.add_argument("--batch-connections", type=int, default=8, help="closed loop, NDJSON batches")
    parser.add_argument("--sweep", action="store_true", help="compare workers x threads configurations")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this text")
    parser.add_argument("--dir", default=None, help="work directory (default: a temp dir, removed at the end)")
    args = parser.parse_args()
    ensure_wrk()
    work = Path(args.dir or tempfile.mkdtemp(prefix="pushstream-load-"))
    work.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(exist_ok=True)
    try:
        if args.sweep:
            sweep(work, args)
        else:
            config = (args.workers, args.threads)
            scenarios = default_scenarios(args.connections, args.batch_connections, config)
            scenarios = [s for s in scenarios if args.only in s.name]
            measure(work, scenarios, seconds=args.seconds, repeat=args.repeat)
            title = (
                f"Receiver load: {args.workers} worker(s) x {args.threads} threads, "
                "wrk on the same machine"
                f"\n{machine()}, {now()}, median of {args.repeat} runs of {args.seconds} s"
            )
            print("# " + title.replace("\n", "; ") + "\n")
            print(report(scenarios))
            print()
            print(targets(scenarios))
            dump(scenarios, OUT / "load.json")
            plot(scenarios, OUT / "load.png", title)
            shutil.copyfile(OUT / "load.png", HERE / "load.png")
            print(f"\nplot: {OUT / 'load.png'} (copied to bench/load.png)")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


def sweep(work: Path, args: argparse.Namespace) -> None:
    """All configurations run at once and their scenarios are interleaved, so that
    the load of the shared machine hits them alike."""
    found = {config: sweep_scenarios(args.connections, args.batch_connections, config) for config in SWEEP}
    measure(work, [s for scenarios in found.values() for s in scenarios], seconds=args.seconds, repeat=args.repeat)
    rows = []
    for (workers, threads), (single, noop, fixed, batch) in found.items():
        rows.append(
            (
                f"{workers} x {threads}",
                f"{single.median('events_per_s'):,.0f}",
                f"{single.median('p99_ms'):.2f}",
                f"{noop.median('events_per_s'):,.0f}",
                f"{ratio(single, noop):.0%}",
                f"{fixed.median('events_per_s'):,.0f}",
                f"{fixed.median('p50_ms'):.2f}",
                f"{fixed.median('p99_ms'):.2f}",
                f"{batch.median('events_per_s'):,.0f}",
                f"{statistics.median(r['other_cores'] for x in (single, noop, fixed, batch) for r in x.runs):.2f}",
            )
        )
    header = (
        "workers x threads",
        f"receiver events/s ({args.connections} conn)",
        "p99 ms",
        "no-op Flask req/s",
        "vs no-op",
        f"at {FIXED_RATE:,}/s: achieved",
        "p50 ms",
        "p99 ms",
        f"NDJSON x{BATCH:,} events/s",
        "other load (cores)",
    )
    print(f"# Server configurations, static mapping, 54 B — {machine()}, {now()}, median of {args.repeat}\n")
    print(table(rows, header))


def targets(scenarios: list[Scenario]) -> str:
    by_name = {s.name: s for s in scenarios}
    lines = []

    def check(label: str, ok: bool, detail: str) -> None:
        lines.append(f"- {label}: {'met' if ok else 'NOT met'} ({detail})")

    singles = [s for s in scenarios if s.server == "pushstream" and s.events_per_request == 1 and not s.rate]
    fixed = [s for s in scenarios if s.rate == FIXED_RATE]
    batches = [s for s in scenarios if s.events_per_request > 1]
    if singles:
        low = min(s.median("events_per_s") for s in singles)
        check(">= 10,000 single events/s", low >= 10_000, f"lowest {low:,.0f}")
    if fixed:
        worst = max(fixed, key=lambda s: s.median("p99_ms"))
        slowest = min(s.median("events_per_s") for s in fixed)
        check(
            f"p99 <= 20 ms at {FIXED_RATE:,}/s",
            worst.median("p99_ms") <= 20 and slowest >= 0.98 * FIXED_RATE,
            f"worst p99 {worst.median('p99_ms'):.2f} ms ({worst.name}), lowest achieved rate {slowest:,.0f}/s",
        )
    noop = [r for s in singles if (r := ratio(s, by_name.get(f"no-op Flask, {s.payload}"))) is not None]
    if noop:
        check(">= 70 % of a no-op Flask endpoint", min(noop) >= 0.7, f"lowest {min(noop):.0%}")
    hand = [
        r for s in singles if (r := ratio(s, by_name.get(f"hand-written Flask, {s.mapping}, {s.payload}"))) is not None
    ]
    if hand:
        check(">= 3x a hand-written Flask handler", min(hand) >= 3, f"lowest {min(hand):.1f}x")
    if batches:
        low = min(s.median("events_per_s") for s in batches)
        check(f">= 500,000 events/s in NDJSON batches of {BATCH:,}", low >= 500_000, f"lowest {low:,.0f}")
    return "Targets:\n" + "\n".join(lines)


def dump(scenarios: list[Scenario], path: Path) -> None:
    data = [
        {k: v for k, v in vars(s).items() if k != "runs"}
        | {"runs": s.runs, "median_events_per_s": s.median("events_per_s")}
        for s in scenarios
    ]
    path.write_text(json.dumps({"machine": machine(), "date": now(), "scenarios": data}, indent=1))


if __name__ == "__main__":
    main()
