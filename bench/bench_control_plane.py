"""The control plane: SQLite (``state.sqlite``, single node) vs PostgreSQL
(``serve --cluster``), side by side in one run.

- **storage transitions/s**: one thread moving a sink's files and slices the way
  the receivers' rotation and the coordinator do, one transaction per step:
  ``rotate_slice``; and the whole life of a file — ``rotate_file`` (close + open),
  the node's report of the closed slice, ``mark_uploaded`` (the file moves on to
  importing), ``mark_imported`` — four transactions;
- **catalog reads/s**: what a receiver reads when it (re)builds the routes of a
  source (``get_sources_for_ingest`` + ``list_sinks``), and what every API request
  reads (``authenticate``);
- **round trips**: statements sent to PostgreSQL per transition and per read
  (each one round trip; ``BEGIN`` and the writer lock are one);
- **writers at once**: 4 threads, each rotating the slices of its own sink: the
  writer lock (``pg_advisory_xact_lock``, what pushstream does) vs ``SERIALIZABLE``
  transactions retried on a serialization failure (the alternative), and SQLite.

Both durable: SQLite in WAL mode with ``synchronous=FULL``; PostgreSQL on a private
cluster (``tests/pgcluster.py``) with fsync and ``synchronous_commit`` on, over
TCP on 127.0.0.1. Scenarios alternate, each repeated; medians reported.

    .venv/bin/python bench/bench_control_plane.py [--seconds S] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine, now, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402

from pgcluster import PgCluster, unavailable_reason  # noqa: E402
from pushstream.catalog.models import By, Event, Sink, Source, Version  # noqa: E402
from pushstream.catalog.pg_connections import PgConnections  # noqa: E402
from pushstream.catalog.postgresql import PgCatalog  # noqa: E402
from pushstream.catalog.sqlite import SqliteCatalog  # noqa: E402
from pushstream.errors import StoreUnavailableError  # noqa: E402
from pushstream.storage.layout import SinkKey  # noqa: E402
from pushstream.storage.pg_state import PgStorageState  # noqa: E402
from pushstream.storage.revision import revision_file  # noqa: E402
from pushstream.storage.sqlite_state import SqliteStorageState  # noqa: E402
from pushstream.storage.state import NodeSliceStats, SliceRef  # noqa: E402

SINK = SinkKey(1, "bench", "events")
#: The sink of the file life scenario (its files have one slice each).
FILE_SINK = SinkKey(1, "bench", "files")
COLUMNS = '[{"type":"body","name":"b"}]'
AT = "2026-12-01T00:00:00.000Z"


def _version() -> Version:
    return Version(number=1, hash="0123456789abcdef", description="", at=AT, by=By())


def setup_catalog(catalog: Any) -> str:
    """A branch, a source with three sinks and a token; the token's secret."""
    catalog.ensure_branch(1, 1, default=True)
    with catalog.transaction() as tx:
        tx.put_source(Source(1, 1, "bench", "bench", "s" * 48, _version(), Event(at=AT, by=By())))
        for sink_id in ("a", "b", "c"):
            tx.put_sink(
                Sink(
                    project_id=1,
                    branch_id=1,
                    source_id="bench",
                    sink_id=sink_id,
                    name=sink_id,
                    table={
                        "type": "keboola",
                        "tableId": f"in.c-bench.{sink_id}",
                        "mapping": {"columns": [{"type": "body", "name": "b"}]},
                    },
                    version=_version(),
                    created=Event(at=AT, by=By()),
                )
            )
        tx.bump_revision()
    _, secret = catalog.create_token("bench", "admin")
    return secret


