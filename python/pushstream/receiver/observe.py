"""What an operator sees of each request: the ingest metrics (always) and the
access log (``serve --access-log``), in one WSGI layer around the whole app.

The receiver (:class:`pushstream.receiver.wsgi.ReceiverApp`) leaves the source it
matched and the outcome of each sink in the request's environ
(:data:`SOURCE_KEY`, :data:`OUTCOMES_KEY`); this layer reads them after the
answer, so the ingest path itself carries no metrics code. Errors (4xx/5xx) of
the receiver are counted whether the access log is on or not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from pushstream.metrics import Metrics

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Environ keys the receiver sets: the id of the source a request reached, and
#: ``(sink_id, outcome, rows, message)`` of each of its sinks.
SOURCE_KEY = "pushstream.source"
OUTCOMES_KEY = "pushstream.outcomes"
_INGEST_PREFIX = "/stream/"
_REDACTED = "[redacted]"


def redact_path(path: str) -> str:
    """An ingest path without its secret (``/stream/1/events/****`` → ``/stream/1/events/[redacted]``);
    other paths as they are."""
    if path.startswith(_INGEST_PREFIX):
        parts = path.split("/")
        # "", "stream", project, source, secret
        if len(parts) >= 5 and parts[4]:
            parts[4] = _REDACTED
            return "/".join(parts)
    return path


class ObservedApp:
    """WSGI middleware: counts ingest requests in :class:`~pushstream.metrics.Metrics`
    and, with ``access_log``, writes one JSON line per request to ``log_fd`` (stdout)."""

    def __init__(
        self,
        app: WSGIApp,
        metrics: Metrics,
        *,
        access_log: bool = False,
        trust_forwarded_for: bool = False,
        log_fd: int = 1,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.trust_forwarded_for = trust_forwarded_for
        self.log_fd = log_fd

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        answer: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer.append(status)
            answer.append(headers)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.app(environ, capture)
        seconds = time.perf_counter() - started
        status = int(answer[0][:3]) if answer else 500
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(_INGEST_PREFIX) or path == "/stream":
            self.metrics.observe_ingest(environ.get(SOURCE_KEY, ""), status, environ.get(OUTCOMES_KEY, ()), seconds)
        if self.access_log:
            headers = answer[1] if answer else []
            self._log(environ, path, status, headers, result=result, seconds=seconds)
        return result

    def _log(
        self,
        environ: dict[str, Any],
        path: str,
        status: int,
        headers: list[tuple[str, str]],
        *,
        result: Iterable[bytes],
        seconds: float,
    ) -> None:
        size = next((value for name, value in headers if name.lower() == "content-length"), None)
        if size is not None and size.isdigit():
            length = int(size)
        elif isinstance(result, list):
            length = sum(len(chunk) for chunk in result)
        else:
            length = -1  # streamed without a length: unknown when the answer starts
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": environ.get("REQUEST_METHOD", ""),
            # WSGI gives the path's UTF-8 bytes as Latin-1.
            "path": redact_path(path.encode("latin-1", "replace").decode("utf-8", "replace")),
            "status": status,
            "bytes": length,
            "duration": round(seconds, 6),
            "client": self._client_ip(environ),
        }
        # One write of a short line: lines of concurrent requests and processes do not interleave.
        os.write(self.log_fd, orjson.dumps(entry) + b"\n")

    def _client_ip(self, environ: dict[str, Any]) -> str:
        if self.trust_forwarded_for:
            forwarded: str = environ.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                return forwarded.split(",", 1)[0].strip()
        remote: str = environ.get("REMOTE_ADDR", "")
        return remote
