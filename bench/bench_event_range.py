"""What the event-time range of an import costs (issue 15, statistics by event time).

The same 1,000,000-row typed file (``bench_import``'s 7 typed columns, a
timestamp among them) is

- converted to Arrow types (``Conversion.table``) without an event-time column
  and with ``at`` as the event-time column (one ``min_max`` per batch on the
  converted timestamps), and
- imported into a fresh SQLite table (``SqliteTarget.import_files``, no key:
  the streamed path) by a sink without and with the event-time column,

side by side, interleaved, repeated (medians).

    .venv/bin/python bench/bench_event_range.py [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_import import SINK, TYPED_COLUMNS, TYPED_TYPES, make_typed_rows, write_staging
from common import machine, now, table
from pushstream.targets.base import ImportRequest, TableSpec
from pushstream.targets.sqlite import TEXT_TYPES, SqliteTarget
from pushstream.targets.staging_csv import Conversion, read_staging


def spec(event_time: bool) -> TableSpec:
    return TableSpec(
        f"in.c-bench.{'timed' if event_time else 'untimed'}",
        TYPED_COLUMNS,
        column_types=TYPED_TYPES,
        event_time_column="at" if event_time else None,
    )


def convert(text_rows: object, event_time: bool) -> float:
    conversion = Conversion(TYPED_COLUMNS, TYPED_TYPES, TEXT_TYPES, event_time="at" if event_time else None)
    start = time.perf_counter()
    conversion.table(text_rows)
    elapsed = time.perf_counter() - start
    assert (conversion.event_range is not None) == event_time
    return elapsed


def import_once(path: Path, work: Path, event_time: bool, run: int) -> float:
    target = SqliteTarget(work / f"tables-{run}-{int(event_time)}.sqlite")
    try:
        table_spec = spec(event_time)
        target.ensure_table(table_spec)
        request = ImportRequest(spec=table_spec, import_id=f"bench-{run}", paths=[path], sink=SINK)
        start = time.perf_counter()
        result = target.import_files(request)
        elapsed = time.perf_counter() - start
        assert (result.event_range is not None) == event_time
        return elapsed
    finally:
        target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"# event-time range of an import, {args.rows:,} typed rows, median of {args.repeat}")
    print(f"# {machine()}, {now()}")
    with tempfile.TemporaryDirectory(prefix="bench-event-range-") as tmp:
        work = Path(tmp)
        path = write_staging(make_typed_rows(args.rows, 4), work / "typed.csv.zst")
        text_rows = read_staging([path], TYPED_COLUMNS)
        times: dict[tuple[str, bool], list[float]] = {}
        for run in range(args.repeat):
            # Alternating which goes first: neither gets the cold caches every time.
            for event_time in (False, True) if run % 2 == 0 else (True, False):
                times.setdefault(("conversion", event_time), []).append(convert(text_rows, event_time))
                times.setdefault(("sqlite import", event_time), []).append(import_once(path, work, event_time, run))
                for f in work.glob("tables-*"):
                    f.unlink()
    rows = []
    for what in ("conversion", "sqlite import"):
        without, with_range = (statistics.median(times[(what, e)]) for e in (False, True))
        rows.append(
            (
                what,
                f"{args.rows / without:,.0f}",
                f"{args.rows / with_range:,.0f}",
                f"{(with_range - without) * 1e9 / args.rows:.1f}",
                f"{with_range / without:.3f}",
            )
        )
    print(table(rows, ("step", "rows/s without", "rows/s with range", "ns/row added", "with / without")))


if __name__ == "__main__":
    main()
