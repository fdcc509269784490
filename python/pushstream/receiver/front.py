"""The ASGI front of ``pushstream serve``: it receives every request body on the
event loop, then runs the WSGI application (receiver and API) on thread pools.

Why not let the WSGI server call the application directly: a WSGI thread that
reads ``wsgi.input`` blocks until the client has sent the whole body, with no
timeout, and granian's WSGI body reader turns a connection cut in the middle of
a body into a short, seemingly complete body. Here:

- a body is read on the event loop, so slow clients hold no thread; a body that
  is not complete within ``body_timeout`` is answered ``408`` and the connection
  closed;
- a body that ends before its ``Content-Length`` or a chunked body without its
  last chunk (the client went away) is never handed to the application: nothing
  of it is stored;
- ingest requests (``POST /stream/...``) beyond ``max_ingest_requests`` at once
  (being received or processed) get ``503 stream.in.serviceUnavailable`` with
  ``Retry-After`` without their body being read;
- ingest requests and API requests run on separate thread pools, so the API
  (``/v1``, ``/health-check``) is never starved by the receiver.

While an ingest request is processed, its source and client are noted in a
per-worker file (:class:`InFlightBoard`), which the server reads to log what a
worker was doing when it crashed.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import mmap
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pushstream._core import is_batch_content_type

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

INGEST_PREFIX = "/stream/"
#: The OpenTelemetry endpoints of OTLP sources: ingest requests too, bounded by the batch limit.
OTLP_PREFIX = "/otlp/"
#: Threads of the API pool (``/v1``, service endpoints): apart from the ingest threads.
API_THREADS = 16
#: Seconds a client is asked to wait after a ``503`` for too many ingest requests.
RETRY_AFTER_SECONDS = 1

_BASE_ENVIRON: dict[str, Any] = {
    "SCRIPT_NAME": "",
    "SERVER_SOFTWARE": "pushstream",
    "wsgi.errors": sys.stderr,
    "wsgi.input_terminated": True,
    "wsgi.multiprocess": True,
    "wsgi.multithread": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}


@dataclass(frozen=True)
class FrontOptions:
    """Limits of the front (see ``pushstream serve --help``)."""

    #: Largest body of a single-event ingest request, and of a batch (NDJSON, CSV) one.
    max_record_bytes: int
    max_batch_bytes: int
    #: Seconds from the end of the headers until the whole body must have arrived.
    body_timeout: float = 60.0
    #: Ingest requests being received or processed at once (per worker).
    max_ingest_requests: int = 1024
    #: Threads that process ingest requests (they wait for the group commit).
    ingest_threads: int = 64
    api_threads: int = API_THREADS
    #: Largest request headers of an API request (``Name: value\r\n`` lines); ingest
    #: requests are checked by the receiver, which answers ``stream.in.headerTooLarge``.
    max_header_bytes: int = 64 << 10


class _Pool:
    """Threads that run blocking calls for the event loop. Lighter than
    ``loop.run_in_executor`` (measured: it halves the requests per second of the
    whole server): one queue put per call, and results handed back in batches, with
    one wake-up of the event loop for all the results that are ready."""

    def __init__(self, threads: int, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._done: collections.deque[tuple[asyncio.Future[Any], bool, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._drain_scheduled = False
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, future, fn, args = item
            try:
                done = (future, True, fn(*args))
            except BaseException as exc:  # handed to the awaiting coroutine
                done = (future, False, exc)
            self._done.append(done)
            with self._lock:
                if self._drain_scheduled:
                    continue
                self._drain_scheduled = True
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            self._drain_scheduled = False
        while self._done:
            future, ok, value = self._done.popleft()
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()


class _BodyCutError(Exception):
    """The client went away before the end of the body."""


class InFlightBoard:
    """What each ingest thread of this process is doing, in a small shared file:
    one fixed-size slot per thread, written when a request starts and cleared when
    it ends. After a crash the file tells which requests were being processed."""

    SLOT = 256

    def __init__(self, path: Path, slots: int) -> None:
        self.path = path
        self.slots = slots
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Allocated, not sparse: a store into a page of a sparse file that the
            # file system cannot back (a full disk) kills the process with SIGBUS.
            os.posix_fallocate(fd, 0, self.SLOT * slots)
            self._map = mmap.mmap(fd, self.SLOT * slots)
        finally:
            os.close(fd)
        self._local = threading.local()
        self._next = 0
        self._lock = threading.Lock()

    def _slot(self) -> int:
        slot: int | None = getattr(self._local, "slot", None)
        if slot is None:
            with self._lock:
                slot = self._next % self.slots
                self._next += 1
            self._local.slot = slot
        return slot

    def enter(self, note: str) -> None:
        start = self._slot() * self.SLOT
        data = note.encode("utf-8", "replace")[: self.SLOT - 1]
        self._map[start : start + len(data) + 1] = data + b"\n"

    def leave(self) -> None:
        start = self._slot() * self.SLOT
        self._map[start] = 0

    def close(self) -> None:
        self._map.close()
        self.path.unlink(missing_ok=True)

    @staticmethod
    def read(path: Path) -> list[str]:
        """The requests noted in a board file (of a process that may be dead)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        notes = []
        for start in range(0, len(data), InFlightBoard.SLOT):
            slot = data[start : start + InFlightBoard.SLOT]
            if slot[:1] not in (b"", b"\0"):
                notes.append(slot.split(b"\n", 1)[0].decode("utf-8", "replace"))
        return notes