def rate(step: Callable[[], None], seconds: float) -> tuple[float, int]:
    """Steps per second over ``seconds``, and how many steps ran."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        step()
        count += 1
    return count / (time.perf_counter() - start), count


def scenarios(storage: Any, catalog: Any, secret: str) -> dict[str, Callable[[], None]]:
    with storage.atomic() as tx:
        tx.ensure_writing(SINK, "in.c-bench.events", COLUMNS)
        tx.ensure_writing(FILE_SINK, "in.c-bench.files", COLUMNS)

    def rotate_slice() -> None:
        with storage.atomic() as tx:
            tx.rotate_slice(SINK)

    def file_life() -> None:
        with storage.atomic() as tx:
            current = tx.writing_slice(FILE_SINK)
            tx.rotate_file(FILE_SINK)
        ref = SliceRef(FILE_SINK, current.file_id, current.slice_id)
        storage.report("node-1", [NodeSliceStats(ref, True, 10, 1000, 1, 2)])
        with storage.atomic() as tx:
            tx.mark_uploaded(ref, 10, 1000, 300)
        with storage.atomic() as tx:
            tx.mark_imported(ref.file, 0)

    def routes() -> None:
        for source in catalog.get_sources_for_ingest(1, "bench"):
            catalog.list_sinks(source.branch_id, "bench")

    def authenticate() -> None:
        assert catalog.authenticate(secret) is not None

    return {
        "rotate_slice (1 tx)": rotate_slice,
        "file life (4 tx)": file_life,
        "routes of a source (read)": routes,
        "authenticate (read)": authenticate,
    }


class SerializableConnections(PgConnections):
    """The alternative to the writer lock: every write transaction ``SERIALIZABLE``."""

    def write(self) -> Any:
        return self._transaction("BEGIN ISOLATION LEVEL SERIALIZABLE")


def concurrent_rotations(storage: Any, seconds: float, threads: int = 4) -> tuple[float, float]:
    """Committed ``rotate_slice`` transactions per second of ``threads`` threads,
    each on a sink of its own; and retries per committed transaction (serialization
    failures, retried at once)."""
    sinks = [SinkKey(1, "bench", f"thread-{i}") for i in range(threads)]
    with storage.atomic() as tx:
        for sink in sinks:
            tx.ensure_writing(sink, "in.c-bench.t", COLUMNS)
    done = [0] * threads
    retries = [0] * threads
    stop = threading.Event()

    def work(i: int) -> None:
        while not stop.is_set():
            try:
                with storage.atomic() as tx:
                    tx.rotate_slice(sinks[i])
            except StoreUnavailableError as exc:
                if not isinstance(exc.__cause__, psycopg.errors.SerializationFailure):
                    raise
                retries[i] += 1
                continue
            done[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return sum(done) / elapsed, sum(retries) / max(1, sum(done))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        sys.exit(f"PostgreSQL is needed: {reason}")
    print(f"# control plane, {now()}, {machine()}")
    with tempfile.TemporaryDirectory() as tmp, PgCluster({"max_connections": "20"}) as pg:
        url = pg.create_admin()
        sqlite_dir, pg_dir = Path(tmp, "sqlite"), Path(tmp, "pg")
        sqlite_dir.mkdir()
        pg_dir.mkdir()
        backends: dict[str, tuple[Any, Any]] = {
            "sqlite": (SqliteStorageState(sqlite_dir / "state.sqlite"), SqliteCatalog(sqlite_dir / "state.sqlite")),
            "postgresql": (
                PgStorageState(url, revisions=revision_file(pg_dir)),
                PgCatalog(url, storage_revisions=revision_file(pg_dir)),
            ),
        }
        steps = {
            name: scenarios(storage, catalog, setup_catalog(catalog)) for name, (storage, catalog) in backends.items()
        }
        rates: dict[tuple[str, str], list[float]] = {}
        trips: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for scenario in steps["sqlite"]:
                for name in ("sqlite", "postgresql"):
                    storage, catalog = backends[name]
                    before = storage.round_trips + catalog.round_trips if name == "postgresql" else 0
                    per_second, count = rate(steps[name][scenario], args.seconds)
                    rates.setdefault((scenario, name), []).append(per_second)
                    if name == "postgresql":
                        sent = storage.round_trips + catalog.round_trips - before
                        trips.setdefault(scenario, []).append(sent / count)
        rows = []
        for scenario in steps["sqlite"]:
            sqlite_rate = statistics.median(rates[(scenario, "sqlite")])
            pg_rate = statistics.median(rates[(scenario, "postgresql")])
            rows.append(
                (
                    scenario,
                    f"{sqlite_rate:,.0f}",
                    f"{pg_rate:,.0f}",
                    f"{pg_rate / sqlite_rate:.2f}x",
                    f"{statistics.median(trips[scenario]):.1f}",
                )
            )
        print(f"\nmedian of {args.repeat} x {args.seconds:g} s, one thread, per second:\n")
        print(table(rows, ("scenario", "SQLite /s", "PostgreSQL /s", "PG vs SQLite", "PG round trips")))
        serializable = PgStorageState(url, revisions=revision_file(pg_dir))
        serializable._pool = SerializableConnections(url)
        writers = {
            "SQLite (BEGIN IMMEDIATE)": backends["sqlite"][0],
            "PostgreSQL, writer lock (pushstream)": backends["postgresql"][0],
            "PostgreSQL, SERIALIZABLE + retry": serializable,
        }
        concurrent: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            for name, storage in writers.items():
                concurrent.setdefault(name, []).append(concurrent_rotations(storage, args.seconds))
        rows = [
            (
                name,
                f"{statistics.median(r for r, _ in results):,.0f}",
                f"{statistics.median(x for _, x in results):.2f}",
            )
            for name, results in concurrent.items()
        ]
        print(f"\n4 threads, rotate_slice each on its own sink, median of {args.repeat} x {args.seconds:g} s:\n")
        print(table(rows, ("writers", "transitions/s", "retries per transition")))
        serializable.close()
        for storage, catalog in backends.values():
            storage.close()
            catalog.close()


if __name__ == "__main__":
    main()
