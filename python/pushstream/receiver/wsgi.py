"""The ingest endpoint ``POST /stream/<projectId>/<sourceId>/<secret>`` as a thin
WSGI layer in front of the Flask application.

The data plane does not go through Flask's routing and request objects: a
request is one dictionary lookup, one constant-time secret comparison and one
call into the Rust core (with the GIL released while it parses, maps, writes and
waits for the group commit). Everything else is passed to the wrapped app.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from pushstream._core import DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_RECORD_BYTES, SinkOutcome, is_batch_content_type
from pushstream.errors import BatchError, StoreUnavailableError
from pushstream.receiver.node import BranchRoute, ReceiverNode
from pushstream.receiver.observe import OUTCOMES_KEY, SOURCE_KEY
from pushstream.storage.space import is_disk_full

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PREFIX = "/stream/"
#: ``/stream`` itself belongs to the ingest side too (it answers ``routeNotFound``).
ROOT = PREFIX[:-1]

#: Default and largest accepted size of the request headers (``Name: value`` lines).
DEFAULT_MAX_HEADER_BYTES = 64 << 10
MAX_HEADER_BYTES_LIMIT = 1 << 20
#: How much of a request head the HTTP server reads (granian's ``max_buffer_size``).
#: Well above the header limit, so that headers over the limit reach the receiver
#: and get a 413 ``stream.in.headerTooLarge``; beyond it the server answers 431 and
#: closes the connection. The buffer grows only as far as a request needs.
HTTP_BUFFER_BYTES = 4 << 20

_ALLOW_ORIGIN = ("Access-Control-Allow-Origin", "*")
#: The answer to ``OPTIONS`` (a CORS preflight), as Keboola's receiver gives it.
_OPTIONS_HEADERS = [
    ("Allow", "OPTIONS, POST"),
    ("Access-Control-Allow-Methods", "OPTIONS, POST"),
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Expose-Headers", "*"),
    _ALLOW_ORIGIN,
    ("Content-Length", "0"),
]
_OK_HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "2"), _ALLOW_ORIGIN]
#: Headers that WSGI passes without the ``HTTP_`` prefix.
_BODY_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH")
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: What :meth:`pushstream.SinkSet.ingest` says happened in each sink: ``(sink_id, outcome, rows, message)``.
_Outcomes: TypeAlias = list[tuple[str, SinkOutcome, int, str]]
_ROUTE_NOT_FOUND = "Not found, please send data using POST /stream/<projectID>/<sourceID>/<secret>"
_NO_SOURCE_FOUND = "The specified combination of projectID, sourceID and secret was not found."
#: Outcome of a sink (from the core) → HTTP status and error name.
_SINK_ERRORS: dict[SinkOutcome, tuple[int, str]] = {
    "malformed_body": (400, "stream.in.badRequest"),
    "missing_value": (400, "stream.in.badRequest"),
    "template": (400, "stream.in.badRequest"),
    "row_too_large": (413, "stream.in.bodyTooLarge"),
    # A value the column's dataType cannot take: a bad record, like a missing value.
    "invalid_value": (400, "stream.in.badRequest"),
    "unsupported_content_type": (415, "stream.in.unsupportedContentType"),
    "writer_failed": (500, "stream.in.internalError"),
    "writer_closed": (503, "stream.in.serviceUnavailable"),
    # The data dir's file system is full: nothing was stored, retry later.
    "disk_full": (503, "stream.in.serviceUnavailable"),
}
#: Seconds a client is asked to wait before it retries a 503 (``Retry-After``).
RETRY_AFTER_SECONDS = 5
_STATUS_TEXT = {
    200: "200 OK",
    202: "202 Accepted",
    204: "204 No Content",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Payload Too Large",
    415: "415 Unsupported Media Type",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


@dataclass(frozen=True)
class ReceiverOptions:
    project_id: int
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    #: Largest accepted size of the request headers (see :func:`_header_bytes`).
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    #: Take the client IP from ``X-Forwarded-For`` (only behind a trusted proxy).
    trust_forwarded_for: bool = False


def failure_answer(exc: Exception, kind: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The answer to an ingest request (``kind``: ``ingest``, ``OTLP``) that failed
    with ``exc``: 503 with ``Retry-After`` when the disk is full (opening a new slice
    after the routes changed) or the control plane of a cluster is away (the routes
    of the source are not known yet), else 500 with an id to find it in the log."""
    if is_disk_full(exc):
        log.warning("%s request refused, the disk is full: %s", kind, exc)
        message = "The server's disk is full, the request was not stored."
    elif isinstance(exc, StoreUnavailableError):
        message = f"{exc} The request was not stored; retry it."
    else:
        exception_id = f"exception-{uuid.uuid4().hex[:16]}"
        log.exception("%s request failed (%s)", kind, exception_id)
        return _error(500, "stream.in.internalError", "Internal server error.", exception_id)
    status, headers, body = _error(503, "stream.in.serviceUnavailable", message)
    headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    return status, headers, body


