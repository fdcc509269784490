"""The real server process: ``pushstream serve`` (restarts, several workers, SIGTERM) and ``pushstream token``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

import clustermode

TABLE = {"type": "keboola", "tableId": "in.c-a.b", "mapping": {"columns": [{"type": "body", "name": "b"}]}}
BASE = "/v1/branches/default/sources"


def _wait(server: Any, response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    task_id = response.json()["taskId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task: dict[str, Any] = server.request("GET", f"/v1/tasks/{task_id}").json()
        if task["isFinished"]:
            return task
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} did not finish")


def test_configuration_survives_a_restart(server_factory: Any) -> None:
    server = server_factory()
    assert _wait(server, server.request("POST", BASE, json={"name": "Durable", "type": "http"}))["status"] == "success"
    sink_task = _wait(
        server, server.request("POST", f"{BASE}/durable/sinks", json={"name": "S", "type": "table", "table": TABLE})
    )
    assert sink_task["status"] == "success"
    settings = {"settings": [{"key": "storage.level.staging.upload.trigger.count", "value": 42}]}
    assert _wait(server, server.request("PATCH", f"{BASE}/durable/settings", json=settings))["status"] == "success"
    source = server.request("GET", f"{BASE}/durable").json()
    sink = server.request("GET", f"{BASE}/durable/sinks/s").json()
    source_settings = server.request("GET", f"{BASE}/durable/settings").json()
    versions = server.request("GET", f"{BASE}/durable/versions").json()
    assert server.stop() == 0
    server.start()
    assert server.request("GET", f"{BASE}/durable").json() == source
    assert server.request("GET", f"{BASE}/durable/sinks/s").json() == sink
    assert server.request("GET", f"{BASE}/durable/settings").json() == source_settings
    assert server.request("GET", f"{BASE}/durable/versions").json() == versions
    finished = server.request("GET", f"/v1/tasks/{sink_task['taskId']}").json()
    assert finished == sink_task
    # The secret in the URL is the same, so producers keep working across restarts.
    assert source["http"]["url"].startswith(f"{server.url}/stream/1/durable/")


def test_concurrent_creates_against_several_workers(server_factory: Any) -> None:
    server = server_factory(args=("--workers", "2"))
    count = 6
    barrier = threading.Barrier(count)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def create(index: int) -> None:
        session = requests.Session()
        barrier.wait()
        response = session.post(
            f"{server.url}{BASE}",
            json={"name": "Race", "type": "http", "description": str(index)},
            headers={"X-StorageApi-Token": server.token},
            timeout=30,
        )
        body = _wait(server, response) if response.status_code == 202 else response.json()
        with lock:
            results.append((response.status_code, body))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One create is accepted; the id is reserved across the workers while its task runs, so
    # every other one is a 409 at once (never a task that fails later).
    statuses = sorted(status for status, _ in results)
    assert statuses == [202] + [409] * (count - 1)
    successes = [b for s, b in results if s == 202 and b["status"] == "success"]
    assert len(successes) == 1
    for status, body in results:
        if status == 409:
            # Keboola names the reserved key while the first create still runs.
            assert body["message"] in (
                'Source "race" already exists in the branch.',
                'Source "1/1/race" already exists in the branch.',
            )
    listed = server.request("GET", BASE).json()
    assert [s["sourceId"] for s in listed["sources"]] == ["race"]
    assert server.request("GET", f"{BASE}/race/versions").json()["page"]["totalCount"] == 1


def test_sigterm_stops_gracefully_and_tasks_are_not_lost(server_factory: Any) -> None:
    server = server_factory()
    responses = [server.request("POST", BASE, json={"name": f"s{i}", "type": "http"}) for i in range(5)]
    assert all(r.status_code == 202 for r in responses)
    assert server.stop() == 0
    server.start()
    for response in responses:
        task = server.request("GET", f"/v1/tasks/{response.json()['taskId']}").json()
        assert task["status"] == "success", task
    assert server.request("GET", BASE).json()["page"]["totalCount"] == 5


def test_server_options_from_environment(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory(
        env={
            "PUSHSTREAM_PROJECT_ID": "77",
            "PUSHSTREAM_SOURCE_PUBLIC_URL": "https://in.example.com",
            "PUSHSTREAM_SETTINGS": '{"storage.level.staging.upload.trigger.count": 11}',
        },
        args=("--setting", "storage.level.local.encoding.sync.mode=cache", "--default-branch-id", "5"),
    )
    _wait(server, server.request("POST", BASE, json={"name": "E", "type": "http"}))
    source = server.request("GET", f"{BASE}/e").json()
    assert source["projectId"] == 77 and source["branchId"] == 5
    assert source["http"]["url"].startswith("https://in.example.com/stream/77/e/")
    settings = {s["key"]: s["value"] for s in server.request("GET", f"{BASE}/e/settings").json()["settings"]}
    assert settings["storage.level.staging.upload.trigger.count"] == 11
    assert settings["storage.level.local.encoding.sync.mode"] == "cache"
    assert server.request("GET", "/v1/branches/5/sources/e").status_code == 200


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushstream.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_token_commands(server_factory: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "tokens"
    # PUSHSTREAM_TEST_CLUSTER=1: the commands use the database the server gets.
    cluster_url = clustermode.url_for(data_dir)
    env = {"PUSHSTREAM_CLUSTER": cluster_url} if cluster_url else {}
    created = _cli(
        "token",
        "create",
        "--data-dir",
        str(data_dir),
        "--description",
        "CI",
        "--role",
        "guest",
        "--user-name",
        "Bot",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    guest = created.stdout.strip()
    assert guest.startswith("1-") and created.stderr.strip() == "token 1 (guest) created"
    admin = _cli("token", "create", "--data-dir", str(data_dir), env=env).stdout.strip()
    listed = _cli("token", "list", "--data-dir", str(data_dir), env=env)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "ROLE", "CREATED", "DESCRIPTION"]
    assert lines[1].split()[:2] == ["1", "guest"] and lines[1].split()[-1] == "CI"
    assert lines[2].split()[:2] == ["2", "admin"]
    assert guest not in listed.stdout and admin not in listed.stdout
    server = server_factory(data_dir)
    assert server.request("GET", BASE, headers={"X-StorageApi-Token": guest}).status_code == 200
    assert server.request("POST", BASE, headers={"X-StorageApi-Token": guest}, json={}).status_code == 403
    response = server.request(
        "POST", BASE, headers={"X-StorageApi-Token": admin}, json={"name": "By CLI", "type": "http"}
    )
    assert _wait(server, response)["status"] == "success"
    deleted = _cli("token", "delete", "--data-dir", str(data_dir), "1", env=env)
    assert deleted.returncode == 0 and deleted.stderr.strip() == "token 1 deleted"
    assert server.request("GET", BASE, headers={"X-StorageApi-Token": guest}).status_code == 401
    missing = _cli("token", "delete", "--data-dir", str(data_dir), "1", env=env)
    assert missing.returncode == 1 and missing.stderr.strip() == 'token "1" not found'


def test_invalid_server_configuration_is_a_usage_error(tmp_path: Path) -> None:
    result = _cli("serve", "--data-dir", str(tmp_path / "d"), "--setting", "nope=1")
    assert result.returncode == 2
    assert 'invalid operator setting: unknown key "nope"' in result.stderr
