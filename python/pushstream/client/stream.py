"""Sending events to a pushstream source from Python: :class:`StreamClient`, the
public face of :mod:`pushstream.client.sender`, which ``pushstream ingest`` uses too.

Events go to the source's ingest URL as NDJSON batches (many events per request),
over a few keep-alive connections in parallel, retried after network errors and
5xx answers. A batch is acknowledged once the server has it on disk; the receiver
takes a batch all or nothing, and a retry after a lost answer can store a batch
twice (a primary key on the sink removes such duplicates).

::

    from pushstream.client import StreamClient

    client = StreamClient.for_source("http://127.0.0.1:8000", token, "events")
    client.send({"id": 1, "user": {"id": "u1"}})            # one event, one request
    result = client.send_many({"id": i} for i in range(10_000))  # NDJSON batches
    print(result.records, result.batches)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from pushstream.client.errors import ClientError, InputError, NetworkError, RejectedError
from pushstream.client.inputs import InputSet, prepare_inputs
from pushstream.client.sender import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PARALLEL,
    DEFAULT_RETRIES,
    RETRY_STATUSES,
    IngestResult,
    Progress,
    Sender,
)

#: What :meth:`StreamClient.send` and :meth:`StreamClient.send_many` take: a JSON
#: object (serialised with orjson) or one event's JSON text as bytes.
Event = Mapping[str, Any] | bytes


class StreamClient:
    """Sends events to one source's ingest URL
    (``http(s)://host/stream/<projectId>/<sourceId>/<secret>``).

    ``batch_size``: bytes per request (whole events; the server's
    ``--max-batch-size`` is the limit, smaller batches are cut when it answers
    413); ``parallel``: connections; ``retries``: attempts after a network error
    or a 5xx answer, with a growing delay. Errors are
    :class:`~pushstream.client.errors.ClientError` (``RejectedError`` when the
    server refused events, ``NetworkError``, ``ServerError``)."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        parallel: int = DEFAULT_PARALLEL,
        retries: int = DEFAULT_RETRIES,
        timeout: float = 120.0,
        retry_delay: float = 0.5,
    ) -> None:
        self.url = url
        self.batch_size = batch_size
        self.parallel = parallel
        self.retries = retries
        self.timeout = timeout
        self.retry_delay = retry_delay
        self._session: Any = None
        # Checks the URL now rather than at the first send.
        self._sender(None)
        #: The ingest URL without its secret, for messages.
        self._where = url.rsplit("/", 1)[0] + "/…"

    @classmethod
    def for_source(
        cls, api_url: str, token: str, source_id: str, *, branch: str = "default", **options: Any
    ) -> StreamClient:
        """A client of the source ``source_id``, its ingest URL read from the Stream API at ``api_url``."""
        from pushstream.client.api import StreamApi

        with StreamApi(api_url, token, branch=branch) as api:
            url = (api.source(source_id).get("http") or {}).get("url")
        if not url:
            raise ClientError(f'source "{source_id}" has no ingest URL (not an HTTP source?)')
        return cls(str(url), **options)

    def send(self, event: Event) -> IngestResult:
        """Sends one event in one request (a keep-alive connection kept by the
        client); returns once the server has it on disk. Retried like a batch."""
        import requests

        body = event if isinstance(event, bytes) else orjson.dumps(event)
        started = time.perf_counter()
        if self._session is None:
            self._session = requests.Session()
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._session.post(
                    self.url, data=body, headers={"Content-Type": "application/json"}, timeout=self.timeout
                )
            except requests.RequestException as exc:
                if last:
                    raise NetworkError(f"sending to {self._where} failed: {exc}") from None
            else:
                if response.status_code < 300:
                    return IngestResult(1, len(body), 1, attempt, time.perf_counter() - started)
                if last or response.status_code not in RETRY_STATUSES:
                    raise _answer_error(response.status_code, response.content)
            time.sleep(self.retry_delay * 2**attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def close(self) -> None:
        """Closes the connection of :meth:`send` (the batch methods close theirs)."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_many(self, events: Iterable[Event], *, progress: Progress | None = None) -> IngestResult:
        """Sends events as NDJSON batches (spooled to a temporary file first, so an
        iterator of any length is fine); returns what was acknowledged."""
        with tempfile.TemporaryDirectory(prefix="pushstream-client-") as tmp:
            path = Path(tmp) / "events.ndjson"
            with path.open("wb") as out:
                for event in events:
                    line = event if isinstance(event, bytes) else orjson.dumps(event)
                    if b"\n" in line.rstrip(b"\n"):
                        raise InputError("event", "an event given as bytes must be one line of JSON")
                    out.write(line.rstrip(b"\n") + b"\n")
            with prepare_inputs([str(path)], fmt="ndjson", chunk_size=self.batch_size) as inputs:
                return self.send_inputs(inputs, progress=progress)

    def send_files(self, files: Iterable[str | Path], *, fmt: str | None = None) -> IngestResult:
        """Checks and sends files (NDJSON, a JSON array, CSV with a header row; .gz
        or .zst compressed), as ``pushstream ingest`` does."""
        with prepare_inputs([str(f) for f in files], fmt=fmt, chunk_size=self.batch_size) as inputs:
            return self.send_inputs(inputs)

    def send_inputs(self, inputs: InputSet, *, progress: Progress | None = None) -> IngestResult:
        """Sends inputs already checked by :func:`~pushstream.client.inputs.prepare_inputs`.
        On an error, the exception is raised after the batches in flight are done;
        :attr:`last_result` then says what had been acknowledged."""
        sender = self._sender(progress)
        self.last_result = sender.result
        return sender.send(inputs)

    def _sender(self, progress: Progress | None) -> Sender:
        return Sender(
            self.url,
            batch_size=self.batch_size,
            parallel=self.parallel,
            retries=self.retries,
            timeout=self.timeout,
            retry_delay=self.retry_delay,
            progress=progress,
        )


def _answer_error(status: int, body: bytes) -> ClientError:
    """The error of a refused single event: the server's reasons, per sink when it gives them."""
    from pushstream.client.api import error_from_response

    error = error_from_response(status, body)
    if not 400 <= status < 500 or error.error not in ("stream.in.badRequest", "stream.in.writeFailed"):
        return error
    document = error.body if isinstance(error.body, dict) else {}
    reasons = [
        f'sink "{sink.get("sinkId")}": {sink.get("message") or sink.get("error")}'
        for source in document.get("sources") or []
        for sink in source.get("sinks") or []
        if sink.get("statusCode", 200) >= 300
    ]
    return RejectedError("the server rejected the event: " + ("; ".join(reasons) or error.server_message))


__all__ = ["Event", "IngestResult", "StreamClient"]