class ReceiverApp:
    """WSGI middleware: serves ``/stream/...`` and passes everything else to ``app``."""

    def __init__(self, node: ReceiverNode, app: WSGIApp, options: ReceiverOptions) -> None:
        self.node = node
        self.app = app
        self.options = options
        #: The project id as it must appear in an ingest URL (canonical: no sign, no leading zeros).
        self._project_text = str(options.project_id)
        # Imported here: the OTLP endpoints reuse this module's helpers.
        from pushstream.receiver.otlp import OtlpReceiver

        #: ``/otlp/...``: the OpenTelemetry endpoints of ``otlp`` sources.
        self.otlp = OtlpReceiver(node, options)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) and path != ROOT:
            if self.otlp.serves(path):
                return self.otlp(environ, start_response)
            return self.app(environ, start_response)
        received_at_ns = time.time_ns()
        try:
            status, headers, body = self._handle(environ, path, received_at_ns)
        except Exception as exc:
            status, headers, body = failure_answer(exc, "ingest")
        start_response(_STATUS_TEXT.get(status) or f"{status} Error", headers)
        return [body]

    def _handle(
        self, environ: dict[str, Any], path: str, received_at_ns: int
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if _header_bytes(environ) > self.options.max_header_bytes:
            limit = self.options.max_header_bytes
            return _error(413, "stream.in.headerTooLarge", f'Request header size is over the maximum "{limit}B".')
        parts = path[len(PREFIX) :].split("/")
        if len(parts) != 3 or not all(parts):
            return _error(404, "stream.in.routeNotFound", _ROUTE_NOT_FOUND)
        project_text, source_id, secret = parts
        method = environ.get("REQUEST_METHOD", "")
        if method != "POST":
            if method == "OPTIONS":
                return 200, list(_OPTIONS_HEADERS), b""
            response = _error(405, "stream.in.methodNotAllowed", f'Method "{method}" is not allowed, use POST.')
            response[1].append(("Allow", "OPTIONS, POST"))
            return response
        if project_text == self._project_text:
            branches = self.node.routes(self.options.project_id, source_id)
        elif _is_integer(project_text):
            branches = ()  # Another project, or this one written differently ("01"): no such URL.
        else:
            return _error(400, "stream.in.badRequest", f'Invalid project ID "{_unquoted(project_text)}".')
        # Compare against every branch's secret so the time does not tell which part was wrong.
        given = secret.encode()
        found = False
        active = []
        for branch in branches:
            same = hmac.compare_digest(branch.secret.encode(), given)
            # An OTLP source takes requests on /otlp/... only.
            if same and branch.state != "deleted" and branch.source_type == "http":
                found = True
                if branch.state == "enabled":
                    active.append(branch)
        if not found:
            return _error(404, "stream.in.noSourceFound", _NO_SOURCE_FOUND)
        environ[SOURCE_KEY] = source_id  # for the metrics (pushstream.receiver.observe)
        if not active:
            return _error(404, "stream.in.disabledSource", "The specified source is disabled in all branches.")

        is_batch = is_batch_content_type(environ.get("CONTENT_TYPE"))
        limit = self.options.max_batch_bytes if is_batch else self.options.max_record_bytes
        length_text = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length_text:
            if not length_text.isdigit():
                return _error(400, "stream.in.badRequest", "Invalid Content-Length header.")
            length = int(length_text)
            if length > limit:
                return _too_large(limit)
            body = stream.read(length) if length else b""
            if len(body) != length:
                # The client went away before the end: nothing of a cut body is stored.
                return _error(400, "stream.in.badRequest", "The request body is shorter than its Content-Length.")
        else:
            # Chunked or unknown length: read up to one byte over the limit to detect oversize.
            body = stream.read(limit + 1)
            if len(body) > limit:
                return _too_large(limit)

        ip = self._client_ip(environ)
        verbose = "verbose=true" in environ.get("QUERY_STRING", "").lower()
        results = [self._write(branch, body, environ, ip, received_at_ns) for branch in active]
        environ[OUTCOMES_KEY] = [outcome for result in results for outcome in result.outcomes]
        return _respond(results, verbose)

    def _client_ip(self, environ: dict[str, Any]) -> str:
        if self.options.trust_forwarded_for:
            forwarded: str = environ.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                return forwarded.split(",", 1)[0].strip()
        remote: str = environ.get("REMOTE_ADDR", "")
        return remote

    def _write(
        self, branch: BranchRoute, body: bytes, environ: dict[str, Any], ip: str, received_at_ns: int
    ) -> _BranchResult:
        if not branch.sinks:
            return _BranchResult(branch, [], "No enabled sink found.")
        try:
            if branch.needs_headers:
                _, outcomes = branch.sink_set.ingest(
                    body,
                    environ=environ,
                    ip=ip,
                    received_at_ns=received_at_ns,
                    max_record_bytes=self.options.max_record_bytes,
                )
            else:
                content_type = environ.get("CONTENT_TYPE")
                headers = {"Content-Type": content_type} if content_type else None
                _, outcomes = branch.sink_set.ingest(
                    body,
                    headers=headers,
                    ip=ip,
                    received_at_ns=received_at_ns,
                    max_record_bytes=self.options.max_record_bytes,
                )
        except BatchError as exc:
            return _BranchResult(branch, [], str(exc), batch_error=413 if exc.too_large else 400)
        for outcome in outcomes:
            if outcome[1] == "writer_closed":
                outcomes = self._rewrite_closed(branch, outcomes, body, environ, ip=ip, received_at_ns=received_at_ns)
                break
        return _BranchResult(branch, outcomes, "")

    def _rewrite_closed(
        self,
        branch: BranchRoute,
        outcomes: _Outcomes,
        body: bytes,
        environ: dict[str, Any],
        *,
        ip: str,
        received_at_ns: int,
    ) -> _Outcomes:
        closed = {o[0] for o in outcomes if o[1] == "writer_closed"}
        for _ in range(3):
            if not closed:
                break
            # The slice rotated under this request: write those sinks to their new slices.
            fresh = next(
                (b for b in self.node.routes(branch.project_id, branch.source_id) if b.branch_id == branch.branch_id),
                None,
            )
            if fresh is None:
                break
            _, retried = fresh.subset(closed).ingest(
                body,
                environ=environ,
                ip=ip,
                received_at_ns=received_at_ns,
                max_record_bytes=self.options.max_record_bytes,
            )
            by_id = {o[0]: o for o in retried}
            outcomes = [by_id.get(o[0], o) for o in outcomes]
            closed = {o[0] for o in outcomes if o[1] == "writer_closed"}
        return outcomes


@dataclass(slots=True)
class _BranchResult:
    branch: BranchRoute
    outcomes: _Outcomes
    message: str
    #: The status of a batch that cannot be taken (400, or 413 for a record over the limit); 0 if none.
    batch_error: int = 0

    def sink_json(self) -> list[dict[str, Any]]:
        sinks = []
        for sink_id, outcome, _rows, message in self.outcomes:
            if outcome == "processed":
                sinks.append({"sinkId": sink_id, "statusCode": 200, "message": "processed"})
            elif outcome == "accepted":
                sinks.append({"sinkId": sink_id, "statusCode": 202, "message": "accepted"})
            else:
                status, error = _SINK_ERRORS.get(outcome, (500, "stream.in.internalError"))
                sinks.append({"sinkId": sink_id, "statusCode": status, "error": error, "message": message})
        return sinks


def _plain_status(results: list[_BranchResult]) -> int:
    """200 (synced) or 202 (accepted) when every sink took the request, which is
    answered with a plain "OK" without building the JSON document; 0 otherwise."""
    status = 200
    for result in results:
        if result.batch_error:
            return 0
        for outcome in result.outcomes:
            if outcome[1] == "accepted":
                status = 202
            elif outcome[1] != "processed":
                return 0
    return status


def _respond(results: list[_BranchResult], verbose: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    if not verbose:
        plain = _plain_status(results)
        if plain:
            return plain, list(_OK_HEADERS), b"OK"
    batch_errors = [r for r in results if r.batch_error]
    if batch_errors:
        # A batch that cannot be split is rejected as a whole, with the line that broke it.
        first = batch_errors[0]
        if first.batch_error == 413:
            return _error(413, "stream.in.bodyTooLarge", first.message)
        return _error(400, "stream.in.badRequest", first.message)
    sources = []
    written = total = 0
    for result in results:
        sinks = result.sink_json()
        ok = sum(1 for s in sinks if s["statusCode"] < 300)
        written += ok
        total += len(sinks)
        status = max((s["statusCode"] for s in sinks), default=200)
        source: dict[str, Any] = {
            "projectId": result.branch.project_id,
            "sourceId": result.branch.source_id,
            "branchId": result.branch.branch_id,
            "statusCode": status,
        }
        if ok < len(sinks):
            source["error"] = "stream.in.writeFailed"
            source["message"] = f"Written to {ok}/{len(sinks)} sinks."
        elif sinks:
            source["message"] = f"Successfully written to {ok}/{len(sinks)} sinks."
        else:
            source["message"] = result.message
        source["sinks"] = sinks
        sources.append(source)
    status = max(s["statusCode"] for s in sources)
    failed = written < total
    if not failed and not verbose:
        return (202 if status == 202 else 200), list(_OK_HEADERS), b"OK"
    document: dict[str, Any] = {"statusCode": status}
    if failed:
        document["error"] = "stream.in.writeFailed"
        document["message"] = f"Written to {written}/{total} sinks."
    elif total:
        document["message"] = f"Successfully written to {written}/{total} sinks."
    else:
        document["message"] = "No enabled sink found."
    document["sources"] = sources
    headers = _json_headers()
    if status == 503:
        headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    return status, headers, orjson.dumps(document)


def _json_headers() -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), _ALLOW_ORIGIN]


