"""Runs the benchmarks of bench/ one after another (or the ones named).

.venv/bin/python bench/run.py [mapping writer template import load ingest ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    wanted = sys.argv[1:] or available
    unknown = [w for w in wanted if w not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 1
    status = 0
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        status |= subprocess.run([sys.executable, str(HERE / f"bench_{name}.py")], cwd=HERE, check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
