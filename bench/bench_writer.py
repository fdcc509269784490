"""Durable slice writer, `mode=disk`, `wait=true`, 1 KB rows: the setup of Keboola's
published writer benchmark (1,000 concurrent writers, 198.5k rows/s).

Runs the Rust benchmark binary (`rust/core/examples/bench_writer.rs`) in the two
ways concurrent writers can be run here, plus the Python API from threads:

- 1,000 logical writers multiplexed on 4 OS threads (like Go's goroutines in
  Keboola's benchmark): each writer has one row in flight and writes its next row
  only once the previous one is durable;
- 1,000 OS threads, one per writer (context switches dominate on 2 cores);
- 64 Python threads calling `SliceWriter.write` (the GIL is released while waiting).

    .venv/bin/python bench/bench_writer.py [--seconds S] [--repeat R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import machine, now, table
from pushstream import SliceWriter

ROOT = Path(__file__).resolve().parent.parent
KEBOOLA_ROWS_PER_S = 198_500


def build() -> Path:
    env = dict(os.environ)
    out = subprocess.run(
        [
            "cargo",
            "build",
            "--release",
            "-q",
            "-p",
            "pushstream-core",
            "--example",
            "bench_writer",
            "--message-format=json",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("executable"):
            return Path(message["executable"])
    raise RuntimeError("cargo did not report the benchmark binary")


def run_rust(binary: Path, writers: int, seconds: float, style: str, directory: str) -> dict[str, float]:
    out = subprocess.run(
        [str(binary), str(writers), "1024", str(seconds), "disk", style, directory],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_python(threads: int, seconds: float, directory: str) -> dict[str, float]:
    path = Path(directory) / f"bench-py-{os.getpid()}.csv"
    row = [["x" * 1019]]  # 1,024 bytes with quotes and newline
    stop = time.monotonic() + seconds
    counts = [0] * threads
    with SliceWriter(path) as writer:

        def work(i: int) -> None:
            n = 0
            while time.monotonic() < stop:
                writer.write(row)
                n += 1
            counts[i] = n

        start = time.perf_counter()
        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - start
        syncs = writer.stats.syncs
    path.unlink()
    rows = sum(counts)
    return {"rows_per_s": rows / elapsed, "rows_per_sync": rows / max(syncs, 1), "p50_ms": float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="directory on the disk to measure (default: a temp dir)")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="pushstream-bench-")
    binary = build()

    scenarios = {
        "1,000 writers on 4 threads (tasks)": lambda: run_rust(binary, 1000, args.seconds, "tasks", directory),
        "1,000 writers, one OS thread each": lambda: run_rust(binary, 1000, args.seconds, "threads", directory),
        "1 writer": lambda: run_rust(binary, 1, args.seconds, "tasks", directory),
        "64 Python threads (SliceWriter.write)": lambda: run_python(64, args.seconds, directory),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in scenarios}
    for _ in range(args.repeat):  # interleaved, so drift of the shared disk hits all alike
        for name, fn in scenarios.items():
            results[name].append(fn())

    print(f"# Slice writer, mode=disk, wait=true, 1 KB rows — {machine()}, {now()}, median of {args.repeat}\n")
    rows = []
    for name, runs in results.items():
        rate = statistics.median(r["rows_per_s"] for r in runs)
        per_sync = statistics.median(r["rows_per_sync"] for r in runs)
        p50 = statistics.median(r["p50_ms"] for r in runs)
        rows.append(
            (
                name,
                f"{rate:,.0f}",
                f"{per_sync:,.0f}",
                "-" if math.isnan(p50) else f"{p50:.2f}",
                f"{rate / KEBOOLA_ROWS_PER_S:.2f}x",
            )
        )
    print(table(rows, ("writers", "rows/s", "rows per fdatasync round", "p50 ms", "vs Keboola 198.5k")))


if __name__ == "__main__":
    main()