def _header_bytes(environ: dict[str, Any]) -> int:
    """The size of the request headers, as ``Name: value\\r\\n`` lines.

    granian puts the headers (``HTTP_*``) last in the environ, after its own keys
    and the process environment, so they are read from the end: a few keys
    instead of all of them. Should a server order them otherwise, every key is
    looked at.
    """
    size = 0
    for key in _BODY_HEADERS:
        value = environ.get(key)
        if value:
            size += len(key) + len(value) + 4
    seen = False
    for key in reversed(environ):
        if key[:5] != "HTTP_":
            break
        seen = True
        size += len(key) + len(environ[key]) - 1
    if not seen:
        size += sum(len(key) + len(value) - 1 for key, value in environ.items() if key[:5] == "HTTP_")
    return size


def _unquoted(wsgi_text: str) -> str:
    """A decoded part of the path as the client wrote it (WSGI gives its UTF-8 bytes as Latin-1)."""
    return wsgi_text.encode("latin-1", "replace").decode("utf-8", "replace")


def _is_integer(text: str) -> bool:
    """A decimal integer, possibly signed or with leading zeros."""
    return _INTEGER.fullmatch(text) is not None


def _error(
    status: int, error: str, message: str, exception_id: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    document: dict[str, Any] = {"statusCode": status, "error": error, "message": message}
    if exception_id:
        document["exceptionId"] = exception_id
    return status, _json_headers(), orjson.dumps(document)


def _too_large(limit: int) -> tuple[int, list[tuple[str, str]], bytes]:
    return _error(413, "stream.in.bodyTooLarge", f'Request body size is over the maximum "{limit}B".')
