"""OTLP log records into a durable slice: a real server on this machine takes
exports of 512 log records on ``/v1/logs`` of an ``otlp`` source (protobuf, gzip
off and on), and the same records as NDJSON batches of 512 on an HTTP source,
side by side in one run; records/s and the ratio to NDJSON.

Both sources have one sink with the same columns (receive time, the record's
timestamp, severity, body, two attributes, the resource) and the default durable
settings (``fdatasync``, the request waits for it). Bodies are built (and
compressed) before the runs, so the client costs little: several connections post
them in a loop for a fixed time. The scenarios are interleaved and repeated; the
figures are medians, and each round's ratio to the NDJSON run of the same round
(next to it in time, so a change in the machine's load hits both) is given as
the median of those ratios too. The sink's upload and import triggers are at their maxima
so the coordinator stays idle.

    .venv/bin/python bench/bench_otlp.py [--repeat 5] [--seconds 3] [--parallel 4] [--exports 64]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import BASE, Server
from common import QUIET_SETTINGS, machine, now, table

RECORDS_PER_EXPORT = 512
T0 = 1_796_101_200_000_000_000
COLUMNS = [
    {"type": "datetime", "name": "received"},
    {"type": "path", "name": "at", "path": "timestamp", "rawString": True},
    {"type": "path", "name": "severity", "path": "severity_text", "rawString": True},
    {"type": "path", "name": "body", "path": "body", "rawString": True},
    {"type": "path", "name": "user", "path": "attributes.user"},
    {"type": "path", "name": "route", "path": "attributes.route", "rawString": True},
    {"type": "path", "name": "resource", "path": "resource"},
]
RESOURCE = {"service.name": "shop", "service.version": "1.4.2", "host.name": "web-3"}
ROUTES = ["/", "/cart", "/checkout", "/products/{id}"]


def rfc3339(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def export(first: int) -> tuple[bytes, bytes]:
    """One export of 512 log records as OTLP protobuf, and the same records as NDJSON
    (the flat records the OTLP source makes of them)."""
    records = []
    lines = []
    for n in range(first, first + RECORDS_PER_EXPORT):
        ts = T0 + n * 1_000_003
        message = f"GET {ROUTES[n % 4]} answered 200 in {n % 97} ms for user {n % 10_000} " + "x" * (n % 120)
        attributes = {"user": n % 10_000, "route": ROUTES[n % 4], "status": 200}
        records.append(
            LogRecord(
                time_unix_nano=ts,
                observed_time_unix_nano=ts + 500,
                severity_number=9,
                severity_text="INFO",
                body=AnyValue(string_value=message),
                attributes=[
                    KeyValue(key="user", value=AnyValue(int_value=attributes["user"])),
                    KeyValue(key="route", value=AnyValue(string_value=attributes["route"])),
                    KeyValue(key="status", value=AnyValue(int_value=200)),
                ],
            )
        )
        flat = {
            "timestamp": rfc3339(ts),
            "observed_timestamp": rfc3339(ts + 500),
            "severity_number": 9,
            "severity_text": "INFO",
            "body": message,
            "flags": 0,
            "attributes": attributes,
            "resource": RESOURCE,
            "scope": {"name": "shop.http", "version": "1.0"},
        }
        lines.append(json.dumps(flat, separators=(",", ":")))
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(
                    attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in RESOURCE.items()]
                ),
                scope_logs=[
                    ScopeLogs(scope=InstrumentationScope(name="shop.http", version="1.0"), log_records=records)
                ],
            )
        ]
    )
    return request.SerializeToString(), ("\n".join(lines) + "\n").encode()


def post_for(url: str, bodies: list[bytes], headers: dict[str, str], seconds: float, parallel: int) -> float:
    """Posts the bodies round-robin on `parallel` connections for `seconds`; returns records/s."""
    parts = urlsplit(url)
    done = [0] * parallel
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        i = slot
        while time.monotonic() < deadline:
            connection.request("POST", parts.path, body=bodies[i % len(bodies)], headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(f"{response.status}")
                return
            done[slot] += RECORDS_PER_EXPORT
            i += parallel
        connection.close()

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"requests failed: {failures[:3]}")
    return sum(done) / (time.monotonic() - start)


def sink(server: Server, source: str) -> None:
    table_def = {"type": "keboola", "tableId": f"in.c-bench.{source}", "mapping": {"columns": COLUMNS}}
    body = {"sinkId": "sink", "name": "sink", "type": "table", "table": table_def}
    server.request("POST", f"{BASE}/{source}/sinks", json=body)
    settings = [{"key": k, "value": v} for k, v in QUIET_SETTINGS.items()]
    server.request("PATCH", f"{BASE}/{source}/sinks/sink/settings", json={"settings": settings})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--exports", type=int, default=64, help="distinct bodies per scenario")
    args = parser.parse_args()

    pairs = [export(i * RECORDS_PER_EXPORT) for i in range(args.exports)]
    protobuf = [p for p, _ in pairs]
    compressed = [gzip.compress(p, 6) for p in protobuf]
    ndjson = [n for _, n in pairs]
    sizes = {
        name: statistics.mean(len(b) for b in bodies)
        for name, bodies in [("pb", protobuf), ("gz", compressed), ("nd", ndjson)]
    }

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", workers=1)
        try:
            server.request("POST", BASE, json={"sourceId": "otel", "name": "otel", "type": "otlp"})
            sink(server, "otel")
            otlp_url = str(server.request("GET", f"{BASE}/otel")["otlp"]["url"]) + "/v1/logs"
            server.request("POST", BASE, json={"sourceId": "web", "name": "web", "type": "http"})
            sink(server, "web")
            http_url = str(server.request("GET", f"{BASE}/web")["http"]["url"])
            scenarios = {
                "NDJSON to an HTTP source": (http_url, ndjson, {"Content-Type": "application/x-ndjson"}),
                "OTLP protobuf": (otlp_url, protobuf, {"Content-Type": "application/x-protobuf"}),
                "OTLP protobuf + gzip": (
                    otlp_url,
                    compressed,
                    {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
                ),
            }
            rates: dict[str, list[float]] = {name: [] for name in scenarios}
            for _, (url, bodies, headers) in scenarios.items():
                post_for(url, bodies[:4], headers, 0.5, args.parallel)  # warm-up
            for round_ in range(args.repeat):
                # Rotate the order every round so none always runs first.
                names = list(scenarios)
                names = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in names:
                    url, bodies, headers = scenarios[name]
                    rates[name].append(post_for(url, bodies, headers, args.seconds, args.parallel))
        finally:
            server.stop()

    ndjson_rates = rates["NDJSON to an HTTP source"]
    baseline = statistics.median(ndjson_rates)
    rows = []
    for name, values in rates.items():
        median = statistics.median(values)
        ratios = [value / ndjson for value, ndjson in zip(values, ndjson_rates, strict=True)]
        rows.append(
            (
                name,
                f"{median:,.0f}",
                f"{min(values):,.0f}–{max(values):,.0f}",
                f"{median / baseline:.0%}",
                f"{statistics.median(ratios):.0%} ({min(ratios):.0%}–{max(ratios):.0%})",
            )
        )
    print(f"# bench_otlp — {now()} — {machine()}")
    print(
        f"exports of {RECORDS_PER_EXPORT} log records; bodies: protobuf {sizes['pb']:,.0f} B, "
        f"gzip {sizes['gz']:,.0f} B, NDJSON {sizes['nd']:,.0f} B; {args.parallel} connections, "
        f"{args.repeat} rounds of {args.seconds:g} s, medians"
    )
    print(table(rows, ("scenario", "records/s", "range", "vs NDJSON", "per round vs NDJSON")))


if __name__ == "__main__":
    main()
