"""Sends checked inputs to a source's ingest URL as NDJSON batches, over several
keep-alive connections, with retries on network errors and 5xx answers.

The receiver takes a batch all or nothing and acknowledges it once it is on disk,
so a connection spends most of its time waiting for the group commit: a few
connections in parallel keep the server busy. Batches are cut at line breaks from
the bytes of the input, never re-encoded.

A batch that fails with a network error or a 5xx may have been written before the
answer was lost: a retry can then store its records twice. Give the sink a primary
key (rows are deduplicated on it) where that matters.
"""

from __future__ import annotations

import http.client
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from pushstream.client.errors import ClientError, NetworkError, RejectedError, ServerError
from pushstream.client.inputs import InputSet, PreparedInput, iter_batches

DEFAULT_BATCH_SIZE = 4 << 20
DEFAULT_PARALLEL = 4
DEFAULT_RETRIES = 5
#: Smallest batch the sender splits down to when the server says a batch is too large.
MIN_BATCH_SIZE = 64 << 10

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_SIZE = re.compile(r"maximum size is (\d+)(B|KB|MB|GB)")
_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}

#: ``progress(records, bytes)`` after every acknowledged batch.
Progress = Callable[[int, int], None]


@dataclass
class IngestResult:
    """What was sent: records (lines), bytes, requests (batches), retries and seconds."""

    records: int = 0
    bytes: int = 0
    batches: int = 0
    retries: int = 0
    seconds: float = 0.0


@dataclass
class _Batch:
    seq: int
    source: PreparedInput
    first_line: int
    data: bytes
    lines: int


class _TooLargeError(Exception):
    def __init__(self, limit: int | None) -> None:
        super().__init__("batch too large")
        self.limit = limit


