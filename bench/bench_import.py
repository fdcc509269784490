"""Import of a 1,000,000-row staging file (6 text columns) into SQLite and PostgreSQL.

Scenarios, each on a fresh database, interleaved and repeated (medians):

- no key: the file appended to an empty table;
- key: the file merged on a random UUID key into a table that already has
  1,000,000 rows (25 % of the file's rows update existing keys, 2 % repeat a key
  of the same file, the rest are new keys).

Typed vs text: one 1,000,000-row file of 7 columns in the core's canonical text
(a UUID, a timestamp, an integer, a number, a boolean, a date, a JSON object)
imported into a table of native columns (``dataType``s) and into an all-text
table (the same file, an untyped sink), without and with a key, side by side.

The clock covers ``Target.import_files`` only: reading the zstd CSV, dedup,
bulk load, merge and the durable commit. For diagnosis the script also times
the pieces alone: parsing (``read_staging``), dedup (``dedup_last``), and the bare
ADBC bulk load of the parsed rows into an empty table without any key.

PostgreSQL runs on a private cluster (``tests/pgcluster.py``) with durable
settings (fsync and synchronous_commit on), sized for bulk loads: shared_buffers
1 GB, max_wal_size 8 GB, wal_compression lz4.

    .venv/bin/python bench/bench_import.py [--rows N] [--repeat R] [--only sqlite|postgresql] [--types-only]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import zstandard

from common import machine, now, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pgcluster import PgCluster, unavailable_reason  # noqa: E402
from pushstream.targets.base import ImportRequest, SinkIdentity, TableSpec  # noqa: E402
from pushstream.targets.postgresql import PostgresTarget  # noqa: E402
from pushstream.targets.rows import dedup_last  # noqa: E402
from pushstream.targets.sqlite import SqliteTarget  # noqa: E402
from pushstream.targets.staging_csv import read_staging  # noqa: E402

COLUMNS = ("id", "received_at", "ip", "body", "headers", "user_agent")
PLAIN = TableSpec("in.c-bench.events", COLUMNS)
KEYED = TableSpec("in.c-bench.events_by_id", COLUMNS, ("id",))
SINK = SinkIdentity(1, "bench", "events")
TYPED_COLUMNS = ("id", "at", "qty", "price", "paid", "day", "body")
TYPED_TYPES = ("string", "timestamp", "integer", "number", "boolean", "date", "json")
#: (typed, keyed) → spec: the same columns with their data types or all text.
TYPE_SPECS = {
    (typed, keyed): TableSpec(
        f"in.c-bench.{'typed' if typed else 'text'}{'_by_id' if keyed else ''}",
        TYPED_COLUMNS,
        ("id",) if keyed else (),
        column_types=TYPED_TYPES if typed else (),
    )
    for typed in (False, True)
    for keyed in (False, True)
}
TARGETS = {
    ("sqlite", "no key"): 1_000_000,
    ("sqlite", "key"): 300_000,
    ("postgresql", "no key"): 500_000,
    ("postgresql", "key"): 200_000,
}
PG_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_buffers": "64MB",
    "wal_compression": "lz4",
    "maintenance_work_mem": "256MB",
    "max_connections": "20",
}
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Mobile/15E148",
    "curl/8.5.0",
    "python-requests/2.32.3",
]
EVENTS = ["page_view", "click", "purchase", "signup", "logout"]


# -- data ------------------------------------------------------------------------


def make_rows(keys: list[str], seed: int) -> pa.Table:
    """Rows of realistic widths (~300 bytes as CSV): a UUID, a Keboola datetime, an
    IP, a JSON body (90–160 B), JSON headers (~70 B) and a user agent."""
    rnd = random.Random(seed)
    n = len(keys)
    received, ips, bodies, headers, agents = [], [], [], [], []
    for i in range(n):
        ms = rnd.randrange(86_400_000)
        received.append(
            f"2026-11-22T{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
        )
        ips.append(f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}")
        bodies.append(
            f'{{"event":"{rnd.choice(EVENTS)}","user":{{"id":{rnd.randrange(10_000_000)}}},'
            f'"url":"https://example.com/p/{rnd.randrange(100_000)}?ref=c{rnd.randrange(100)}",'
            f'"qty":{rnd.randrange(1, 5)},"seq":{i}}}' + " " * rnd.randrange(0, 60)
        )
        headers.append(f'{{"Content-Type":"application/json","X-Request-Id":"{rnd.getrandbits(64):016x}"}}')
        agents.append(rnd.choice(USER_AGENTS))
    return pa.table([keys, received, ips, bodies, headers, agents], names=list(COLUMNS))


def make_typed_rows(n: int, seed: int) -> pa.Table:
    """Rows in the canonical text of the core (~200 bytes as CSV), 1 % NULLs in
    the typed columns (empty fields)."""
    rnd = random.Random(seed)
    columns: list[list[str]] = [[] for _ in TYPED_COLUMNS]
    keys = uuids(rnd, n)
    for i in range(n):
        us = rnd.randrange(86_400_000_000)
        values = [
            keys[i],
            f"2026-11-22T{us // 3_600_000_000:02d}:{us // 60_000_000 % 60:02d}:{us // 1_000_000 % 60:02d}"
            f".{us % 1_000_000:06d}Z",
            str(rnd.randrange(-1000, 100_000)),
            repr(rnd.randrange(1, 1_000_000) / 100),
            rnd.choice(("true", "false")),
            f"2026-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}",
            f'{{"event":"{rnd.choice(EVENTS)}","user":{{"id":{rnd.randrange(10_000_000)}}},"seq":{i}}}',
        ]
        for j, value in enumerate(values):
            columns[j].append("" if j and rnd.random() < 0.01 else value)
    return pa.table(columns, names=list(TYPED_COLUMNS))


def csv_bytes(path: Path) -> int:
    with path.open("rb") as f:
        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        return sum(len(chunk) for chunk in iter(lambda: reader.read(1 << 20), b""))


def write_staging(rows: pa.Table, path: Path) -> Path:
    """Keboola CSV (every field quoted, no header, ``\\n``), zstd level 3 like the
    coordinator, in 4 frames (slices of 4 nodes)."""
    compressor = zstandard.ZstdCompressor(level=3)
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    with path.open("wb") as out:
        step = -(-rows.num_rows // 4)
        for start in range(0, rows.num_rows, step):
            sink = pa.BufferOutputStream()
            pacsv.write_csv(rows.slice(start, step), sink, write_options=options)
            out.write(compressor.compress(sink.getvalue().to_pybytes()))
    return path


def uuids(rnd: random.Random, n: int) -> list[str]:
    return [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(n)]


def make_files(n: int, directory: Path) -> dict[str, Path]:
    rnd = random.Random(42)
    base_keys = uuids(rnd, n)
    updates = rnd.sample(base_keys, n // 4)
    new = uuids(rnd, n - len(updates) - n // 50)
    upsert_keys = updates + new
    upsert_keys += rnd.sample(upsert_keys, n - len(upsert_keys))  # repeats within the file
    rnd.shuffle(upsert_keys)
    files = {
        "plain": write_staging(make_rows(uuids(rnd, n), 1), directory / "plain.csv.zst"),
        "base": write_staging(make_rows(base_keys, 2), directory / "base.csv.zst"),
        "upsert": write_staging(make_rows(upsert_keys, 3), directory / "upsert.csv.zst"),
    }
    return files


def make_typed_file(n: int, directory: Path) -> dict[str, Path]:
    return {"typed": write_staging(make_typed_rows(n, 4), directory / "typed.csv.zst")}


# -- scenarios -------------------------------------------------------------------


class Bench:
    def __init__(self, rows: int, files: dict[str, Path], work: Path, cluster: PgCluster | None) -> None:
        self.rows = rows
        self.files = files
        self.work = work
        self.cluster = cluster
        self.counter = 0

    def request(self, spec: TableSpec, name: str) -> ImportRequest:
        self.counter += 1
        return ImportRequest(spec, f"bench/{self.counter}", [self.files[name]], SINK)

    def timed(self, target: Any, spec: TableSpec, name: str) -> float:
        request = self.request(spec, name)
        start = time.perf_counter()
        result = target.import_files(request)
        elapsed = time.perf_counter() - start
        assert result.rows_read == self.rows and not result.already_imported, result
        return elapsed

    def sqlite(self, keyed: bool) -> float:
        directory = self.work / f"sqlite-{self.counter}"
        target = SqliteTarget(directory / "tables.sqlite")
        try:
            if keyed:
                target.import_files(self.request(KEYED, "base"))
                return self.timed(target, KEYED, "upsert")
            return self.timed(target, PLAIN, "plain")
        finally:
            target.close()
            shutil.rmtree(directory, ignore_errors=True)

    def types(self, kind: str, typed: bool, keyed: bool) -> float:
        """The typed file into an empty table of native columns (``typed``) or of text."""
        spec = TYPE_SPECS[(typed, keyed)]
        if kind == "sqlite":
            directory = self.work / f"sqlite-{self.counter}"
            target: Any = SqliteTarget(directory / "tables.sqlite")
            try:
                return self.timed(target, spec, "typed")
            finally:
                target.close()
                shutil.rmtree(directory, ignore_errors=True)
        assert self.cluster is not None
        name = f"bench_{self.counter}"
        target = PostgresTarget(self.cluster.create_admin(role=name, database=name))
        try:
            target.prepare_sink(SINK, spec)
            self.cluster.execute("CHECKPOINT", database=name)
            return self.timed(target, spec, "typed")
        finally:
            target.close()
            self.cluster.execute(f"DROP DATABASE {name}", f"DROP ROLE {name}")

    def postgresql(self, keyed: bool) -> float:
        assert self.cluster is not None
        name = f"bench_{self.counter}"
        target = PostgresTarget(self.cluster.create_admin(role=name, database=name))
        try:
            if keyed:
                target.import_files(self.request(KEYED, "base"))
                # Steady state: the base load vacuumed and checkpointed, not billed to the import.
                self.cluster.execute('VACUUM (ANALYZE) "in.c-bench".events_by_id', database=name)
                self.cluster.execute("CHECKPOINT", database=name)
                return self.timed(target, KEYED, "upsert")
            self.cluster.execute("CHECKPOINT", database=name)
            return self.timed(target, PLAIN, "plain")
        finally:
            target.close()
            self.cluster.execute(f"DROP DATABASE {name}", f"DROP ROLE {name}")


def pieces(files: dict[str, Path], work: Path, cluster: PgCluster | None) -> dict[str, float]:
    """The parts of an import timed alone (seconds)."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    data = read_staging([files["upsert"]], COLUMNS)
    out["parse (read_staging)"] = time.perf_counter() - start
    start = time.perf_counter()
    dedup_last(data, ("id",))
    out["dedup + sort by key (dedup_last)"] = time.perf_counter() - start

    import adbc_driver_sqlite.dbapi as sqlite_dbapi

    path = work / "ingest-only.sqlite"
    with sqlite_dbapi.connect(str(path), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA page_size = 65536")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.fetchall()
        cur.execute("PRAGMA synchronous = FULL")
        start = time.perf_counter()
        cur.execute("BEGIN IMMEDIATE")
        cur.adbc_ingest("t", data, mode="create")
        cur.execute("COMMIT")
        out["SQLite: ADBC ingest alone (parsed rows, no key, commit)"] = time.perf_counter() - start
    path.unlink()
    out.update(sqlite_temp_route(files, work))
    if cluster is not None:
        import adbc_driver_postgresql.dbapi as pg_dbapi  # type: ignore[import-untyped]

        url = cluster.create_admin(role="bench_ingest", database="bench_ingest")
        with pg_dbapi.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t (" + ", ".join(f"{c} text" for c in COLUMNS) + ")")
            start = time.perf_counter()
            cur.execute("BEGIN")
            cur.adbc_ingest("t", data, mode="append")
            cur.execute("COMMIT")
            out["PostgreSQL: ADBC ingest (COPY) alone (parsed rows, no key, commit)"] = time.perf_counter() - start
            # The merge statement alone: staged (deduplicated) rows into a 1M-row keyed table.
            keyed = ", ".join(f'{c} text COLLATE "C"' if c == "id" else f"{c} text" for c in COLUMNS)
            cur.execute(f"CREATE TABLE k ({keyed}, PRIMARY KEY (id))")
            cur.execute(f"CREATE UNLOGGED TABLE s ({', '.join(f'{c} text' for c in COLUMNS)})")
            cur.adbc_ingest("k", read_staging([files["base"]], COLUMNS), mode="append")
            cur.adbc_ingest("s", dedup_last(data, ("id",)), mode="append")
            sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
            cur.execute("SET jit = off")
            start = time.perf_counter()
            cur.execute("BEGIN")
            cur.execute(f"INSERT INTO k SELECT * FROM s ON CONFLICT (id) DO UPDATE SET {sets}")
            cur.execute("COMMIT")
            out["PostgreSQL: INSERT ... ON CONFLICT alone (staged rows, table of the same size)"] = (
                time.perf_counter() - start
            )
        cluster.execute("DROP DATABASE bench_ingest", "DROP ROLE bench_ingest")
    return out


def sqlite_temp_route(files: dict[str, Path], work: Path) -> dict[str, float]:
    """The textbook route the SQLite target does not take, for comparison: ADBC
    ingest into a TEMP table, then one INSERT ... SELECT (dedup with GROUP BY and
    upsert with a key), parse included."""
    import adbc_driver_sqlite.dbapi as sqlite_dbapi

    out: dict[str, float] = {}
    directory = work / "temp-route"
    target = SqliteTarget(directory / "tables.sqlite")
    target.import_files(ImportRequest(KEYED, "base", [files["base"]], SINK))
    target.ensure_table(PLAIN)
    target.close()
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in COLUMNS[1:])
    statements = {
        "SQLite: TEMP table + INSERT SELECT, no key (not used)": (
            "plain",
            f'INSERT INTO "{PLAIN.table_id}" ({columns}) SELECT {columns} FROM temp.stage',
        ),
        "SQLite: TEMP table + GROUP BY dedup + upsert, key (not used)": (
            "upsert",
            f'INSERT INTO "{KEYED.table_id}" ({columns}) SELECT {columns} FROM'
            f" (SELECT max(rowid), * FROM temp.stage GROUP BY id) WHERE true ON CONFLICT (id) DO UPDATE SET {sets}",
        ),
    }
    with sqlite_dbapi.connect(str(directory / "tables.sqlite"), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA cache_size = -262144")
        cur.execute("PRAGMA temp_store = MEMORY")
        for name, (file, sql) in statements.items():
            start = time.perf_counter()
            data = read_staging([files[file]], COLUMNS)
            cur.execute("BEGIN IMMEDIATE")
            cur.adbc_ingest("stage", data, mode="replace", temporary=True)
            cur.execute(sql)
            cur.execute("COMMIT")
            out[name] = time.perf_counter() - start
    shutil.rmtree(directory, ignore_errors=True)
    return out


def imports(bench: Bench, kinds: list[str], args: argparse.Namespace) -> None:
    """Text imports without and with a key, against the goals."""
    scenarios: dict[tuple[str, str], Callable[[], float]] = {}
    for kind in kinds:
        run = bench.sqlite if kind == "sqlite" else bench.postgresql
        scenarios[(kind, "no key")] = lambda run=run: run(False)
        scenarios[(kind, "key")] = lambda run=run: run(True)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in scenarios}
    for repetition in range(args.repeat):
        for key, scenario in scenarios.items():
            elapsed = scenario()
            times[key].append(elapsed)
            print(f"  run {repetition + 1}: {key[0]:<10} {key[1]:<6} {elapsed:6.2f} s", flush=True)
    rows = []
    for key, values in times.items():
        median = statistics.median(values)
        rate = args.rows / median
        goal = TARGETS[key]
        rows.append(
            (
                key[0],
                key[1],
                f"{median:.2f}",
                f"{rate:,.0f}",
                " / ".join(f"{args.rows / v:,.0f}" for v in values),
                f"{goal:,}",
                f"{rate / goal:.2f}x",
            )
        )
    print(f"\nImport of {args.rows:,} rows, median of {args.repeat}:\n")
    print(table(rows, ("target", "mode", "median s", "rows/s", "runs (rows/s)", "target rows/s", "vs target")))
    print("\nPieces alone (one run):\n")
    parts = pieces(bench.files, bench.work, bench.cluster)
    print(table([(name, f"{s:.2f}", f"{args.rows / s:,.0f}") for name, s in parts.items()], ("piece", "s", "rows/s")))


