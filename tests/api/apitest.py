"""Helpers of the Stream API tests: a client that sends the token and waits for tasks,
expected values and patterns."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import clustermode
from pushstream.api import ApiServices, api_services
from pushstream.app import create_app
from pushstream.config import ServerConfig

ADMIN_TOKEN = "test-admin-token"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HASH = re.compile(r"^[0-9a-f]{16}$")
SECRET = re.compile(r"^[0-9A-Za-z]{48}$")
ADMIN_BY = {
    "type": "user",
    "tokenId": "0",
    "tokenDesc": "Admin token of the server configuration",
    "userId": "0",
    "userName": "admin",
}
BASE = "/v1/branches/default/sources"


class Api:
    """A test client for the API: sends the token, decodes JSON, waits for tasks."""

    def __init__(self, app: Flask, token: str | None = ADMIN_TOKEN) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.token = token

    @property
    def services(self) -> ApiServices:
        return api_services(self.app)

    def request(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        use = token if token is not None else self.token
        if use is not None and "X-StorageApi-Token" not in headers:
            headers["X-StorageApi-Token"] = use
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)

    def wait_task(self, task: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Polls ``GET /v1/tasks/{taskId}`` until the task is finished; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(f"/v1/tasks/{task['taskId']}")
            assert response.status_code == 200, response.json
            body: dict[str, Any] = response.json  # type: ignore[assignment]
            if body["isFinished"]:
                return body
            assert time.monotonic() < deadline, f"task {task['taskId']} did not finish"
            time.sleep(0.002)

    def run(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A mutating call that must answer 202 and whose task must succeed; returns the finished task."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == 202, (response.status_code, response.json)
        task = self.wait_task(response.json)  # type: ignore[arg-type]
        assert task["status"] == "success", task
        return task

    def run_failing(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A mutating call that answers 202 and whose task fails; returns the finished task."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == 202, (response.status_code, response.json)
        task = self.wait_task(response.json)  # type: ignore[arg-type]
        assert task["status"] == "error", task
        return task

    # Shortcuts.

    def create_source(self, name: str = "My Source", **fields: Any) -> dict[str, Any]:
        self.run("POST", BASE, json={"name": name, "type": "http", **fields})
        source_id = fields.get("sourceId") or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        body: dict[str, Any] = self.get(f"{BASE}/{source_id}").json  # type: ignore[assignment]
        return body

    def create_sink(
        self, source_id: str, name: str = "My Sink", columns: list[dict[str, Any]] | None = None, **fields: Any
    ) -> dict[str, Any]:
        sink_id = fields.get("sinkId") or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        # A table per sink: sinks that share a table must have the same columns.
        table = fields.pop("table", None) or {
            "type": "keboola",
            "tableId": f"in.c-bucket.{sink_id}",
            "mapping": {"columns": columns or [{"type": "body", "name": "body"}]},
        }
        self.run("POST", f"{BASE}/{source_id}/sinks", json={"name": name, "type": "table", "table": table, **fields})
        body: dict[str, Any] = self.get(f"{BASE}/{source_id}/sinks/{sink_id}").json  # type: ignore[assignment]
        return body


def make_app(data_dir: Path, **config: Any) -> Flask:
    cluster_url = clustermode.url_for(data_dir)
    if cluster_url is not None:
        config.setdefault("cluster", cluster_url)
    return create_app(ServerConfig(data_dir=data_dir, api_token=ADMIN_TOKEN, **config))


def error(status: int, name: str, message: str) -> dict[str, Any]:
    """An error body."""
    return {"statusCode": status, "error": f"stream.api.{name}", "message": message}
