"""Helpers shared by the benchmarks: sample events, machine facts, medians."""

from __future__ import annotations

import os
import platform
import random
import socket
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

#: Sink settings that keep the coordinator from uploading and importing while a
#: receiver-side benchmark measures (every trigger at its largest value).
QUIET_SETTINGS = {
    "storage.level.staging.upload.trigger.count": 10_000_000,
    "storage.level.staging.upload.trigger.size": "50MB",
    "storage.level.staging.upload.trigger.interval": "30m",
    "storage.level.target.import.trigger.count": 10_000_000,
    "storage.level.target.import.trigger.size": "500MB",
    "storage.level.target.import.trigger.interval": "24h",
}


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_event(i: int, size: int = 500) -> bytes:
    """A realistic event of about `size` bytes (JSON), deterministic in `i`."""
    rnd = random.Random(i)
    event = {
        "id": i,
        "event": rnd.choice(["page_view", "click", "purchase", "signup"]),
        "user": {"id": rnd.randrange(1_000_000), "name": rnd.choice(["Jan Novák", "Anna Müller", "Li Wei", "Zoë"])},
        "url": f"https://example.com/products/{rnd.randrange(10_000)}?ref=campaign-{rnd.randrange(100)}",
        "items": [
            {"sku": f"SKU-{rnd.randrange(1000)}", "qty": rnd.randrange(1, 5), "price": round(rnd.random() * 100, 2)}
            for _ in range(rnd.randrange(1, 4))
        ],
        "ts": "2026-11-22T10:00:00.123Z",
    }
    body = orjson.dumps(event)
    pad = max(0, size - len(body) - 12)
    event["ua"] = ("Mozilla/5.0 (X11; Linux x86_64) " * 10)[:pad]
    return orjson.dumps(event)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def best_of(fn: Callable[[], int], repeat: int = 5) -> tuple[float, list[float]]:
    """Runs `fn` (returning a count of items) `repeat` times; returns (median rate, all rates)."""
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates), rates


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


#: wrk Lua: with BENCH_RATE > 0, requests follow a fixed schedule (open loop) via `delay()`.
WRK_FIXED_RATE_LUA = r"""
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *ts);
  ]]
  local ts = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = 1000 / rate
  local next_at = nil
  -- Each request gets the next slot of a fixed schedule; a free connection waits for it.
  function delay()
    local t = now_ms()
    if next_at == nil then next_at = t end
    local wait = next_at - t
    next_at = next_at + interval
    if wait < 0 then return 0 end
    return wait
  end
end
"""


def settle_disk() -> None:
    """Writes the page cache out (``sync``): an import's checkpoint (hundreds of
    MB, which the kernel may keep dirty for 30 s) must not be flushed to the disk
    while the next run syncs its slices on it."""
    os.sync()