class Sender:
    """Posts batches to one ingest URL (``http(s)://host/stream/<project>/<source>/<secret>``)."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        parallel: int = DEFAULT_PARALLEL,
        retries: int = DEFAULT_RETRIES,
        timeout: float = 120.0,
        retry_delay: float = 0.5,
        progress: Progress | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f'the ingest URL "{url}" is not an http:// or https:// URL')
        self.url = url
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.batch_size = batch_size
        self.parallel = max(1, parallel)
        self.retries = retries
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.progress = progress
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._errors: list[tuple[int, ClientError]] = []
        self._result = IngestResult()

    def send(self, inputs: InputSet) -> IngestResult:
        """Sends every input in order; raises the first error (in input order) after
        the batches in flight have finished."""
        started = time.perf_counter()
        jobs: queue.Queue[_Batch | None] = queue.Queue(maxsize=self.parallel * 2)
        workers = [threading.Thread(target=self._work, args=(jobs,), daemon=True) for _ in range(self.parallel)]
        for worker in workers:
            worker.start()
        seq = 0
        try:
            for source in inputs.inputs:
                if self._stop.is_set():
                    break
                with source.open() as stream:
                    line = 1
                    for data, lines in iter_batches(stream, self.batch_size):
                        if self._stop.is_set():
                            break
                        jobs.put(_Batch(seq, source, line, data, lines))
                        seq += 1
                        line += lines
        except OSError as exc:
            self._fail(seq, ClientError(f"reading the input failed: {exc}"))
        finally:
            for _ in workers:
                jobs.put(None)
            for worker in workers:
                worker.join()
        self._result.seconds = time.perf_counter() - started
        if self._errors:
            raise min(self._errors, key=lambda e: e[0])[1]
        return self._result

    @property
    def result(self) -> IngestResult:
        """What was acknowledged so far (also after an error)."""
        return self._result

    def _fail(self, seq: int, error: ClientError) -> None:
        with self._lock:
            self._errors.append((seq, error))
        self._stop.set()

    def _work(self, jobs: queue.Queue[_Batch | None]) -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            batch = jobs.get()
            if batch is None:
                break
            if self._stop.is_set():
                continue
            try:
                connection = self._deliver(connection, batch)
            except ClientError as exc:
                self._fail(batch.seq, exc)
            except Exception as exc:  # a bug must not hang the other threads
                self._fail(batch.seq, ClientError(f"sending failed: {exc!r}"))
        if connection is not None:
            connection.close()

    def _deliver(self, connection: http.client.HTTPConnection | None, batch: _Batch) -> http.client.HTTPConnection:
        """Sends one batch, splitting it when the server finds it too large."""
        pending = [batch]
        while pending:
            part = pending.pop(0)
            try:
                connection = self._post(connection, part)
            except _TooLargeError as exc:
                halves = _split(part)
                if halves is None:
                    raise RejectedError(
                        f"{part.source.where(part.first_line)}: the record is larger than the server takes in a "
                        f"batch ({len(part.data):,} bytes)"
                    ) from None
                with self._lock:
                    limit = exc.limit or len(part.data) // 2
                    # Later batches: stay below what the server said, with room for HTTP framing.
                    self.batch_size = max(MIN_BATCH_SIZE, min(self.batch_size, limit - (limit >> 6)))
                pending[:0] = halves
        assert connection is not None
        return connection

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout)

    def _post(self, connection: http.client.HTTPConnection | None, batch: _Batch) -> http.client.HTTPConnection:
        attempt = 0
        while True:
            if connection is None:
                connection = self._connect()
            failure: ClientError
            try:
                connection.request(
                    "POST",
                    self._path,
                    body=batch.data,
                    headers={"Content-Type": "application/x-ndjson", "User-Agent": "pushstream-cli"},
                )
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = None
                failure = NetworkError(f"sending to {self._host}:{self._port or ''} failed: {_describe(exc)}")
            else:
                status = response.status
                if status in (200, 202):
                    self._acknowledged(batch)
                    return connection
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
                if status == 413:
                    raise _TooLargeError(_max_size(body))
                failure = self._answer_error(status, body, batch)
                if status not in _RETRY_STATUSES:
                    raise failure
            if attempt >= self.retries or self._stop.is_set():
                raise failure
            with self._lock:
                self._result.retries += 1
            # Exponential backoff with jitter, so parallel connections do not retry in step.
            time.sleep(min(self.retry_delay * 2**attempt, 15.0) * random.uniform(0.5, 1.0))
            attempt += 1

    def _acknowledged(self, batch: _Batch) -> None:
        with self._lock:
            self._result.records += batch.lines
            self._result.bytes += len(batch.data)
            self._result.batches += 1
        if self.progress is not None:
            self.progress(batch.lines, len(batch.data))

    def _answer_error(self, status: int, body: bytes, batch: _Batch) -> ClientError:
        document: Any
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            text = body.decode(errors="replace").strip()[:200]
            return ServerError(status, "", f"the server answered {status}: {text or 'no details'}")
        error = str(document.get("error") or "")
        message = str(document.get("message") or "")
        if status == 400 and error == "stream.in.badRequest":
            # A batch error names the line of the request body.
            match = re.match(r"line (\d+): (.*)", message, re.DOTALL)
            if match:
                where = batch.source.where(batch.first_line + int(match.group(1)) - 1)
                return RejectedError(f"{where}: the server rejected the record: {match.group(2)}")
            return RejectedError(f"{self._span(batch)}: the server rejected the batch: {message}")
        if error == "stream.in.writeFailed" and 400 <= status < 500:
            # Sinks that could not map a record of the batch took none of it (others may have).
            failures = []
            for source in document.get("sources") or []:
                for sink in source.get("sinks") or []:
                    if sink.get("statusCode", 200) < 300:
                        continue
                    text = str(sink.get("message") or sink.get("error") or "")
                    match = re.match(r"record (\d+): (.*)", text, re.DOTALL)
                    where = self._span(batch)
                    if match:
                        where = batch.source.where(batch.first_line + int(match.group(1)) - 1)
                        text = match.group(2)
                    failures.append(f'{where}: sink "{sink.get("sinkId")}": {text}')
            detail = "\n".join(failures) or f"{self._span(batch)}: {message}"
            return RejectedError(f"{detail}\n(the server: {message})")
        return ServerError(status, error, message, document)

    @staticmethod
    def _span(batch: _Batch) -> str:
        start = batch.source.where(batch.first_line)
        if batch.lines <= 1:
            return start
        return f"{start} (a batch of {batch.lines:,} lines)"


def _split(batch: _Batch) -> list[_Batch] | None:
    """Two batches of about half the lines each, or ``None`` for a single line."""
    data = batch.data
    middle = data.rfind(b"\n", 0, len(data) // 2)
    if middle < 0:
        middle = data.find(b"\n", len(data) // 2)
    if middle < 0 or not data[middle + 1 :].strip() or not data[: middle + 1].strip():
        return None
    head, tail = data[: middle + 1], data[middle + 1 :]
    head_lines = head.count(b"\n")
    return [
        _Batch(batch.seq, batch.source, batch.first_line, head, head_lines),
        _Batch(batch.seq, batch.source, batch.first_line + head_lines, tail, max(batch.lines - head_lines, 1)),
    ]


def _max_size(body: bytes) -> int | None:
    match = _MAX_SIZE.search(body.decode(errors="replace"))
    return int(match.group(1)) * _UNITS[match.group(2)] if match else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
        return "the server closed the connection"
    return str(exc) or type(exc).__name__