def board_path(data_dir: Path, pid: int) -> Path:
    """The in-flight board of the worker process ``pid``."""
    return data_dir / "run" / f"inflight-{pid}"


class ServerFront:
    """An ASGI application (granian's ``asgi`` interface without lifespan) in front of a WSGI app."""

    def __init__(self, app: WSGIApp, options: FrontOptions, board: InFlightBoard | None = None) -> None:
        self.app = app
        self.options = options
        self.board = board
        self._ingest_pool = _Pool(options.ingest_threads, "ingest")
        self._api_pool = _Pool(options.api_threads, "api")
        #: Ingest requests admitted and not finished; changed on the event loop only.
        self._ingest_requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        ingest = scope["method"] == "POST" and scope["path"].startswith((INGEST_PREFIX, OTLP_PREFIX))
        if not ingest:
            header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if header_bytes > self.options.max_header_bytes:
                limit = self.options.max_header_bytes
                document = {
                    "statusCode": 413,
                    "error": "stream.api.headerTooLarge",
                    "message": f'Request header size is over the maximum "{limit}B".',
                }
                await _answer(send, 413, document, [(b"connection", b"close")])
                return
            await self._serve(scope, receive, send, self._api_pool, limit=self._api_limit(), ingest=False)
            return
        if self._ingest_requests >= self.options.max_ingest_requests:
            await _answer(
                send,
                503,
                {
                    "statusCode": 503,
                    "error": "stream.in.serviceUnavailable",
                    "message": "Too many requests at once, retry later.",
                },
                [(b"retry-after", str(RETRY_AFTER_SECONDS).encode()), (b"connection", b"close")],
            )
            return
        self._ingest_requests += 1
        try:
            await self._serve(scope, receive, send, self._ingest_pool, limit=self._ingest_limit(scope), ingest=True)
        finally:
            self._ingest_requests -= 1

    def _ingest_limit(self, scope: dict[str, Any]) -> int:
        if scope["path"].startswith(OTLP_PREFIX):
            return self.options.max_batch_bytes
        is_batch = is_batch_content_type(_header(scope, b"content-type"))
        return self.options.max_batch_bytes if is_batch else self.options.max_record_bytes

    def _api_limit(self) -> int:
        return self.options.max_batch_bytes

    async def _serve(
        self, scope: dict[str, Any], receive: Receive, send: Send, pool: _Pool, *, limit: int, ingest: bool
    ) -> None:
        environ = _environ(scope)
        length_text = environ.get("CONTENT_LENGTH", "")
        declared = int(length_text) if length_text.isdigit() else None
        if declared is not None and declared > limit:
            if not ingest:
                await _too_large(send, limit)
                return
            # The receiver answers 413 from the header alone; the body is not read.
            body = b""
        else:
            try:
                # asyncio.timeout, not wait_for: no task per request.
                async with asyncio.timeout(self.options.body_timeout):
                    body = await _read_body(receive, limit, declared)
            except _BodyCutError:
                # Nothing of it reaches the application. The client is gone, or has
                # half-closed its side and may still read the answer.
                log.info("request body cut by the client: %s %s", scope["method"], _where(scope))
                prefix = "stream.in" if ingest else "stream.api"
                document = {
                    "statusCode": 400,
                    "error": f"{prefix}.badRequest",
                    "message": "The connection ended before the end of the request body; nothing was stored.",
                }
                try:
                    await _answer(send, 400, document, [(b"connection", b"close")])
                except Exception:  # the connection is gone: nobody to answer
                    log.debug("no answer to a cut request", exc_info=True)
                return
            except TimeoutError:
                prefix = "stream.in" if ingest else "stream.api"
                document = {
                    "statusCode": 408,
                    "error": f"{prefix}.requestTimeout",
                    "message": f"The request body did not arrive within {self.options.body_timeout:g} s.",
                }
                try:
                    await _answer(send, 408, document, [(b"connection", b"close")])
                except Exception:  # the connection is gone: nobody to answer
                    log.debug("no answer to a request that timed out", exc_info=True)
                return
            if len(body) > limit and not ingest:
                await _too_large(send, limit)
                return
            if declared is None or len(body) > limit:
                # Chunked: the length is now known (one byte over the limit when oversize).
                environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        note = f"{scope['method']} {_where(scope)} from {environ.get('REMOTE_ADDR', '')}" if ingest else ""
        status, headers, chunks = await pool.run(self._call, environ, note)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    def _call(self, environ: dict[str, Any], note: str) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        board = self.board if note else None
        if board is not None:
            board.enter(note)
        try:
            started: list[Any] = []

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
                started[:] = [status, headers]

            result = self.app(environ, start_response)
            try:
                chunks = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status_text, header_list = started
            encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in header_list]
            return int(status_text.split(" ", 1)[0]), encoded, chunks
        finally:
            if board is not None:
                board.leave()

    def close(self) -> None:
        self._ingest_pool.shutdown()
        self._api_pool.shutdown()
        if self.board is not None:
            self.board.close()


