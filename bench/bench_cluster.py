"""Cluster mode against single-node mode, side by side in one run on this machine.

Servers (one worker, 64 request threads each, started together):

- **single**: `pushstream serve` in single-node mode (the SQLite control plane,
  local staging) with the same PostgreSQL target as the cluster node (another
  database), so that both pay the same for their imports on this machine;
  `--single-target sqlite` makes it the README's first command (embedded SQLite);
- **cluster**: one node of a cluster, `serve --cluster postgresql://… --staging
  s3://… --target postgresql://…`, on a private PostgreSQL (fsync on) and an
  S3 server (s3s-fs), the same ones the cluster tests use;
- **second node** (for the coordinator takeover only).

Measured, interleaved and repeated (medians):

1. **ingest**: single events (54 B, static mapping) and NDJSON batches of 1,000,
   closed loop with `wrk` (as `bench_load.py`), cluster / single ratio (the
   geometric mean of the rounds' ratios) — the goal is ≥ 90 %. The servers take turns, in an order that rotates every
   round, and each run starts with every server and PostgreSQL idle and the
   page cache written out: what a run left to compress, upload and import
   (and checkpoint) is done before the next run, and its CPU is counted to the
   run's events ("with the pipeline");
2. **coordination cost** of the cluster node while it ingests: PostgreSQL
   transactions and statements per 1,000 events (`pg_stat_database`,
   `pg_stat_statements` is not needed) and the CPU of the PostgreSQL
   processes per event;
3. **import latency**: from the 200 of one event to its row being queryable in
   the target, with a flush right after the 200 (the import conditions add
   their own wait on top), and the PostgreSQL transactions one import costs;
4. **takeover**: `kill -9` of the coordinating node, time until the other
   node coordinates (`GET /v1/nodes`).

    .venv/bin/python bench/bench_cluster.py [--seconds S] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench_load import (
    COLUMNS,
    LUA,
    SMALL_EVENT,
    SOURCES,
    TOKEN,
    Server,
    busy_cpu_seconds,
    ensure_wrk,
    run_wrk,
    settle,
)
from common import QUIET_SETTINGS, free_port, machine, now, settle_disk, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

import pgcluster  # noqa: E402
import s3server  # noqa: E402

BATCH = 1000


def pushstream_command(data_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        str(ROOT / ".venv/bin/python"),
        "-m",
        "pushstream.cli",
        "serve",
        *["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
        *["--workers", "1", "--threads", "64", "--log-level", "warning"],
        *extra,
    ]


def start(name: str, work: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    data_dir = work / name
    return Server(
        name, pushstream_command(data_dir, port, *extra), data_dir, port, {"PUSHSTREAM_API_TOKEN": TOKEN, **(env or {})}
    )


def configure(server: Server, source: str, settings: dict[str, Any]) -> str:
    server.api("POST", SOURCES, json={"sourceId": source, "name": source, "type": "http"})
    if settings:
        values = [{"key": k, "value": v} for k, v in settings.items()]
        server.api("PATCH", f"{SOURCES}/{source}/settings", json={"settings": values})
    table_ = {"type": "keboola", "tableId": f"in.c-bench.{source}", "mapping": {"columns": COLUMNS["static"]}}
    server.api(
        "POST", f"{SOURCES}/{source}/sinks", json={"sinkId": source, "name": source, "type": "table", "table": table_}
    )
    url: str = server.api("GET", f"{SOURCES}/{source}")["http"]["url"]
    return url


class ControlPlane:
    """Counters of the control plane's database and the CPU of PostgreSQL's processes."""

    def __init__(self, pg: pgcluster.PgCluster, database: str) -> None:
        self.pg = pg
        self.database = database

    def transactions(self) -> int:
        [(value,)] = self.pg.execute(
            f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{self.database}'"
        )
        return int(value)

    def settle(self, timeout: float = 120.0, interval: float = 0.5) -> None:
        """Waits until PostgreSQL's processes are idle (an import into the target ends)."""
        deadline = time.monotonic() + timeout
        last = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(interval)
            used = self.cpu_seconds()
            if used - last <= 0.05 * interval:
                return
            last = used

    @staticmethod
    def cpu_seconds() -> float:
        """CPU (user + system) of every process of the postgres user."""
        import pwd

        try:
            uid = pwd.getpwnam("postgres").pw_uid
        except KeyError:
            uid = os.getuid()
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if stat.parent.stat().st_uid != uid:
                    continue
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def ingest(
    servers: dict[str, Server], urls: dict[str, str], work: Path, control: ControlPlane, *, seconds: float, repeat: int
) -> list[dict[str, Any]]:
    lua = work / "post.lua"
    lua.write_text(LUA)
    single_body = work / "single.json"
    single_body.write_bytes(SMALL_EVENT)
    batch_body = work / "batch.ndjson"
    batch_body.write_bytes(b"\n".join([SMALL_EVENT] * BATCH) + b"\n")
    cases = [
        ("single events", single_body, "application/json", 1, 32),
        ("NDJSON x1000", batch_body, "application/x-ndjson", BATCH, 8),
    ]
    for name in servers:  # warm up
        for _, body, kind, _, _ in cases:
            run_wrk(urls[name], body, kind, connections=4, seconds=1, rate=0, lua=lua)
    results: list[dict[str, Any]] = []
    names = list(servers)
    settle(list(servers.values()))
    control.settle()
    settle_disk()
    for round_ in range(repeat):
        for case, body, kind, per_request, connections in cases:
            # The order rotates every round: a run right after another server's run
            # must not always be the same server's.
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                server = servers[name]
                tx_before, pg_cpu_before = control.transactions(), control.cpu_seconds()
                cpu_before, busy_before = server.cpu_seconds(), busy_cpu_seconds()
                run = run_wrk(urls[name], body, kind, connections=connections, seconds=seconds, rate=0, lua=lua)
                events = run["requests_per_s"] * run["seconds"] * per_request
                cpu_run = server.cpu_seconds() - cpu_before
                pg_cpu_run = control.cpu_seconds() - pg_cpu_before
                row = {
                    "round": round_,
                    "case": case,
                    "server": name,
                    "events_per_s": run["requests_per_s"] * per_request,
                    "p99_ms": run["p99_ms"],
                    "errors": run["errors"],
                    "cpu_us_per_event": cpu_run * 1e6 / events,
                    "pg_tx_per_1000": (control.transactions() - tx_before) * 1000 / events,
                    "pg_tx_per_s": (control.transactions() - tx_before) / run["seconds"],
                    "pg_cpu_us_per_event": pg_cpu_run * 1e6 / events,
                    "other_cores": max(0.0, busy_cpu_seconds() - busy_before - cpu_run - run["client_cpu"])
                    / run["seconds"],
                }
                # Every server and PostgreSQL idle before the next run: the slices this
                # run filled are compressed, uploaded and imported (500 MB files of the
                # NDJSON runs) now, not during another measurement. What that costs
                # counts to this run's events.
                settle_started = time.monotonic()
                settle(list(servers.values()), timeout=300)
                control.settle(timeout=300)
                settle_disk()
                row["settle_s"] = time.monotonic() - settle_started
                row["events"] = events
                row["pipeline_cpu_s"] = server.cpu_seconds() - cpu_before
                row["pipeline_pg_cpu_s"] = control.cpu_seconds() - pg_cpu_before
                results.append(row)
                print(
                    f"  [{round_ + 1}/{repeat}] {case} {name}: {row['events_per_s']:,.0f} events/s, "
                    f"PG {row['pg_tx_per_1000']:.2f} tx/1000 events, node CPU {row['cpu_us_per_event']:.2f} us/event"
                    f" ({row['pipeline_cpu_s'] * 1e6 / events:.2f} with the pipeline, idle again after"
                    f" {row['settle_s']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def import_latency(
    server: Server, url: str, source: str, rows_of: Any, control: ControlPlane, *, count: int
) -> tuple[list[float], list[int]]:
    """Seconds from the 200 of one event to its row in the target (flush right after)."""
    latencies, transactions = [], []
    for i in range(count):
        marker = f"latency-{source}-{i}-{time.time_ns()}"
        tx_before = control.transactions()
        response = requests.post(
            url, data=f'{{"marker":"{marker}"}}', headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code == 200, response.text
        acknowledged = time.monotonic()
        server.api("POST", f"{SOURCES}/{source}/flush", params={"wait": "60"})
        while marker not in rows_of():
            if time.monotonic() - acknowledged > 120:
                raise RuntimeError(f"{source}: the row did not arrive")
            time.sleep(0.01)
        latencies.append(time.monotonic() - acknowledged)
        transactions.append(control.transactions() - tx_before)
    return latencies, transactions


def takeover(work: Path, extra: tuple[str, ...], env: dict[str, str], repeat: int) -> list[float]:
    """Two nodes; kill -9 the coordinating one; seconds until the other coordinates."""
    times = []
    nodes = {name: start(name, work, *extra, "--node-name", name, env=env) for name in ("t1", "t2")}
    try:
        for _ in range(repeat):
            holder = wait_coordinator(nodes)
            other = next(n for n in nodes if n != holder)
            os.killpg(nodes[holder].process.pid, signal.SIGKILL)
            nodes[holder].process.wait()
            killed = time.monotonic()
            while wait_coordinator({other: nodes[other]}, timeout=120) != other:
                pass
            times.append(time.monotonic() - killed)
            nodes[holder] = start(holder, work, *extra, "--node-name", holder, env=env)
    finally:
        for server in nodes.values():
            server.stop()
    return times


def wait_coordinator(nodes: dict[str, Server], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for server in nodes.values():
            try:
                listed = server.api("GET", "/v1/nodes")["nodes"]
            except requests.RequestException:
                continue
            for node in listed:
                if node["alive"] and node["coordinator"] and node["name"] in nodes:
                    return str(node["name"])
        if time.monotonic() > deadline:
            raise RuntimeError("no coordinator")
        time.sleep(0.05)


def median(rows: list[dict[str, Any]], case: str, server: str, key: str) -> float:
    return statistics.median(r[key] for r in rows if r["case"] == case and r["server"] == server)


def per_event(rows: list[dict[str, Any]], server: str, key: str) -> float:
    """Microseconds of `key` (CPU seconds) per event over all runs of a server, both
    cases: one file takes the events of both, and its import follows whichever run
    crossed its size condition."""
    chosen = [r for r in rows if r["server"] == server]
    return sum(r[key] for r in chosen) * 1e6 / sum(r["events"] for r in chosen)


def round_ratios(rows: list[dict[str, Any]], case: str) -> list[float]:
    """Cluster / single of each round."""
    by_round: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["case"] == case:
            by_round.setdefault(r["round"], {})[r["server"]] = r["events_per_s"]
    return [v["cluster"] / v["single"] for _, v in sorted(by_round.items())]


def ratio(rows: list[dict[str, Any]], case: str) -> float:
    """The geometric mean of the rounds' ratios. On this VM the second run of a
    round is slower (it follows the first run's pipeline work: compression and a
    500 MB import), whichever server it is; with as many rounds in each order,
    the mean of the ratios cancels that, where a median picks one side."""
    return statistics.geometric_mean(round_ratios(rows, case))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=4, help="rounds (even: each server first as often)")
    parser.add_argument("--latency-samples", type=int, default=7)
    parser.add_argument(
        "--single-target",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="the single node's target: the cluster's PostgreSQL (another database; default, so that"
        " both pay the same for their imports) or the embedded SQLite of the README's first command",
    )
    args = parser.parse_args()
    ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    with pgcluster.cluster() as pg:
        control_url = pg.create_admin("bench_control", "bench_control")
        target_url = pg.create_admin("bench_target", "bench_target")
        control = ControlPlane(pg, "bench_control")
        s3 = s3server.S3Server(work / "s3").start()
        s3.create_bucket("pushstream")
        cluster_args = ("--cluster", control_url, "--staging", "s3://pushstream/bench", "--target", target_url)
        servers: dict[str, Server] = {}
        try:
            single_args: tuple[str, ...] = ()
            if args.single_target == "postgresql":
                single_args = ("--target", pg.create_admin("bench_single_target", "bench_single_target"))
            servers["single"] = start("single", work, *single_args)
            servers["cluster"] = start("cluster", work, *cluster_args, "--node-name", "c1", env=s3.environment)
            import sqlite3

            def single_rows() -> str:
                if args.single_target == "postgresql":
                    return target_rows("bench_single_target")
                try:
                    with sqlite3.connect(servers["single"].data_dir / "tables.sqlite") as db:
                        return " ".join(str(r) for r in db.execute('SELECT * FROM "in.c-bench.latency"'))
                except sqlite3.Error:
                    return ""

            def target_rows(database: str) -> str:
                try:
                    return " ".join(
                        str(r) for r in pg.execute('SELECT * FROM "in.c-bench"."latency"', database=database)
                    )
                except Exception:
                    return ""

            def cluster_rows() -> str:
                return target_rows("bench_target")

            latency_urls = {name: configure(server, "latency", {}) for name, server in servers.items()}
            latency = {
                "single": import_latency(
                    servers["single"],
                    latency_urls["single"],
                    "latency",
                    single_rows,
                    control,
                    count=args.latency_samples,
                ),
                "cluster": import_latency(
                    servers["cluster"],
                    latency_urls["cluster"],
                    "latency",
                    cluster_rows,
                    control,
                    count=args.latency_samples,
                ),
            }
            # After the latency: the big imports the NDJSON runs cause would hold up its flushes.
            urls = {name: configure(server, "quiet", QUIET_SETTINGS) for name, server in servers.items()}
            rows = ingest(servers, urls, work, control, seconds=args.seconds, repeat=args.repeat)
            for server in servers.values():
                server.stop()
            servers.clear()
            takeovers = takeover(work / "takeover", cluster_args, s3.environment, args.repeat)
        finally:
            for server in servers.values():
                server.stop()
            s3.stop()
            shutil.rmtree(work, ignore_errors=True)

    lines = [f"Cluster mode vs single node (its target: {args.single_target}), {now()}, {machine()}", ""]
    ingest_rows = []
    for case in ("single events", "NDJSON x1000"):
        ingest_rows.append(
            (
                case,
                f"{median(rows, case, 'single', 'events_per_s'):,.0f}",
                f"{median(rows, case, 'cluster', 'events_per_s'):,.0f}",
                f"{ratio(rows, case):.0%} ({', '.join(f'{r:.0%}' for r in round_ratios(rows, case))})",
                f"{median(rows, case, 'cluster', 'pg_tx_per_1000'):.2f}"
                f" ({median(rows, case, 'cluster', 'pg_tx_per_s'):.0f}/s)",
                f"{median(rows, case, 'cluster', 'pg_cpu_us_per_event'):.2f}",
                f"{median(rows, case, 'single', 'cpu_us_per_event'):.1f}"
                f" / {median(rows, case, 'cluster', 'cpu_us_per_event'):.1f}",
            )
        )
    lines.append(
        table(
            ingest_rows,
            (
                "ingest",
                "single node events/s",
                "cluster node events/s",
                "cluster / single (rounds)",
                "PG tx per 1000 events (per s)",
                "PG CPU us/event",
                "node CPU us/event single / cluster",
            ),
        )
    )
    lines.append("")
    lines.append(
        "CPU per event with the pipeline (each run until every server and PostgreSQL are idle again), all runs:"
        f" single node {per_event(rows, 'single', 'pipeline_cpu_s'):.2f} us"
        f" + PostgreSQL {per_event(rows, 'single', 'pipeline_pg_cpu_s'):.2f} us,"
        f" cluster node {per_event(rows, 'cluster', 'pipeline_cpu_s'):.2f} us"
        f" + PostgreSQL {per_event(rows, 'cluster', 'pipeline_pg_cpu_s'):.2f} us (control plane and target)"
    )
    lines.append("")
    latency_rows = [
        (
            name,
            f"{statistics.median(values) * 1000:,.0f} ms",
            f"{min(values) * 1000:,.0f} ms",
            f"{max(values) * 1000:,.0f} ms",
            f"{statistics.median(tx):.0f}" if name == "cluster" else "-",
        )
        for name, (values, tx) in latency.items()
    ]
    lines.append(
        table(latency_rows, ("import latency (200 -> queryable, flush)", "median", "min", "max", "PG tx per import"))
    )
    lines.append("")
    lines.append(
        f"coordinator takeover after kill -9 of its node: median {statistics.median(takeovers):.1f} s "
        f"(runs: {', '.join(f'{t:.1f}' for t in takeovers)})"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
