"""Object storage clients for staging on S3: pyarrow's ``S3FileSystem`` vs
``obstore`` (the Rust ``object_store`` crate), against a real S3-compatible server
(s3s-fs, ``tests/s3server.py``, installed by ``./dev.sh setup``).

For objects of 1 MB and 10 MB (random bytes: compressed slices do not compress
further): put (one object written whole, its durable answer awaited) and get
(read whole into memory). Both clients talk to the same server in the same run;
the scenarios are interleaved and repeated, and the medians reported, with the
ratio obstore / pyarrow (above 1: obstore is faster).

    .venv/bin/python bench/bench_object_store.py [--repeat R] [--objects N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import obstore
import pyarrow.fs as pafs  # type: ignore[import-untyped]
from obstore.store import S3Store

from common import machine, now, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, unavailable_reason  # noqa: E402

BUCKET = "bench"
SIZES = {"1 MB": 1 << 20, "10 MB": 10 << 20}


class PyarrowClient:
    name = "pyarrow S3FileSystem"

    def __init__(self, server: S3Server) -> None:
        self.fs = pafs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            endpoint_override=f"127.0.0.1:{server.port}",
            scheme="http",
        )

    def put(self, key: str, data: bytes) -> None:
        with self.fs.open_output_stream(f"{BUCKET}/{key}") as out:
            out.write(data)

    def get(self, key: str) -> bytes:
        # A random access file knows its size and reads it in one request; an input
        # stream without a buffer reads in small ranges (measured ~4x slower here).
        with self.fs.open_input_file(f"{BUCKET}/{key}") as source:
            data: bytes = source.read()
            return data


class ObstoreClient:
    name = "obstore"

    def __init__(self, server: S3Server) -> None:
        self.store = S3Store(
            BUCKET,
            endpoint=server.endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            region=REGION,
            client_options={"allow_http": True},
        )

    def put(self, key: str, data: bytes) -> None:
        obstore.put(self.store, key, data)

    def get(self, key: str) -> bytes:
        return obstore.get(self.store, key).bytes().to_bytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (medians are reported)")
    parser.add_argument("--objects", type=int, default=8, help="objects put and got per client, size and round")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        print(f"skipped: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        server = S3Server(Path(tmp) / "s3").start()
        server.create_bucket(BUCKET)
        try:
            clients: list[PyarrowClient | ObstoreClient] = [PyarrowClient(server), ObstoreClient(server)]
            # seconds per object: (client, size, operation) → one median per round
            rounds: dict[tuple[str, str, str], list[float]] = {}
            for round_number in range(args.repeat):
                for size_name, size in SIZES.items():
                    payloads = [os.urandom(size) for _ in range(args.objects)]
                    # Alternate which client goes first, so neither always meets a warmer server.
                    order = clients if round_number % 2 == 0 else clients[::-1]
                    for client in order:
                        keys = [f"{client.name}/{size_name}/{round_number}/{i}" for i in range(args.objects)]
                        puts = []
                        for key, payload in zip(keys, payloads, strict=True):
                            start = time.perf_counter()
                            client.put(key, payload)
                            puts.append(time.perf_counter() - start)
                        gets = []
                        for key, payload in zip(keys, payloads, strict=True):
                            start = time.perf_counter()
                            data = client.get(key)
                            gets.append(time.perf_counter() - start)
                            assert data == payload, f"{client.name} read back other bytes for {key}"
                        rounds.setdefault((client.name, size_name, "put"), []).append(statistics.median(puts))
                        rounds.setdefault((client.name, size_name, "get"), []).append(statistics.median(gets))
        finally:
            server.stop()
            pafs.finalize_s3()

    print(f"Object store clients against s3s-fs on 127.0.0.1 — {machine()}, {now()}")
    print(f"median of {args.repeat} rounds, each the median of {args.objects} objects\n")
    rows = []
    for size_name, size in SIZES.items():
        for operation in ("put", "get"):
            arrow = statistics.median(rounds[("pyarrow S3FileSystem", size_name, operation)])
            obst = statistics.median(rounds[("obstore", size_name, operation)])
            rows.append(
                (
                    f"{operation} {size_name}",
                    f"{arrow * 1000:.1f} ms ({size / arrow / 1e6:.0f} MB/s)",
                    f"{obst * 1000:.1f} ms ({size / obst / 1e6:.0f} MB/s)",
                    f"{arrow / obst:.2f}x",
                )
            )
    print(table(rows, ("operation", "pyarrow S3FileSystem", "obstore", "obstore vs pyarrow")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
