"""Imports beside the coordinator's tick, several tables at once (PostgreSQL target).

The coordinator hands each ready file to an import thread (at most
``import_concurrency`` at once, one per table and per sink) and goes on with its
tick. Measured on a real app (its catalog, storage state, receiver node and the
PostgreSQL target of ``serve --target``), the files built first through the
receiver and uploaded, then imported with the lease given to the coordinator:

- **behind a long import**: one sink's 1,000,000-row keyed file and another
  sink's 1-row file, both ready at once: seconds until each is imported, and the
  longest tick (how long rotation and upload of every sink could be held up);
- **four tables**: four sinks' 300,000-row keyed files, seconds until all are
  imported.

Each case runs at ``import_concurrency`` 1 (one import after another, as before
imports had threads, but without blocking the tick) and 4 (the default into
PostgreSQL), on a fresh database each, interleaved and repeated (medians).
PostgreSQL is a private cluster (``tests/pgcluster.py``) with fsync on.

    .venv/bin/python bench/bench_concurrent_imports.py [--repeat R] [--big-rows N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine, now, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pgcluster import PgCluster, unavailable_reason  # noqa: E402
from pushstream.app import close_app, components, create_app  # noqa: E402
from pushstream.config import ServerConfig  # noqa: E402
from pushstream.coordinator import Coordinator, CoordinatorOptions  # noqa: E402

TOKEN = "bench-imports"
SOURCES = "/v1/branches/default/sources"
COLUMNS = [
    {"type": "path", "name": "id", "path": "id", "rawString": True, "primaryKey": True},
    {"type": "body", "name": "body"},
]
CHUNK = 50_000


class GateLease:
    """The coordinator's lease, given only once the files are ready: until then a
    tick uploads but neither rotates nor imports."""

    def __init__(self) -> None:
        self.open = False

    def held(self) -> bool:
        return self.open

    def release(self) -> None:
        pass


def _task(client: Any, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    response = client.open(path, method=method, json=body, headers={"X-StorageApi-Token": TOKEN})
    task = response.json
    while not task["isFinished"]:
        time.sleep(0.005)
        task = client.open(f"/v1/tasks/{task['taskId']}", headers={"X-StorageApi-Token": TOKEN}).json
    if task["status"] != "success":
        raise RuntimeError(f"{method} {path}: {task}")


def run_case(pg: PgCluster, name: str, rows_by_source: dict[str, int], concurrency: int) -> dict[str, Any]:
    """Seconds until each source's file is imported, and the longest tick."""
    url = pg.create_admin(role=name, database=name)
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(ServerConfig(data_dir=Path(data_dir), api_token=TOKEN, target=url))
        try:
            parts = components(app)
            client = app.test_client()
            lease = GateLease()
            coordinator = Coordinator(
                app.extensions["pushstream.api"].catalog,
                parts.storage,
                parts.layout,
                parts.target,
                CoordinatorOptions(import_concurrency=concurrency),
                lease=lease,
            )
            headers = {"X-StorageApi-Token": TOKEN}
            pad = "x" * 80
            for source, rows in rows_by_source.items():
                _task(client, "POST", SOURCES, {"sourceId": source, "name": source, "type": "http"})
                sink = {"type": "keboola", "tableId": f"in.c-bench.{source}", "mapping": {"columns": COLUMNS}}
                _task(
                    client,
                    "POST",
                    f"{SOURCES}/{source}/sinks",
                    {"sinkId": "k", "name": "k", "type": "table", "table": sink},
                )
                ingest = client.open(f"{SOURCES}/{source}", headers=headers).json["http"]["url"]
                path = "/" + ingest.split("://", 1)[1].split("/", 1)[1]
                for start in range(0, rows, CHUNK):
                    body = "\n".join(f'{{"id": "{i}", "p": "{pad}"}}' for i in range(start, min(rows, start + CHUNK)))
                    response = client.post(path, data=body, headers={"Content-Type": "application/x-ndjson"})
                    assert response.status_code == 200, response.text
                client.open(f"{SOURCES}/{source}/flush", method="POST", headers=headers)
            # The receiver lets go of the closed slices; ticks without the lease upload them.
            while True:
                parts.node.reload()
                parts.node.report()
                coordinator.tick()
                if not parts.storage.has_closing_slices():
                    break
                time.sleep(0.02)
            lease.open = True
            started = time.monotonic()
            imported: dict[str, float] = {}
            longest_tick = 0.0
            while len(imported) < len(rows_by_source):
                tick_started = time.monotonic()
                coordinator.tick()
                longest_tick = max(longest_tick, time.monotonic() - tick_started)
                for source in rows_by_source:
                    if source in imported:
                        continue
                    files = client.open(f"{SOURCES}/{source}/sinks/k/statistics/files", headers=headers).json
                    if any(f["state"] == "imported" for f in files["files"]):
                        imported[source] = time.monotonic() - started
                time.sleep(0.01)
            coordinator.wait_for_imports()
            return {"imported": imported, "longest_tick": longest_tick}
        finally:
            close_app(app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--table-rows", type=int, default=300_000)
    args = parser.parse_args()
    if reason := unavailable_reason():
        sys.exit(f"PostgreSQL is needed: {reason}")
    cases = {
        "behind a long import": {"big": args.big_rows, "small": 1},
        "four tables": {f"t{i}": args.table_rows for i in range(4)},
    }
    levels = (1, 4)
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with PgCluster() as pg:
        for round_ in range(args.repeat):
            for case_index, (case, rows) in enumerate(cases.items()):
                order = levels if (round_ + case_index) % 2 == 0 else levels[::-1]
                for concurrency in order:
                    name = f"b{round_}_{case_index}_{concurrency}"
                    result = run_case(pg, name, rows, concurrency)
                    results.setdefault((case, concurrency), []).append(result)
                    took = ", ".join(f"{k} {v:.2f} s" for k, v in result["imported"].items())
                    print(
                        f"  [{round_ + 1}/{args.repeat}] {case}, concurrency {concurrency}: {took},"
                        f" longest tick {result['longest_tick']:.3f} s",
                        file=sys.stderr,
                        flush=True,
                    )

    def med(case: str, concurrency: int, pick: Any) -> float:
        return statistics.median(pick(r) for r in results[(case, concurrency)])

    behind = "behind a long import"
    rows = [
        (
            f"{concurrency}",
            f"{med(behind, concurrency, lambda r: r['imported']['small']):.2f} s",
            f"{med(behind, concurrency, lambda r: r['imported']['big']):.2f} s",
            f"{med(behind, concurrency, lambda r: r['longest_tick']):.3f} s",
            f"{med('four tables', concurrency, lambda r: max(r['imported'].values())):.2f} s",
        )
        for concurrency in levels
    ]
    print(f"Imports beside the tick, PostgreSQL target, {now()}, {machine()}\n")
    print(
        table(
            rows,
            (
                "import_concurrency",
                f"1-row file imported after (behind {args.big_rows:,} rows)",
                f"{args.big_rows:,}-row file imported after",
                "longest tick",
                f"4 tables x {args.table_rows:,} rows all imported after",
            ),
        )
    )


if __name__ == "__main__":
    main()
