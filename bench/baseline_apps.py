"""Baselines of the receiver load benchmark, served like ``pushstream serve``
(granian, WSGI, the same workers and request threads):

- ``noop``: a Flask endpoint on the ingest path that reads the body and answers
  ``OK`` — the framework ceiling;
- ``wsgi``: a bare WSGI callable that does the same without Flask — the ceiling
  of the WSGI server itself (granian's thread hand-offs and the GIL);
- ``handwritten``: what a user would write by hand: parse the body with orjson,
  map it to a row (``uuid``, ``datetime``, ``body`` or the path columns), append
  the row with the ``csv`` module and ``os.fsync`` before answering.

python bench/baseline_apps.py noop|wsgi|handwritten --port P --data-dir D
    [--workers N] [--threads T] [--mapping static|path]
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, request

ROUTE = "/stream/<int:project_id>/<source_id>/<secret>"


def noop_app() -> Flask:
    app = Flask("noop")

    @app.post(ROUTE)
    def ingest(project_id: int, source_id: str, secret: str) -> tuple[str, int]:
        request.get_data()
        return "OK", 200

    @app.get("/health-check")
    def health() -> str:
        return "OK"

    return app


def bare_wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "2")])
    return [b"OK"]


def _dig(value: Any, *keys: str | int) -> str:
    for key in keys:
        value = value[key]
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def handwritten_app(data_dir: str, mapping: str) -> Flask:
    app = Flask("handwritten")
    path = Path(data_dir) / f"rows-{os.getpid()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    out = path.open("a", newline="", encoding="utf-8")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    lock = threading.Lock()

    @app.post(ROUTE)
    def ingest(project_id: int, source_id: str, secret: str) -> tuple[str, int]:
        body = request.get_data()
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            return "malformed JSON", 400
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if mapping == "static":
            row = [str(uuid.uuid4()), now, body.decode()]
        else:
            row = [str(uuid.uuid4()), now, _dig(event, "a"), _dig(event, "c", "d"), _dig(event, "j", 0)]
        with lock:
            writer.writerow(row)
            out.flush()
        os.fsync(out.fileno())
        return "OK", 200

    @app.get("/health-check")
    def health() -> str:
        return "OK"

    return app


def load(kind: str, data_dir: str, mapping: str) -> Any:
    if kind == "wsgi":
        return bare_wsgi_app
    return noop_app() if kind == "noop" else handwritten_app(data_dir, mapping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["noop", "wsgi", "handwritten"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", default="./baseline-data")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--mapping", choices=["static", "path"], default="static")
    args = parser.parse_args()

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    # The same server settings as `pushstream serve` (cli.py).
    server = Granian(
        "baseline_apps:load",
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=args.workers,
        log_level=LogLevels("warning"),
        blocking_threads=args.threads,
    )
    loader = functools.partial(load, args.kind, args.data_dir, args.mapping)
    server.serve(target_loader=loader, wrap_loader=False)


if __name__ == "__main__":
    main()
