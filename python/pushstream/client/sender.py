"""Sends checked inputs to a source's ingest URL as NDJSON batches, over several
keep-alive connections, with retries on network errors and 5xx answers.

The receiver takes a batch all or nothing and acknowledges it once it is on disk,
so a connection spends most of its time waiting for the group commit: a few
connections in parallel keep the server busy. The batches are the chunks the
check cut (whole lines); they are never re-encoded, and from a plain file they go
to the socket with ``sendfile`` (no copy through Python), so the client stays cheap
next to the server on a shared machine.

A batch that fails with a network error or a 5xx may have been written before the
answer was lost: a retry can then store its records twice. Give the sink a primary
key (rows are deduplicated on it) where that matters.
"""

from __future__ import annotations

import http.client
import io
import os
import queue
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from pushstream.client.errors import ClientError, NetworkError, RejectedError, ServerError
from pushstream.client.inputs import InputSet, PreparedInput, iter_chunks

DEFAULT_BATCH_SIZE = 4 << 20
DEFAULT_PARALLEL = 4
DEFAULT_RETRIES = 5
#: Smallest batch the sender splits down to when the server says a batch is too large.
MIN_BATCH_SIZE = 64 << 10

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The limit in a 413 answer: ``... over the maximum "1048576B".`` (older servers: ``maximum size is 1MB``).
_MAX_SIZE = re.compile(r'maximum (?:size is |\\?")(\d+)(B|KB|MB|GB)')
_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}

#: ``progress(records, bytes)`` after every acknowledged batch.
Progress = Callable[[int, int], None]


