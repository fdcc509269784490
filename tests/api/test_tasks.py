"""Tasks, hooks and the config revision (the interfaces the receiver and the storage pipeline rely on)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from apitest import BASE, Api, error

from pushstream.api.tasks import TASK_RETENTION_SECONDS, new_task_id
from pushstream.catalog.events import Change, SinkChange, SourceChange
from pushstream.catalog.models import Task, now
from statebackends import raw_execute

SRC = f"{BASE}/my-source"
SINK = f"{SRC}/sinks/my-sink"


def test_task_not_found(api: Api) -> None:
    for task_id in ("nope", "api.create.source/1/x/2024-01-01T00:00:00.000Z_abcde"):
        response = api.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 404
        assert response.json == error(404, "taskNotFound", f'Task "{task_id}" not found.')


def test_task_id_format() -> None:
    task_id = new_task_id("api.create.sink", 1, "src", "snk")
    prefix, suffix = task_id.rsplit("/", 1)
    assert prefix == "api.create.sink/1/src/snk"
    assert len(suffix) == 30 and suffix[23] == "Z" and suffix[24] == "_"


def test_every_committed_change_bumps_the_revision(api: Api) -> None:
    catalog = api.services.catalog
    revisions = [catalog.revision()]

    def step(method: str, path: str, **kwargs: Any) -> None:
        api.run(method, path, **kwargs)
        revisions.append(catalog.revision())

    step("POST", BASE, json={"name": "My Source", "type": "http"})
    step("PATCH", SRC, json={"name": "x"})
    step(
        "PATCH",
        f"{SRC}/settings",
        json={"settings": [{"key": "storage.level.staging.upload.trigger.count", "value": 3}]},
    )
    step(
        "POST",
        f"{SRC}/sinks",
        json={
            "name": "My Sink",
            "type": "table",
            "table": {
                "type": "keboola",
                "tableId": "in.c-a.b",
                "mapping": {"columns": [{"type": "body", "name": "b"}]},
            },
        },
    )
    step("PUT", f"{SINK}/disable")
    step("PUT", f"{SINK}/enable")
    step(
        "PATCH",
        f"{SINK}/settings",
        json={"settings": [{"key": "storage.level.local.encoding.sync.wait", "value": False}]},
    )
    step("PUT", f"{SINK}/versions/1/rollback")
    step("DELETE", SINK)
    step("PUT", f"{SINK}/undelete")
    step("PUT", f"{SRC}/disable")
    step("PUT", f"{SRC}/enable")
    step("DELETE", SRC)
    step("PUT", f"{SRC}/undelete")
    assert revisions == list(range(revisions[0], revisions[0] + len(revisions)))
    # No change, no new revision.
    api.run("PUT", f"{SRC}/enable")
    assert catalog.revision() == revisions[-1]


def test_task_succeeds_only_after_commit(api: Api) -> None:
    """A reader that sees the task succeed sees the change and the new revision."""
    catalog = api.services.catalog
    before = catalog.revision()
    response = api.post(BASE, json={"name": "Fast", "type": "http"})
    task = response.json
    assert task is not None
    while True:
        current = catalog.get_task(task["taskId"])
        assert current is not None
        if current.is_finished:
            break
        assert catalog.get_source(1, "fast") is None or catalog.revision() > before
    assert catalog.get_source(1, "fast") is not None
    assert catalog.revision() == before + 1


def test_hooks_see_changes_inside_the_transaction(api: Api) -> None:
    seen: list[tuple[str, str, str | None, str | None, str]] = []
    hooks = api.services.hooks

    @hooks.on_source_change
    def on_source(change: SourceChange) -> None:
        # The change is visible inside the transaction, not yet outside.
        inside = change.tx.get_source(1, "my-source", deleted=None)
        seen.append(
            ("source", change.kind, change.old and change.old.name, change.new and change.new.name, change.task_id[:20])
        )
        assert inside == change.new or change.purge

    @hooks.on_sink_change
    def on_sink(change: SinkChange) -> None:
        seen.append(
            ("sink", change.kind, change.old and change.old.sink_id, change.new and change.new.sink_id, change.cause)
        )

    after: list[tuple[list[str], int]] = []
    hooks.after_commit(lambda changes, revision: after.append(([c.kind for c in changes], revision)))

    api.create_source()
    api.create_sink("my-source")
    api.run(
        "PATCH",
        f"{SRC}/settings",
        json={"settings": [{"key": "storage.level.target.import.trigger.count", "value": 9}]},
    )
    api.run("DELETE", SRC)
    api.run("PUT", f"{SRC}/undelete")
    api.run("DELETE", SRC, query_string={"cascade": "1"})
    assert seen == [
        ("source", "created", None, "My Source", "api.create.source/1/"),
        ("sink", "created", None, "my-sink", "sink"),
        ("source", "settings_changed", "My Source", "My Source", "api.update.sourceSet"),
        ("sink", "settings_changed", "my-sink", "my-sink", "source"),
        ("source", "deleted", "My Source", "My Source", "api.delete.source/1/"),
        ("sink", "deleted", "my-sink", "my-sink", "source"),
        ("source", "undeleted", "My Source", "My Source", "api.undelete.source/"),
        ("sink", "undeleted", "my-sink", "my-sink", "source"),
        ("source", "deleted", "My Source", None, "api.delete.source/1/"),
        ("sink", "deleted", "my-sink", None, "source"),
    ]
    revision = api.services.catalog.revision()
    assert [kinds for kinds, _ in after] == [
        ["created"],
        ["created"],
        ["settings_changed", "settings_changed"],
        ["deleted", "deleted"],
        ["undeleted", "undeleted"],
        ["deleted", "deleted"],
    ]
    assert after[-1][1] == revision


def test_hooks_may_read_through_the_catalog(api: Api, source: dict[str, Any]) -> None:
    """Inside a hook the store's reads run on the task's transaction (they see the change)."""
    seen: list[list[str]] = []

    @api.services.hooks.on_sink_change
    def read(change: SinkChange) -> None:
        seen.append([s.sink_id for s in api.services.catalog.list_sinks(1, "my-source")])

    api.create_sink("my-source")
    assert seen == [["my-sink"]]


def test_failing_hook_fails_the_task_and_rolls_back(api: Api, source: dict[str, Any]) -> None:
    api.create_sink("my-source")
    catalog = api.services.catalog
    revision = catalog.revision()

    @api.services.hooks.on_sink_change
    def refuse(change: SinkChange) -> None:
        if change.kind == "updated":
            raise RuntimeError('table "in.c-bucket.table" has other columns')

    response = api.patch(SINK, json={"name": "Renamed"})
    assert response.status_code == 202
    task = api.wait_task(response.json)  # type: ignore[arg-type]
    assert task["status"] == "error"
    assert task["result"] == task["error"] == 'table "in.c-bucket.table" has other columns'
    assert task["isFinished"] is True and "finishedAt" in task and "duration" in task
    assert api.get(SINK).json["name"] == "My Sink"  # type: ignore[index]
    assert api.get(SINK).json["version"]["number"] == 1  # type: ignore[index]
    assert catalog.revision() == revision
    # Other changes still work.
    api.run("PUT", f"{SINK}/disable")


def test_after_commit_errors_do_not_fail_the_task(api: Api) -> None:
    def broken(changes: Sequence[Change], revision: int) -> None:
        raise RuntimeError("listener broke")

    api.services.hooks.after_commit(broken)
    api.create_source()


def test_tasks_run_in_the_background(api: Api) -> None:
    release = threading.Event()

    @api.services.hooks.on_source_change
    def slow(change: SourceChange) -> None:
        release.wait(10)

    response = api.post(BASE, json={"name": "Slow", "type": "http"})
    assert response.status_code == 202
    task = response.json
    assert task is not None
    polled = api.get(f"/v1/tasks/{task['taskId']}").json
    assert polled == task  # still processing: the request did not wait for the change
    assert "finishedAt" not in polled
    release.set()
    assert api.wait_task(task)["status"] == "success"


def test_orphaned_tasks_are_failed(api: Api) -> None:
    """A task whose process died is reported as failed, not as processing forever."""
    catalog = api.services.catalog
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead_pid = int(dead.stdout)
    task = Task(task_id="api.create.source/1/x/orphan", type="create.source", status="processing", created_at=now())
    catalog.create_task(task)
    host = __import__("socket").gethostname()
    raw_execute(catalog, "UPDATE tasks SET owner = ? WHERE task_id = ?", (f"{host}:{dead_pid}", task.task_id))
    live = Task(task_id="api.create.source/1/y/live", type="create.source", status="processing", created_at=now())
    catalog.create_task(live)
    found = api.get(f"/v1/tasks/{task.task_id}").json
    assert found is not None
    assert found["status"] == "error"
    assert found["error"] == "The task was interrupted: the server process stopped before it finished."
    assert catalog.fail_orphaned_tasks() == 0
    assert api.get(f"/v1/tasks/{live.task_id}").json["status"] == "processing"  # type: ignore[index]
    assert os.getpid() != dead_pid


def test_a_create_task_of_a_dead_process_reserves_nothing(api: Api) -> None:
    """The id of a create whose process died is free: no 409 for ever."""
    catalog = api.services.catalog
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    task_id = "api.create.source/1/my-source/2024-01-01T00:00:00.000Z_abcde"
    catalog.create_task(Task(task_id=task_id, type="api.create.source", status="processing", created_at=now()))
    assert catalog.has_processing_task("api.create.source/1/my-source/")
    assert not catalog.has_processing_task("api.create.source/1/my-source-2/")
    host = __import__("socket").gethostname()
    raw_execute(catalog, "UPDATE tasks SET owner = ? WHERE task_id = ?", (f"{host}:{int(dead.stdout)}", task_id))
    assert not catalog.has_processing_task("api.create.source/1/my-source/")
    api.run("POST", BASE, json={"name": "My Source", "type": "http"})


def test_old_tasks_are_purged(api: Api) -> None:
    catalog = api.services.catalog
    task = api.run("POST", BASE, json={"name": "x", "type": "http"})
    old_ns = time.time_ns() - int((TASK_RETENTION_SECONDS + 60) * 1e9)
    raw_execute(catalog, "UPDATE tasks SET created_ns = ? WHERE task_id = ?", (old_ns, task["taskId"]))
    recent = api.run("POST", BASE, json={"name": "y", "type": "http"})
    assert catalog.purge_tasks(TASK_RETENTION_SECONDS) == 1
    assert api.get(f"/v1/tasks/{task['taskId']}").status_code == 404
    assert api.get(f"/v1/tasks/{recent['taskId']}").status_code == 200


@pytest.mark.parametrize("count", [2, 8])
def test_concurrent_creates_of_one_id(api: Api, count: int) -> None:
    """Many creates of the same id at once: exactly one source, one task; every other
    call is a 409 at once (the id is reserved while its task runs), none a failed task."""
    barrier = threading.Barrier(count)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def create() -> None:
        client = Api(api.app)
        barrier.wait()
        response = client.post(
            BASE, json={"name": "Same", "type": "http", "description": threading.current_thread().name}
        )
        body = response.json
        assert body is not None
        if response.status_code == 202:
            body = client.wait_task(body)
        with lock:
            results.append((response.status_code, body))

    threads = [threading.Thread(target=create, name=f"t{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [body for status, body in results if status == 202]
    assert len(accepted) == 1 and accepted[0]["status"] == "success"
    for status, body in results:
        if status != 202:
            assert status == 409
            # Committed already, or still being created (Keboola names the reserved key then).
            assert body in (
                error(409, "sourceAlreadyExists", 'Source "same" already exists in the branch.'),
                error(409, "sourceAlreadyExists", 'Source "1/1/same" already exists in the branch.'),
            )
    sources = api.get(BASE).json["sources"]  # type: ignore[index]
    assert [s["sourceId"] for s in sources] == ["same"]
    assert api.get(f"{BASE}/same/versions").json["page"]["totalCount"] == 1  # type: ignore[index]
