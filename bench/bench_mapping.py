"""Mapping + CSV encoding of a 6-column sink (uuid, datetime, ip, body, 2x path) on
~500 B JSON events: the Rust core's batch API against the pure-Python reference
(orjson + csv), side by side in one run. Then typed columns (``dataType``) against
the same sink with text columns, runs interleaved. Pinned to one core.

    .venv/bin/python bench/bench_mapping.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from common import best_of, machine, now, sample_event, table
from pushstream import Mapping, Record

# The pure-Python reference is test code (tests/mapping_reference.py), not in the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mapping_reference import ReferenceMapping

COLUMNS = [
    {"type": "uuid", "name": "id"},
    {"type": "datetime", "name": "datetime"},
    {"type": "ip", "name": "ip"},
    {"type": "body", "name": "body"},
    {"type": "path", "name": "user", "path": "user.name"},
    {"type": "path", "name": "sku", "path": "items[0].sku", "rawString": True},
]
HEADERS = {"Content-Type": "application/json", "User-Agent": "bench/1.0"}
#: A sink of the sample events with typed columns; TEXT_COLUMNS is the same sink untyped.
TYPED_COLUMNS = [
    {"type": "uuid", "name": "id"},
    {"type": "datetime", "name": "received", "dataType": "timestamp"},
    {"type": "path", "name": "event_id", "path": "id", "dataType": "integer"},
    {"type": "path", "name": "user_id", "path": "user.id", "dataType": "integer"},
    {"type": "path", "name": "event", "path": "event", "rawString": True},
    {"type": "path", "name": "qty", "path": "items[0].qty", "dataType": "integer"},
    {"type": "path", "name": "price", "path": "items[0].price", "dataType": "number"},
    {"type": "path", "name": "at", "path": "ts", "dataType": "timestamp"},
    {"type": "path", "name": "items", "path": "items", "dataType": "json"},
]
TEXT_COLUMNS = [{k: v for k, v in column.items() if k != "dataType"} for column in TYPED_COLUMNS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    bodies = [sample_event(i) for i in range(1000)]
    now_ns = time.time_ns()
    # One batch of 1,000 distinct records, mapped over and over: the shape in which
    # the receiver hands an NDJSON request to the core (its bytes are in cache).
    batch = [Record(body, HEADERS, "10.0.0.1", now_ns) for body in bodies]
    avg = sum(len(b) for b in bodies) / len(bodies)

    mapping = Mapping(COLUMNS)
    reference = ReferenceMapping(COLUMNS)
    ref_records = [(bodies[i % 1000], HEADERS, "10.0.0.1", now_ns) for i in range(args.records // 20)]

    def rust() -> int:
        return sum(mapping.encode_batch(batch).rows for _ in range(args.records // len(batch)))

    def python() -> int:
        reference.encode_batch(ref_records)
        return len(ref_records)

    rust_rate, _ = best_of(rust, args.repeat)
    py_rate, _ = best_of(python, args.repeat)
    print(f"# Mapping + CSV, 6-column sink, {avg:.0f} B events, one core — {machine()}, {now()}\n")
    print(
        table(
            [
                (
                    "pushstream core (Mapping.encode_batch, 1,000 records/call)",
                    f"{rust_rate:,.0f}",
                    f"{1e9 / rust_rate:,.0f}",
                    f"{rust_rate / py_rate:.1f}x",
                ),
                ("pure-Python reference (orjson + csv)", f"{py_rate:,.0f}", f"{1e9 / py_rate:,.0f}", "1.0x"),
            ],
            ("implementation", "rows/s", "ns/row", "vs reference"),
        )
    )

    # Typed vs text columns: the same sink, runs interleaved so that both see the same machine.
    typed, text = Mapping(TYPED_COLUMNS), Mapping(TEXT_COLUMNS)
    assert typed.encode_batch(batch).rows == text.encode_batch(batch).rows == len(batch)

    # Many short rounds, alternating, timed in CPU time of this thread: on the shared
    # machine other processes take the core away at random, which wall-clock rates of
    # long runs show as noise of ±20 % (ratios of CPU times moved by ±4 % between runs).
    def cpu_rate(mapping: Mapping, batches: int) -> float:
        start = time.thread_time_ns()
        rows = sum(mapping.encode_batch(batch).rows for _ in range(batches))
        return rows * 1e9 / (time.thread_time_ns() - start)

    rounds = 10 * args.repeat
    batches = max(1, args.records // len(batch) // 10)
    typed_rates: list[float] = []
    text_rates: list[float] = []
    for _ in range(rounds):
        typed_rates.append(cpu_rate(typed, batches))
        text_rates.append(cpu_rate(text, batches))
    typed_rate, text_rate = statistics.median(typed_rates), statistics.median(text_rates)
    print(
        f"\n# Typed vs text columns, {len(TYPED_COLUMNS)}-column sink (7 typed), one core, "
        f"rows per CPU second, median of {rounds} alternating rounds of {batches * len(batch):,} rows\n"
    )
    print(
        table(
            [
                (
                    "typed (integer ×3, number, timestamp ×2, json)",
                    f"{typed_rate:,.0f}",
                    f"{1e9 / typed_rate:,.0f}",
                    f"{typed_rate / text_rate:.0%}",
                ),
                ("text (the same columns without dataType)", f"{text_rate:,.0f}", f"{1e9 / text_rate:,.0f}", "100%"),
            ],
            ("columns", "rows/s", "ns/row", "vs text"),
        )
    )


if __name__ == "__main__":
    main()