@dataclass
class IngestResult:
    """What was acknowledged: records, bytes, requests (batches), retries and seconds."""

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
    #: Line breaks and records in the batch.
    lines: int
    records: int
    #: The body: bytes in memory, or a range of a plain file.
    data: bytes | None = None
    path: Path | None = None
    offset: int = 0
    length: int = 0

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.length

    def load(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return _pread(self.path, self.offset, self.length)


class _TooLargeError(Exception):
    def __init__(self, limit: int | None) -> None:
        super().__init__("batch too large")
        self.limit = limit


class _Connection:
    """One keep-alive HTTP/1.1 connection that posts NDJSON bodies, from memory or
    straight from a file (``socket.sendfile``)."""

    def __init__(self, scheme: str, host: str, port: int, timeout: float) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.host_header = host if port in (80, 443) else f"{host}:{port}"
        self._files: dict[Path, Any] = {}

    def post(self, path: str, batch: _Batch) -> tuple[int, bytes]:
        """Sends one batch and reads the answer: (status, body)."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host_header}\r\nUser-Agent: pushstream-cli\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {batch.size}\r\n\r\n"
        ).encode("latin-1")
        self.sock.sendall(head)
        if batch.data is not None:
            self.sock.sendall(batch.data)
        else:
            assert batch.path is not None
            file = self._files.get(batch.path)
            if file is None:
                file = self._files[batch.path] = batch.path.open("rb")
            sent = self.sock.sendfile(file, batch.offset, batch.length)
            if sent != batch.length:
                raise OSError(f"the file ended early ({sent} of {batch.length} bytes sent)")
        response = http.client.HTTPResponse(self.sock, method="POST")
        try:
            response.begin()
            body = response.read()
        finally:
            response.close()
        if response.will_close:
            self.close()
        return response.status, body

    @property
    def closed(self) -> bool:
        return self.sock.fileno() < 0

    def close(self) -> None:
        self.sock.close()
        for file in self._files.values():
            file.close()
        self._files.clear()


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
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
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
                for batch in self._batches(source, seq):
                    if self._stop.is_set():
                        break
                    jobs.put(batch)
                    seq = batch.seq + 1
                if self._stop.is_set():
                    break
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

    def _batches(self, source: PreparedInput, seq: int) -> Iterator[_Batch]:
        """The chunks of an input as batches: ranges of a plain file, bytes read from
        a compressed one; cut smaller in memory once the server asked for that."""
        stream = None if source.plain else source.open()
        try:
            line = 1
            for chunk in source.chunks:
                where = source.file_range(chunk)
                data = _read(stream, chunk.length) if stream is not None else None
                first, line = line, line + chunk.breaks
                if chunk.records == 0:
                    continue
                if chunk.length <= self.batch_size:
                    if data is not None:
                        yield _Batch(seq, source, first, chunk.breaks, chunk.records, data=data)
                    else:
                        path, offset = where
                        yield _Batch(seq, source, first, chunk.breaks, chunk.records, path=path, offset=offset,
                                     length=chunk.length)  # fmt: skip
                    seq += 1
                    continue
                if data is None:
                    data = _pread(*where, chunk.length)
                for piece in iter_chunks(io.BytesIO(data), self.batch_size):
                    breaks = piece.count(b"\n")
                    lines = breaks + (0 if piece.endswith(b"\n") else 1)
                    if piece.strip():
                        yield _Batch(seq, source, first, lines, lines, data=piece)
                        seq += 1
                    first += breaks
        finally:
            if stream is not None:
                stream.close()

    def _fail(self, seq: int, error: ClientError) -> None:
        with self._lock:
            self._errors.append((seq, error))
        self._stop.set()

    def _work(self, jobs: queue.Queue[_Batch | None]) -> None:
        connection: _Connection | None = None
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

    def _deliver(self, connection: _Connection | None, batch: _Batch) -> _Connection | None:
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
                        f"batch ({part.size:,} bytes)"
                    ) from None
                with self._lock:
                    limit = exc.limit or part.size // 2
                    # Later batches: stay below what the server said, with room for HTTP framing.
                    self.batch_size = max(MIN_BATCH_SIZE, min(self.batch_size, limit - (limit >> 6)))
                pending[:0] = halves
        return connection

    def _post(self, connection: _Connection | None, batch: _Batch) -> _Connection | None:
        attempt = 0
        while True:
            failure: ClientError
            try:
                if connection is None or connection.closed:
                    connection = _Connection(self._scheme, self._host, self._port, self.timeout)
                status, body = connection.post(self._path, batch)
            except (OSError, http.client.HTTPException) as exc:
                if connection is not None:
                    connection.close()
                connection = None
                failure = NetworkError(f"sending to {self._host}:{self._port} failed: {_describe(exc)}")
            else:
                if status in (200, 202):
                    self._acknowledged(batch)
                    return connection
                if status == 413:
                    raise _TooLargeError(_max_size(body))
                failure = self._answer_error(status, body, batch)
                if status not in RETRY_STATUSES:
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
            self._result.records += batch.records
            self._result.bytes += batch.size
            self._result.batches += 1
        if self.progress is not None:
            self.progress(batch.records, batch.size)

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


def _pread(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        data = os.pread(f.fileno(), length, offset)
    if len(data) != length:
        raise OSError("the input changed while it was sent")
    return data


def _read(stream: Any, length: int) -> bytes:
    data: bytes = stream.read(length)
    if len(data) != length:
        raise OSError("the input changed while it was sent")
    return data


def _split(batch: _Batch) -> list[_Batch] | None:
    """Two batches of about half the lines each, or ``None`` for a single line."""
    data = batch.load()
    middle = data.rfind(b"\n", 0, len(data) // 2)
    if middle < 0:
        middle = data.find(b"\n", len(data) // 2)
    if middle < 0 or not data[middle + 1 :].strip() or not data[: middle + 1].strip():
        return None
    head, tail = data[: middle + 1], data[middle + 1 :]
    head_lines = head.count(b"\n")
    tail_lines = max(batch.lines - head_lines, 1)
    head_records = min(head_lines, batch.records)
    return [
        _Batch(batch.seq, batch.source, batch.first_line, head_lines, head_records, data=head),
        _Batch(batch.seq, batch.source, batch.first_line + head_lines, tail_lines, batch.records - head_records,
               data=tail),
    ]  # fmt: skip


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