def typed_vs_text(bench: Bench, kinds: list[str], args: argparse.Namespace) -> None:
    """The typed file into native columns vs into text columns, interleaved."""
    times: dict[tuple[str, str, bool], list[float]] = {}
    for repetition in range(args.repeat):
        for kind in kinds:
            for mode in ("no key", "key"):
                for typed in (False, True):
                    elapsed = bench.types(kind, typed, mode == "key")
                    times.setdefault((kind, mode, typed), []).append(elapsed)
                    label = "typed" if typed else "text"
                    print(f"  run {repetition + 1}: {kind:<10} {mode:<6} {label:<5} {elapsed:6.2f} s", flush=True)
    rows = []
    for kind in kinds:
        for mode in ("no key", "key"):
            text, typed = (statistics.median(times[(kind, mode, t)]) for t in (False, True))
            rows.append(
                (
                    kind,
                    mode,
                    f"{args.rows / text:,.0f}",
                    f"{args.rows / typed:,.0f}",
                    f"{text / typed:.2f}",
                )
            )
    print(f"\nTyped vs text columns, the same {args.rows:,}-row file, median of {args.repeat}:\n")
    print(table(rows, ("target", "mode", "text rows/s", "typed rows/s", "typed / text (rows/s)")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--types-only", action="store_true", help="only the typed vs text comparison")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the PostgreSQL cluster and temp files go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    work = Path(tempfile.mkdtemp(prefix="pushstream-bench-import-"))
    cluster: PgCluster | None = None
    try:
        print(f"machine: {machine()}\ndate: {now()}\ngenerating {args.rows:,}-row staging files ...", flush=True)
        files = {} if args.types_only else make_files(args.rows, work)
        files.update(make_typed_file(args.rows, work))
        for name, path in files.items():
            size = csv_bytes(path)
            print(
                f"  {name}: {size / 1e6:.0f} MB CSV ({size / args.rows:.0f} B/row), "
                f"{path.stat().st_size / 1e6:.0f} MB zstd",
                flush=True,
            )
        kinds = ["sqlite", "postgresql"] if args.only is None else [args.only]
        if "postgresql" in kinds:
            reason = unavailable_reason()
            if reason is not None:
                print(f"PostgreSQL skipped: {reason}")
                kinds.remove("postgresql")
            else:
                cluster = PgCluster(PG_SETTINGS).start()
        bench = Bench(args.rows, files, work, cluster)
        if not args.types_only:
            imports(bench, kinds, args)
        typed_vs_text(bench, kinds, args)
    finally:
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
