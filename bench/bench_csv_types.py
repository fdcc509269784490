"""Typed CSV in `pushstream ingest`: the translation of a CSV file into NDJSON
(what `ingest --dry-run` does, and what `ingest` does before it sends), with every
column a string vs typed columns, side by side in one run.

Scenarios, interleaved in every repetition, on the same file (8 columns:
timestamp, two doubles, integer, boolean, date, string, JSON):

- **strings**: no types (today's translation, every value a JSON string);
- **3 numbers**: `--schema 'long DOUBLE, lat DOUBLE, n BIGINT'`;
- **all typed**: `--schema` with all 8 columns (7 typed, one STRING).

    .venv/bin/python bench/bench_csv_types.py [--rows 300000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from common import machine, now, table
from pushstream.client.csv_types import CsvTypes
from pushstream.client.inputs import prepare_inputs

HEADER = "t,long,lat,n,ok,d,s,j\n"
SCENARIOS = {
    "strings": None,
    "3 numbers": "long DOUBLE, lat DOUBLE, n BIGINT",
    "all typed": "t TIMESTAMP, long DOUBLE, lat DOUBLE, n BIGINT, ok BOOLEAN, d DATE, s STRING, j JSON",
}


def generate(path: Path, rows: int) -> None:
    rnd = random.Random(15)
    with path.open("w") as f:
        f.write(HEADER)
        for i in range(rows):
            f.write(
                f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z,"
                f"{rnd.uniform(-180, 180):.6f},{rnd.uniform(-90, 90):.6f},{rnd.randrange(10**9)},"
                f"{'true' if i % 3 else 'false'},2026-11-{1 + i % 28:02d},user-{i % 977},"
                f'"{{""k"": {i % 10}}}"\n'
            )


def run_once(path: Path, schema: str | None) -> float:
    types = CsvTypes.from_schema(schema) if schema else None
    started = time.perf_counter()
    with prepare_inputs([str(path)], csv_types=types):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-csv-types-") as tmp:
        path = Path(tmp) / "typed.csv"
        generate(path, args.rows)
        size = path.stat().st_size
        times: dict[str, list[float]] = {name: [] for name in SCENARIOS}
        run_once(path, None)  # warm the page cache
        for _ in range(args.repeat):
            for name, schema in SCENARIOS.items():
                times[name].append(run_once(path, schema))
    print(f"{now()}  {machine()}")
    print(f"CSV {args.rows:,} rows, {size / 1e6:.1f} MB, median of {args.repeat} runs (interleaved)\n")
    base = statistics.median(times["strings"])
    rows: list[tuple[str, ...]] = []
    for name, measured in times.items():
        median = statistics.median(measured)
        rows.append(
            (
                name,
                f"{args.rows / median:,.0f}",
                f"{median:.2f}",
                f"{base / median:.2f}",
                " / ".join(f"{args.rows / t / 1000:,.0f}k" for t in measured),
            )
        )
    print(table(rows, ("scenario", "rows/s", "s", "vs strings", "runs")))


if __name__ == "__main__":
    main()
