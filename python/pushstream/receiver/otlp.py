"""The OpenTelemetry endpoints of ``otlp`` sources (OTLP/HTTP):

- ``POST /otlp/<projectId>/<sourceId>/<secret>/v1/{logs,metrics,traces}``, and
- ``POST /otlp/<projectId>/<sourceId>/v1/{logs,metrics,traces}`` with
  ``Authorization: Bearer <secret>`` (the scheme in any case);
- ``OPTIONS`` on either for CORS.

Bodies are OTLP protobuf (``application/x-protobuf``, ``application/protobuf``) or
OTLP JSON (``application/json``), optionally ``Content-Encoding: gzip``. Like an
ingest request of an HTTP source, a request is one lookup, a constant-time secret
comparison and one call into the Rust core per branch
(:meth:`pushstream.SinkSet.ingest_otlp`: decompress, decode, flatten into one
record per log record / data point / span, map, write, wait for the group commit).

The answer is the OTLP ``Export*ServiceResponse`` in the request's encoding: empty
when every sink took the records, with ``partial_success`` when some sinks did not;
when none did, the worst status with Keboola's error JSON (4xx: the configuration
or the body is wrong; 5xx: retry). Errors before any write (no such source, a
malformed or oversize body) are Keboola's error JSON too, as for HTTP sources.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from pushstream._core import SinkSet, otlp_response
from pushstream.errors import OtlpError
from pushstream.receiver.node import BranchRoute, ReceiverNode
from pushstream.receiver.wsgi import (
    _SINK_ERRORS,
    _STATUS_TEXT,
    RETRY_AFTER_SECONDS,
    ReceiverOptions,
    _error,
    _header_bytes,
    _is_integer,
    _Outcomes,
    _too_large,
    _unquoted,
    failure_answer,
)

log = logging.getLogger(__name__)

PREFIX = "/otlp/"
ROOT = PREFIX[:-1]
Signal = Literal["logs", "metrics", "traces"]
Encoding = Literal["protobuf", "json"]
_SIGNALS: tuple[Signal, ...] = ("logs", "metrics", "traces")
_ALLOW_ORIGIN = ("Access-Control-Allow-Origin", "*")
_OPTIONS_HEADERS = [
    ("Allow", "OPTIONS, POST"),
    ("Access-Control-Allow-Methods", "OPTIONS, POST"),
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Expose-Headers", "*"),
    _ALLOW_ORIGIN,
    ("Content-Length", "0"),
]
_ROUTE_NOT_FOUND = (
    "Not found, please send data using POST /otlp/<projectID>/<sourceID>/<secret>/v1/{logs,metrics,traces}, "
    "or without the secret and with the header Authorization: Bearer <secret>"
)
_NO_SOURCE_FOUND = "The specified combination of projectID, sourceID and secret was not found."
_MEDIA_TYPES: dict[str, Encoding] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
#: ``Content-Encoding`` values: gzip or none.
_GZIP = {"gzip": True, "x-gzip": True, "identity": False, "": False}


@dataclass(frozen=True, slots=True)
class _Target:
    project_text: str
    source_id: str
    secret: str | None  # None: from the Authorization header
    signal: Signal


@dataclass(frozen=True, slots=True)
class _Request:
    """What every branch of the source takes from one request."""

    signal: Signal
    encoding: Encoding
    gzip: bool
    body: bytes
    #: The request's WSGI environ without ``Authorization``.
    environ: dict[str, Any]
    ip: str
    received_at_ns: int


def _parse_path(path: str) -> _Target | None:
    parts = path[len(PREFIX) :].split("/")
    if len(parts) == 5:
        project_text, source_id, secret, version, signal = parts
    elif len(parts) == 4:
        project_text, source_id, version, signal = parts
        secret = None
    else:
        return None
    if version != "v1" or signal not in _SIGNALS or not project_text or not source_id or secret == "":
        return None
    return _Target(project_text, source_id, secret, signal)


def _bearer(environ: dict[str, Any]) -> str:
    """The secret of ``Authorization: Bearer <secret>`` (scheme in any case), or ``""``."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class OtlpReceiver:
    """WSGI application of the ``/otlp/...`` endpoints (mounted by :class:`pushstream.receiver.wsgi.ReceiverApp`)."""

    def __init__(self, node: ReceiverNode, options: ReceiverOptions) -> None:
        self.node = node
        self.options = options
        self._project_text = str(options.project_id)

    @staticmethod
    def serves(path: str) -> bool:
        """Whether ``path`` belongs to the OTLP endpoints."""
        return path.startswith(PREFIX) or path == ROOT

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        received_at_ns = time.time_ns()
        try:
            status, headers, body = self._handle(environ, environ.get("PATH_INFO", ""), received_at_ns)
        except Exception as exc:
            status, headers, body = failure_answer(exc, "OTLP")
        start_response(_STATUS_TEXT.get(status) or f"{status} Error", headers)
        return [body]

    def _handle(
        self, environ: dict[str, Any], path: str, received_at_ns: int
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if _header_bytes(environ) > self.options.max_header_bytes:
            limit = self.options.max_header_bytes
            return _error(413, "stream.in.headerTooLarge", f'Request header size is over the maximum "{limit}B".')
        target = _parse_path(path)
        if target is None:
            return _error(404, "stream.in.routeNotFound", _ROUTE_NOT_FOUND)
        method = environ.get("REQUEST_METHOD", "")
        if method != "POST":
            if method == "OPTIONS":
                return 200, list(_OPTIONS_HEADERS), b""
            response = _error(405, "stream.in.methodNotAllowed", f'Method "{method}" is not allowed, use POST.')
            response[1].append(("Allow", "OPTIONS, POST"))
            return response
        if target.project_text == self._project_text:
            branches = self.node.routes(self.options.project_id, target.source_id)
        elif _is_integer(target.project_text):
            branches = ()
        else:
            return _error(400, "stream.in.badRequest", f'Invalid project ID "{_unquoted(target.project_text)}".')
        given = (target.secret if target.secret is not None else _bearer(environ)).encode()
        found = False
        active: list[BranchRoute] = []
        for branch in branches:
            # Every branch is compared, so the time does not tell which part was wrong.
            same = hmac.compare_digest(branch.secret.encode(), given)
            if same and given and branch.state != "deleted" and branch.source_type == "otlp":
                found = True
                if branch.state == "enabled":
                    active.append(branch)
        if not found:
            return _error(404, "stream.in.noSourceFound", _NO_SOURCE_FOUND)
        if not active:
            return _error(404, "stream.in.disabledSource", "The specified source is disabled in all branches.")

        content_type = environ.get("CONTENT_TYPE") or ""
        media = content_type.split(";", 1)[0].strip().lower()
        encoding = _MEDIA_TYPES.get(media)
        if encoding is None:
            return _error(
                415,
                "stream.in.unsupportedContentType",
                f'Content type "{content_type}" is not supported by OTLP/HTTP: use "application/x-protobuf" '
                'or "application/json".',
            )
        content_encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        gzip = _GZIP.get(content_encoding)
        if gzip is None:
            return _error(
                415,
                "stream.in.unsupportedContentType",
                f'Content encoding "{content_encoding}" is not supported: use "gzip" or none.',
            )
        body, refused = self._read_body(environ)
        if refused is not None:
            return refused

        ip = self._client_ip(environ)
        # The secret is the client's credential, not part of its records.
        headers_environ = {k: v for k, v in environ.items() if k != "HTTP_AUTHORIZATION"}
        request = _Request(target.signal, encoding, gzip, body, headers_environ, ip, received_at_ns)
        results = []
        for branch in active:
            try:
                results.append(self._write(branch, request))
            except OtlpError as exc:
                if exc.too_large:
                    return _error(413, "stream.in.bodyTooLarge", exc.message)
                return _error(400, "stream.in.badRequest", exc.message)
        return _respond(results, target.signal, encoding, media)

    def _read_body(self, environ: dict[str, Any]) -> tuple[bytes, tuple[int, list[tuple[str, str]], bytes] | None]:
        limit = self.options.max_batch_bytes
        length_text = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length_text:
            if not length_text.isdigit():
                return b"", _error(400, "stream.in.badRequest", "Invalid Content-Length header.")
            length = int(length_text)
            if length > limit:
                return b"", _too_large(limit)
            body: bytes = stream.read(length) if length else b""
            if len(body) != length:
                return b"", _error(400, "stream.in.badRequest", "The request body is shorter than its Content-Length.")
            return body, None
        body = stream.read(limit + 1)
        if len(body) > limit:
            return b"", _too_large(limit)
        return body, None

    def _client_ip(self, environ: dict[str, Any]) -> str:
        if self.options.trust_forwarded_for:
            forwarded: str = environ.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                return forwarded.split(",", 1)[0].strip()
        remote: str = environ.get("REMOTE_ADDR", "")
        return remote

    def _write(self, branch: BranchRoute, request: _Request) -> tuple[int, _Outcomes]:
        records, outcomes = self._ingest(branch, branch.signal_sets[request.signal], request)
        for _ in range(3):
            closed = {o[0] for o in outcomes if o[1] == "writer_closed"}
            if not closed:
                break
            # The slice rotated under this request: write those sinks to their new slices.
            fresh = next(
                (b for b in self.node.routes(branch.project_id, branch.source_id) if b.branch_id == branch.branch_id),
                None,
            )
            if fresh is None:
                break
            _, retried = self._ingest(fresh, fresh.subset(closed), request)
            by_id = {o[0]: o for o in retried}
            outcomes = [by_id.get(o[0], o) for o in outcomes]
        return records, outcomes

    def _ingest(self, branch: BranchRoute, sink_set: SinkSet, request: _Request) -> tuple[int, _Outcomes]:
        if branch.needs_headers:
            headers_kw: dict[str, Any] = {"environ": request.environ}
        else:
            headers_kw = {"headers": {"Content-Type": request.environ.get("CONTENT_TYPE") or ""}}
        return sink_set.ingest_otlp(
            request.body,
            request.signal,
            request.encoding,
            gzip=request.gzip,
            ip=request.ip,
            received_at_ns=request.received_at_ns,
            max_body_bytes=self.options.max_batch_bytes,
            max_record_bytes=self.options.max_record_bytes,
            **headers_kw,
        )


def _respond(
    results: list[tuple[int, _Outcomes]], signal: Signal, encoding: Encoding, media: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    records = max((r[0] for r in results), default=0)
    failures = []
    written = total = 0
    for _records, outcomes in results:
        for sink_id, outcome, _rows, message in outcomes:
            total += 1
            if outcome in ("processed", "accepted"):
                written += 1
            else:
                status, error = _SINK_ERRORS.get(outcome, (500, "stream.in.internalError"))
                failures.append((status, error, f'sink "{sink_id}": {message}'))
    headers = [("Content-Type", media), _ALLOW_ORIGIN]
    if not failures:
        return 200, headers, otlp_response(signal, encoding)
    summary = f"Written to {written}/{total} sinks: " + "; ".join(f[2] for f in failures)
    if written:
        # Some sinks have the records, others do not: a retry would duplicate them
        # in the first, so the client is told, not asked to retry.
        return 200, headers, otlp_response(signal, encoding, records, summary)
    status, error, _ = max(failures)
    document = {"statusCode": status, "error": error, "message": summary}
    json_headers = [("Content-Type", "application/json"), _ALLOW_ORIGIN]
    if status == 503:
        json_headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    return status, json_headers, orjson.dumps(document)