async def _read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The whole body, or its first ``limit + 1`` bytes when it is larger; raises
    :class:`_BodyCutError` when the client goes away before its end."""
    if declared == 0:
        return b""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _BodyCutError
        chunk = message.get("body", b"")
        if chunk:
            parts.append(chunk)
            size += len(chunk)
            if size > limit or size == declared:
                # All that was declared has arrived (the HTTP layer never delivers more).
                body = parts[0] if len(parts) == 1 else b"".join(parts)
                return body[: limit + 1]
        if not message.get("more_body", False):
            return b"".join(parts)


async def _answer(send: Send, status: int, document: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(document)})


async def _too_large(send: Send, limit: int) -> None:
    message = f"Payload too large, the maximum size is {limit} bytes."
    document = {"statusCode": 413, "error": "stream.api.bodyTooLarge", "message": message}
    await _answer(send, 413, document, [(b"connection", b"close")])


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _where(scope: dict[str, Any]) -> str:
    """The path of a request without the source's secret (the last part of an ingest path)."""
    path: str = scope["path"]
    if path.startswith(INGEST_PREFIX):
        return path.rsplit("/", 1)[0] + "/…"
    if path.startswith(OTLP_PREFIX):
        parts = path.split("/")
        if len(parts) == 7:  # /otlp/<project>/<source>/<secret>/v1/<signal>
            parts[4] = "…"
        return "/".join(parts)
    return path


def _environ(scope: dict[str, Any]) -> dict[str, Any]:
    """The WSGI environ of an ASGI request (as granian's WSGI interface builds it)."""
    environ = dict(_BASE_ENVIRON)
    environ["REQUEST_METHOD"] = scope["method"]
    # WSGI wants the decoded path as latin-1 "bytes in a str".
    environ["PATH_INFO"] = scope["path"].encode("utf-8", "surrogateescape").decode("latin-1")
    environ["QUERY_STRING"] = scope["query_string"].decode("latin-1")
    environ["SERVER_PROTOCOL"] = f"HTTP/{scope.get('http_version', '1.1')}"
    environ["wsgi.url_scheme"] = scope.get("scheme", "http")
    server = scope.get("server") or ("", 0)
    environ["SERVER_NAME"], environ["SERVER_PORT"] = str(server[0]), str(server[1])
    client = scope.get("client")
    environ["REMOTE_ADDR"] = client[0] if client else ""
    for key, value in scope["headers"]:
        name = key.decode("latin-1")
        text = value.decode("latin-1")
        if name == "content-type":
            environ["CONTENT_TYPE"] = text
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = text
        else:
            wsgi_name = "HTTP_" + name.upper().replace("-", "_")
            if wsgi_name in environ:
                separator = ";" if wsgi_name == "HTTP_COOKIE" else ","
                environ[wsgi_name] += separator + text
            else:
                environ[wsgi_name] = text
    return environ
