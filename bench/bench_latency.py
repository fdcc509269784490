"""End-to-end latency: from the `200 OK` of an event to the row being queryable in
its table, on a real `pushstream serve` with the SQLite target.

The import interval trigger is the shortest the settings allow (30 s); the upload
interval 1 s. An event is sent right after its sink's file is opened (a flush
opens a new one), then the table is polled every 10 ms. The figure that matters
is the delay beyond the interval trigger (target: ≤ 2 s).

    .venv/bin/python bench/bench_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from common import machine, now, table

TOKEN = "bench-token"
BASE = "/v1/branches/default/sources"
INTERVAL = 30.0


def wait_task(url: str, response: requests.Response) -> None:
    task = response.json()
    while not task["isFinished"]:
        time.sleep(0.01)
        task = requests.get(f"{url}/v1/tasks/{task['taskId']}", headers={"X-StorageApi-Token": TOKEN}).json()
    assert task["status"] == "success", task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="pushstream-latency-"))
    port = 18000 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PUSHSTREAM_API_TOKEN": TOKEN}
    server = subprocess.Popen(
        [sys.executable, "-m", "pushstream.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    headers = {"X-StorageApi-Token": TOKEN}
    try:
        for _ in range(300):
            try:
                if requests.get(f"{url}/health-check", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        wait_task(url, requests.post(f"{url}{BASE}", headers=headers, json={"name": "lat", "type": "http"}))
        columns = [{"type": "body", "name": "body"}]
        sink = {
            "name": "t",
            "type": "table",
            "table": {"type": "keboola", "tableId": "in.c-bench.latency", "mapping": {"columns": columns}},
        }
        wait_task(url, requests.post(f"{url}{BASE}/lat/sinks", headers=headers, json=sink))
        settings = [
            {"key": "storage.level.target.import.trigger.interval", "value": "30s"},
            {"key": "storage.level.staging.upload.trigger.interval", "value": "1s"},
        ]
        wait_task(
            url, requests.patch(f"{url}{BASE}/lat/sinks/t/settings", headers=headers, json={"settings": settings})
        )
        ingest = requests.get(f"{url}{BASE}/lat", headers=headers).json()["http"]["url"]
        delays = []
        for run in range(args.runs):
            requests.post(f"{url}{BASE}/lat/flush?wait=30", headers=headers)  # a fresh file opens now
            opened = time.monotonic()
            body = f'{{"run": {run}}}'
            assert requests.post(ingest, data=body, headers={"Content-Type": "application/json"}).status_code == 200
            acknowledged = time.monotonic()
            db = sqlite3.connect(data_dir / "tables.sqlite")
            while True:
                try:
                    found = db.execute('SELECT 1 FROM "in.c-bench.latency" WHERE body = ?', (body,)).fetchone()
                except sqlite3.OperationalError:
                    found = None
                if found:
                    break
                time.sleep(0.01)
            visible = time.monotonic()
            db.close()
            delays.append((visible - acknowledged, visible - opened - INTERVAL))
            print(
                f"run {run}: visible {visible - acknowledged:.2f} s after the 200, "
                f"{visible - opened - INTERVAL:+.2f} s past the interval",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(30)
    print(f"\n# End-to-end latency, import interval 30 s — {machine()}, {now()}, median of {args.runs}\n")
    print(
        table(
            [
                ("200 → queryable", f"{statistics.median(d[0] for d in delays):.2f} s"),
                ("beyond the interval trigger", f"{statistics.median(d[1] for d in delays):+.2f} s"),
            ],
            ("measure", "median"),
        )
    )


if __name__ == "__main__":
    main()
