"""Mapping + CSV encoding of a 6-column sink (uuid, datetime, ip, body, 2x path) on
~500 B JSON events: the Rust core's batch API against the pure-Python reference
(orjson + csv), side by side in one run. Pinned to one core.

    .venv/bin/python bench/bench_mapping.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import time

from common import best_of, machine, now, sample_event, table
from pushstream import Mapping, Record
from pushstream.reference import ReferenceMapping

COLUMNS = [
    {"type": "uuid", "name": "id"},
    {"type": "datetime", "name": "datetime"},
    {"type": "ip", "name": "ip"},
    {"type": "body", "name": "body"},
    {"type": "path", "name": "user", "path": "user.name"},
    {"type": "path", "name": "sku", "path": "items[0].sku", "rawString": True},
]
HEADERS = {"Content-Type": "application/json", "User-Agent": "bench/1.0"}


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


if __name__ == "__main__":
    main()
