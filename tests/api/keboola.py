"""Keboola-shaped API scenarios: a client that checks each step's status and body the way
Keboola's own end-to-end scenarios do (PHPUnit-style wildcards in expected strings), with
Keboola's test project (project 4242, default branch 1, public API and ingest URLs).

Expected bodies are plain JSON values where a string may hold ``%s`` (any non-empty text
without a line break) or ``%d`` (digits); :data:`INT` stands for any integer and an
:data:`ANY_KEYS` key in an object lets the actual object have further keys."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from apitest import Api, make_app

PROJECT_ID = 4242
BRANCH_ID = 1
API_URL = "https://stream.keboola.local"
SOURCE_URL = "https://stream-in.keboola.local"
BASE = f"/v1/branches/{BRANCH_ID}/sources"

#: Any integer (Keboola's bare ``%d``).
INT = object()
#: As a key of an expected object: the actual object may have more keys (Keboola's ``%A`` line).
ANY_KEYS = "%A"

BY = {"type": "user", "tokenId": "%s", "tokenDesc": "%s", "userId": "%s", "userName": "%s"}

_WILDCARDS = {"%s": r"[^\r\n]+", "%d": r"\d+"}


def keboola_app(data_dir: Path) -> Any:
    """An app configured like the server of Keboola's scenarios."""
    return make_app(
        data_dir,
        project_id=PROJECT_ID,
        default_branch_id=BRANCH_ID,
        api_public_url=API_URL,
        source_public_url=SOURCE_URL,
    )


def _pattern(expected: str) -> re.Pattern[str]:
    parts = re.split(r"(%s|%d)", expected)
    return re.compile("".join(_WILDCARDS.get(p, re.escape(p)) for p in parts), re.S)


def assert_matches(expected: Any, actual: Any, path: str = "$") -> None:
    """Fails with the path of the first difference between ``expected`` (with wildcards) and ``actual``."""
    if expected is INT:
        assert isinstance(actual, int) and not isinstance(actual, bool), f"{path}: expected an integer, got {actual!r}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        keys = [k for k in expected if k != ANY_KEYS]
        missing = [k for k in keys if k not in actual]
        extra = [] if ANY_KEYS in expected else [k for k in actual if k not in expected]
        assert not missing and not extra, f"{path}: keys missing {missing}, extra {extra} in {actual!r}"
        for key in keys:
            assert_matches(expected[key], actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        assert len(expected) == len(actual), f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}"
        for index, (exp, act) in enumerate(zip(expected, actual, strict=True)):
            assert_matches(exp, act, f"{path}[{index}]")
    elif isinstance(expected, str) and ("%s" in expected or "%d" in expected):
        assert isinstance(actual, str), f"{path}: expected a string like {expected!r}, got {actual!r}"
        assert _pattern(expected).fullmatch(actual), f"{path}: {actual!r} does not match {expected!r}"
    else:
        assert type(expected) is type(actual) and expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def error(status: int, name: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "error": f"stream.api.{name}", "message": message}


def version(number: int, description: str) -> dict[str, Any]:
    return {"number": number, "hash": "%s", "description": description, "at": "%s", "by": BY}


def source(
    source_id: str = "my-source",
    name: str = "My Source",
    *,
    description: str = "",
    number: int = 1,
    change: str = "New source.",
    **extra: Any,
) -> dict[str, Any]:
    """A source as Keboola's API shows it."""
    return {
        "projectId": PROJECT_ID,
        "branchId": BRANCH_ID,
        "sourceId": source_id,
        "type": "http",
        "name": name,
        "description": description,
        "http": {"url": f"{SOURCE_URL}/stream/{PROJECT_ID}/{source_id}/%s"},
        "version": version(number, change),
        "created": {"at": "%s", "by": BY},
        **extra,
    }


def page(limit: int, total: int, after_id: str, last_id: str) -> dict[str, Any]:
    return {"limit": limit, "totalCount": total, "afterId": after_id, "lastId": last_id}


def task_key(source_id: str, sink_id: str | None = None) -> str:
    return f"{BRANCH_ID}/{source_id}" + (f"/{sink_id}" if sink_id else "")


def outputs(source_id: str, sink_id: str | None = None) -> dict[str, Any]:
    url = f"{API_URL}{BASE}/{source_id}" + (f"/sinks/{sink_id}" if sink_id else "")
    result: dict[str, Any] = {"url": url, "projectId": PROJECT_ID, "branchId": BRANCH_ID, "sourceId": source_id}
    if sink_id:
        result["sinkId"] = sink_id
    return result


def accepted(task_type: str, key: str) -> dict[str, Any]:
    """The 202 answer of a change: a task still processing, without outputs."""
    return {
        "taskId": f"{task_type}/{key}/%s",
        "type": task_type,
        "url": f"{API_URL}/v1/tasks/{task_type}/{key}/%s",
        "status": "processing",
        "isFinished": False,
        "createdAt": "%s",
    }


def finished(task_type: str, key: str, result: str, task_outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        **accepted(task_type, key),
        "status": "success",
        "isFinished": True,
        "finishedAt": "%s",
        "duration": INT,
        "result": result,
        "outputs": task_outputs,
    }


class Scenario:
    """Runs the steps of a scenario against the API of an app."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def step(
        self,
        method: str,
        path: str,
        status: int,
        expected: Any = None,
        *,
        json: Any = None,
        token: str | None = None,
        without_token: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Sends a request (``without_token``: with no token header at all); checks the
        status and, when given, the body; returns the body."""
        if json is not None:
            kwargs["json"] = json
        if without_token:
            response = self.api.client.open(path, method=method, **kwargs)
        else:
            response = self.api.request(method, path, token=token, **kwargs)
        body = response.get_json(silent=True)
        assert response.status_code == status, (method, path, response.status_code, body)
        if expected is not None:
            assert_matches(expected, body)
        return body

    def poll(self, task: dict[str, Any], expected: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        """Polls the task's URL until it is no longer processing; checks the finished task."""
        path = task["url"].removeprefix(API_URL)
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.step("GET", path, 200)
            if body["status"] != "processing":
                break
            assert time.monotonic() < deadline, f"task {task['taskId']} did not finish"
            time.sleep(0.005)
        if expected is not None:
            assert_matches(expected, body)
        return body

    def change(
        self,
        method: str,
        path: str,
        task_type: str,
        key: str,
        result: str,
        task_outputs: dict[str, Any],
        *,
        json: Any = None,
    ) -> dict[str, Any]:
        """A change that answers 202 with a task and finishes with success."""
        task = self.step(method, path, 202, accepted(task_type, key), json=json)
        return self.poll(task, finished(task_type, key, result, task_outputs))

    def create_source(self, source_id: str = "my-source", name: str = "My Source", **fields: Any) -> dict[str, Any]:
        return self.change(
            "POST",
            BASE,
            "api.create.source",
            task_key(source_id),
            "Source has been created successfully.",
            outputs(source_id),
            json={"name": name, "type": "http", **fields},
        )

    def create_sink(self, source_id: str = "my-source", sink_id: str = "my-sink", name: str = "My Sink") -> None:
        self.change(
            "POST",
            f"{BASE}/{source_id}/sinks",
            "api.create.sink",
            task_key(source_id, sink_id),
            "Sink has been created successfully.",
            outputs(source_id, sink_id),
            json={
                "sinkId": sink_id,
                "name": name,
                "type": "table",
                "table": {
                    "type": "keboola",
                    "tableId": f"in.c-my-bucket.{sink_id}",
                    "mapping": {"columns": [{"type": "uuid", "name": "id"}, {"type": "body", "name": "body"}]},
                },
            },
        )
