"""Template columns: the Rust core (jrsonnet) against go-jsonnet batched and the C++
`jsonnet` package per call, on ~500 B JSON events. Pinned to one core.

    .venv/bin/python bench/bench_template.py [--records N] [--repeat R]

The template is `{"user": Body("user.name"), "n": std.length(Body("items"))}`.
The Rust figure is `Mapping.encode_batch` (parse body, evaluate, CSV-encode) on
batches of 1,000 records. go-jsonnet gets the whole batch in one call (bodies as
external code, `Body` written in Jsonnet), the C++ package one call per record,
as a receiver would have to use them; neither writes CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import _gojsonnet  # type: ignore[import-not-found]
import _jsonnet

from common import best_of, machine, now, sample_event, table
from pushstream import Mapping, Record

TEMPLATE = '{"user": Body("user.name"), "n": std.length(Body("items"))}'
HEADERS = {"Content-Type": "application/json"}
BATCH = 1000

# `Body(path, default)` over one record's body, in Jsonnet, for the engines that
# have no globals of their own (the fastest of the formulations tried: bodies as
# one JSON string through `std.parseJson`, the path walked with `std.foldl`).
JSONNET_BATCH = """
local evaluate(body) =
  local Body(path=null, default=null) =
    if path == null then body
    else std.foldl(function(v, k) if v != null && std.objectHas(v, k) then v[k] else default,
                   std.split(path, "."), body);
  %s;
std.map(evaluate, std.parseJson(std.extVar("bodies")))
"""
# The same output without `Body`: plain field access, the floor of go-jsonnet here.
JSONNET_PLAIN = """
std.map(function(body) {"user": body.user.name, "n": std.length(body.items)}, std.parseJson(std.extVar("bodies")))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    bodies = [sample_event(i) for i in range(BATCH)]
    avg = sum(len(b) for b in bodies) / len(bodies)
    now_ns = time.time_ns()
    batch = [Record(body, HEADERS, "10.0.0.1", now_ns) for body in bodies]
    mapping = Mapping([{"type": "template", "name": "t", "template": {"language": "jsonnet", "content": TEMPLATE}}])
    code = JSONNET_BATCH % TEMPLATE
    bodies_json = "[" + ",".join(b.decode() for b in bodies) + "]"

    # The engines must agree before they are timed.
    rust_rows = [json.loads(mapping.map(r)[0]) for r in batch]
    for program in (code, JSONNET_PLAIN):
        assert rust_rows == json.loads(_gojsonnet.evaluate_snippet("bench", program, ext_vars={"bodies": bodies_json}))

    def rust() -> int:
        return sum(mapping.encode_batch(batch).rows for _ in range(args.records // BATCH))

    def go() -> int:
        _gojsonnet.evaluate_snippet("bench", code, ext_vars={"bodies": bodies_json})
        return BATCH

    def go_plain() -> int:
        _gojsonnet.evaluate_snippet("bench", JSONNET_PLAIN, ext_vars={"bodies": bodies_json})
        return BATCH

    def cpp() -> int:
        n = 10
        for body in bodies[:n]:
            _jsonnet.evaluate_snippet("bench", code, ext_vars={"bodies": "[" + body.decode() + "]"})
        return n

    rust_rate, _ = best_of(rust, args.repeat)
    go_rate, _ = best_of(go, args.repeat)
    go_plain_rate, _ = best_of(go_plain, args.repeat)
    cpp_rate, _ = best_of(cpp, args.repeat)
    print(f"# Template column, {avg:.0f} B events, one core — {machine()}, {now()}\n")
    print(f"template: {TEMPLATE}\n")
    rows = [
        ("pushstream core, jrsonnet (Mapping.encode_batch, 1,000 records/call)", rust_rate),
        ("gojsonnet 0.22, one call per 1,000 records", go_rate),
        ("gojsonnet 0.22, one call per 1,000 records, no Body (plain fields)", go_plain_rate),
        ("jsonnet 0.22 (C++), one call per record", cpp_rate),
    ]
    print(
        table(
            [(name, f"{rate:,.0f}", f"{1e9 / rate:,.0f}", f"{rust_rate / rate:,.1f}x") for name, rate in rows],
            ("implementation", "rows/s", "ns/row", "core is faster by"),
        )
    )


if __name__ == "__main__":
    main()
