"""A small client of the Stream API (``/v1``): sends the token, turns error answers
into :class:`~pushstream.client.errors.ServerError`, and waits for tasks."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests

from pushstream.client.errors import NetworkError, ServerError, UsageError

#: The header that carries the API token (Keboola's name).
TOKEN_HEADER = "X-StorageApi-Token"
DEFAULT_URL = "http://127.0.0.1:8000"


def _segment(value: str) -> str:
    return quote(value, safe="")


class StreamApi:
    """The Stream API of one server, for one branch (``default`` unless given)."""

    def __init__(self, url: str, token: str | None, *, branch: str = "default", timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(
                f'the server URL must start with http:// or https://, found "{url}" (e.g. http://{url.lstrip(":/")})'
            )
        self.url = url.rstrip("/")
        self.branch = branch
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "pushstream-cli"
        if token:
            self.session.headers[TOKEN_HEADER] = token

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> StreamApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Paths.

    def sources_path(self) -> str:
        return f"/v1/branches/{_segment(self.branch)}/sources"

    def source_path(self, source_id: str) -> str:
        return f"{self.sources_path()}/{_segment(source_id)}"

    def sink_path(self, source_id: str, sink_id: str) -> str:
        return f"{self.source_path(source_id)}/sinks/{_segment(sink_id)}"

    # Requests.

    def request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        """One call; returns the decoded JSON answer (``None`` for an empty one).
        Raises :class:`NetworkError` or :class:`ServerError`."""
        try:
            response = self.session.request(method, self.url + path, timeout=timeout or self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            raise NetworkError(f"cannot reach the server at {self.url}: {_reason(exc)}") from None
        except requests.Timeout:
            raise NetworkError(f"the server at {self.url} did not answer in time") from None
        except requests.RequestException as exc:
            raise NetworkError(f"request to {self.url} failed: {exc}") from None
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ServerError(
                response.status_code, "", f"the server answered with something else than JSON: {response.text[:200]!r}"
            ) from None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def list_all(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a paged list (``afterId`` + ``limit``)."""
        items: list[dict[str, Any]] = []
        after = ""
        while True:
            page = self.get(path, params={"limit": 100, **({"afterId": after} if after else {})})
            batch = page.get(key) or []
            items.extend(batch)
            last = (page.get("page") or {}).get("lastId") or ""
            if not batch or not last or last == after or len(items) >= (page.get("page") or {}).get("totalCount", 0):
                return items
            after = last

    def run_task(self, method: str, path: str, *, wait: float = 60.0, **kwargs: Any) -> dict[str, Any]:
        """A mutating call that answers with a task; polls the task until it is
        finished and returns it. A task that failed raises :class:`ServerError`."""
        task: dict[str, Any] = self.request(method, path, **kwargs)
        deadline = time.monotonic() + wait
        delay = 0.005
        while not task.get("isFinished"):
            if time.monotonic() > deadline:
                raise ServerError(0, "", f"task {task.get('taskId')} did not finish within {wait:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            task = self.get(f"/v1/tasks/{task['taskId']}")
        if task.get("status") != "success":
            reason = task.get("error") or task.get("result") or "no reason given"
            raise ServerError(0, "", f"task {task.get('type', '')} failed: {reason}", task)
        return task

    # Entities.

    def source(self, source_id: str) -> dict[str, Any]:
        """A source; an unknown id raises :class:`ServerError` naming the close ids."""
        try:
            result: dict[str, Any] = self.get(self.source_path(source_id))
        except ServerError as exc:
            if exc.error == "stream.api.sourceNotFound":
                names = [s["sourceId"] for s in self.list_all(self.sources_path(), "sources")]
                raise _with_suggestion(exc, source_id, names) from None
            raise
        return result

    def sink(self, source_id: str, sink_id: str) -> dict[str, Any]:
        """A sink; an unknown id raises :class:`ServerError` naming the close ids."""
        try:
            result: dict[str, Any] = self.get(self.sink_path(source_id, sink_id))
        except ServerError as exc:
            if exc.error == "stream.api.sourceNotFound":
                self.source(source_id)
            if exc.error == "stream.api.sinkNotFound":
                names = [s["sinkId"] for s in self.list_all(self.source_path(source_id) + "/sinks", "sinks")]
                raise _with_suggestion(exc, sink_id, names) from None
            raise
        return result


def close_names(name: str, names: list[str]) -> list[str]:
    """The names of ``names`` that look like ``name`` (a typo), closest first."""
    import difflib

    return difflib.get_close_matches(name, names, n=3, cutoff=0.6)


def _with_suggestion(exc: ServerError, name: str, names: list[str]) -> ServerError:
    close = close_names(name, names)
    if not close:
        return exc
    hint = " or ".join(f'"{n}"' for n in close)
    return ServerError(exc.status, exc.error, f"{exc.server_message} Did you mean {hint}?", exc.body)


def error_from_response(status: int, content: bytes) -> ServerError:
    """A :class:`ServerError` from an error answer (Keboola's ``{statusCode, error, message}``)."""
    import orjson

    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and "message" in body:
        return ServerError(status, str(body.get("error") or ""), str(body["message"]), body)
    text = content.decode(errors="replace").strip()[:200] or "no details"
    return ServerError(status, "", f"the server answered {status}: {text}", body)


def _reason(exc: BaseException) -> str:
    """The innermost reason of a connection error (``Connection refused``), not urllib3's wrapping."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "Connection reset"):
        if marker in text:
            return marker.lower()
    return text
