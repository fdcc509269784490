"""The storage pipeline in one process: events through the receiver, the coordinator
ticked by hand, rows checked in the SQLite target. Exact values everywhere."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from pgcluster import PgCluster
from pushstream.app import close_app, components, create_app
from pushstream.config import ServerConfig
from pushstream.coordinator import Coordinator, CoordinatorOptions, retry_delay
from pushstream.coordinator.pipeline import POSTGRESQL_IMPORT_CONCURRENCY
from pushstream.storage.layout import SinkKey
from rawsql import Raw

TOKEN = "pipeline-token"
BASE = "/v1/branches/default/sources"
SECOND = 1_000_000_000


class Pipeline:
    """An app (API + receiver) with a coordinator ticked by the test."""

    def __init__(self, data_dir: Path, target: str | None = None, cluster: PgCluster | None = None) -> None:
        self.data_dir = data_dir
        self.app: Flask = create_app(ServerConfig(data_dir=data_dir, api_token=TOKEN, target=target))
        self.raw = Raw(components(self.app).target, cluster)
        self.client = self.app.test_client()
        parts = components(self.app)
        self.coordinator = Coordinator(
            self.app.extensions["pushstream.api"].catalog,
            parts.storage,
            parts.layout,
            parts.target,
            CoordinatorOptions(retry_base=0.2, retry_max=1.0),
        )
        self.urls: dict[str, str] = {}

    def api(self, method: str, path: str, body: Any = None) -> TestResponse:
        return self.client.open(path, method=method, json=body, headers={"X-StorageApi-Token": TOKEN})

    def run(self, method: str, path: str, body: Any = None, *, ok: bool = True) -> dict[str, Any]:
        response = self.api(method, path, body)
        assert response.status_code == 202, response.json
        task: dict[str, Any] = response.json  # type: ignore[assignment]
        while not task["isFinished"]:
            time.sleep(0.005)
            task = self.api("GET", f"/v1/tasks/{task['taskId']}").json  # type: ignore[assignment]
        assert (task["status"] == "success") == ok, task
        return task

    def source(self, source_id: str, **settings: Any) -> None:
        self.run("POST", BASE, {"sourceId": source_id, "name": source_id, "type": "http"})
        if settings:
            self.settings(source_id, None, **settings)
        url = self.api("GET", f"{BASE}/{source_id}").json["http"]["url"]  # type: ignore[index]
        self.urls[source_id] = url.split("://", 1)[1].split("/", 1)[1]

    def sink(self, source_id: str, sink_id: str, columns: list[dict[str, Any]], table_id: str, **settings: Any) -> None:
        table = {"type": "keboola", "tableId": table_id, "mapping": {"columns": columns}}
        self.run(
            "POST", f"{BASE}/{source_id}/sinks", {"sinkId": sink_id, "name": sink_id, "type": "table", "table": table}
        )
        if settings:
            self.settings(source_id, sink_id, **settings)

    def settings(self, source_id: str, sink_id: str | None, **values: Any) -> None:
        path = f"{BASE}/{source_id}" + (f"/sinks/{sink_id}" if sink_id else "") + "/settings"
        self.run("PATCH", path, {"settings": [{"key": k, "value": v} for k, v in values.items()]})

    def post(
        self,
        source_id: str,
        body: str | bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        return self.client.post(
            "/" + self.urls[source_id],
            data=body,
            headers={"Content-Type": content_type, **(headers or {})},
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        )

    def tick(self, *, imports: bool = True) -> None:
        """Reports node statistics and ticks the coordinator; ``imports``: then
        waits for the imports the tick started (they run in threads of their own)."""
        components(self.app).node.reload()
        components(self.app).node.report()
        self.coordinator.tick()
        if imports:
            assert self.coordinator.wait_for_imports(60)

    def settle(self, ticks: int = 3, *, imports: bool = True) -> None:
        """Reports node statistics and ticks the coordinator until slices settle."""
        for _ in range(ticks):
            self.tick(imports=imports)
        # On a busy machine a writer may let go of its slice a moment later: go on
        # until no slice waits for its writers (a bounded wait, not a timing assertion).
        deadline = time.monotonic() + 30
        while self.coordinator.storage.has_closing_slices() and time.monotonic() < deadline:
            time.sleep(0.02)
            self.tick(imports=imports)

    def flush(self, source_id: str) -> dict[str, Any]:
        response = self.api("POST", f"{BASE}/{source_id}/flush")
        assert response.status_code == 200, response.json
        self.settle()
        result: dict[str, Any] = response.json  # type: ignore[assignment]
        return result

    def rows(self, table_id: str) -> list[tuple[str | None, ...]]:
        target = components(self.app).target
        if not target.table_exists(table_id):
            return []
        return target.tail(table_id, limit=1_000_000)[1]

    def file_states(self, source_id: str, sink_id: str) -> list[dict[str, Any]]:
        files = self.api("GET", f"{BASE}/{source_id}/sinks/{sink_id}/statistics/files").json
        return files["files"]  # type: ignore[index,no-any-return]

    def age(self, source_id: str, sink_id: str, seconds: float) -> None:
        """Pretends the sink's writing file and slice were opened ``seconds`` ago."""
        key = SinkKey(1, source_id, sink_id)
        with components(self.app).storage.transaction() as db:
            for table in ("storage_files", "storage_slices"):
                db.execute(
                    f"UPDATE {table} SET opened_ns = opened_ns - ?"
                    " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'writing'",
                    (int(seconds * SECOND), *key.parts()),
                )


@pytest.fixture(params=["sqlite", "postgresql"])
def pipeline(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    """The pipeline with each target."""
    if request.param == "sqlite":
        p = Pipeline(tmp_path / "data")
    else:
        p = Pipeline(tmp_path / "data", request.getfixturevalue("pg_admin_url"), request.getfixturevalue("pg_cluster"))
    yield p
    close_app(p.app)


ALL_TYPES = [
    {"type": "uuid", "name": "id"},
    {"type": "datetime", "name": "at"},
    {"type": "ip", "name": "ip"},
    {"type": "headers", "name": "headers"},
    {"type": "body", "name": "body"},
    {"type": "path", "name": "user", "path": "user.name"},
    {"type": "path", "name": "raw", "path": "user.name", "rawString": True},
    {"type": "path", "name": "tags", "path": "tags"},
    {"type": "path", "name": "missing", "path": "nope", "defaultValue": "n/a", "rawString": True},
    {
        "type": "template",
        "name": "tpl",
        "template": {"language": "jsonnet", "content": 'Body("user.name") + "!"'},
        "rawString": True,
    },
]


def test_every_column_type_lands_with_keboola_values(pipeline: Pipeline) -> None:
    pipeline.source("web")
    pipeline.sink("web", "all", ALL_TYPES, "in.c-web.all")
    body = '{"user": {"name": "Zoë \\"Z\\""}, "tags": ["a", 1, null, 2.5]}'
    assert pipeline.post("web", body, headers={"X-Custom": "v"}).status_code == 200
    assert pipeline.flush("web")["files"][0]["state"] in ("closing", "importing", "imported")
    (row,) = pipeline.rows("in.c-web.all")
    record_id, at, ip, headers, stored_body, user, raw, tags, missing, template = row
    assert uuid.UUID(record_id).version == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(at))
    assert ip == "192.0.2.7"
    assert json.loads(str(headers))["X-Custom"] == "v"
    assert json.loads(str(headers))["Content-Type"] == "application/json"
    assert stored_body == body
    assert user == '"Zoë \\"Z\\""'
    assert raw == 'Zoë "Z"'
    assert tags == '["a",1,null,2.5]'
    assert missing == "n/a"
    assert template == 'Zoë "Z"!'
    imported = pipeline.file_states("web", "all")
    assert [f["state"] for f in imported] == ["writing", "imported"]
    statistics = pipeline.api("GET", f"{BASE}/web/sinks/all/statistics/total").json
    assert statistics["levels"]["target"]["recordsCount"] == 1  # type: ignore[index]


def test_upload_count_trigger(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink(
        "s", "k", [{"type": "body", "name": "b"}], "in.c-t.k", **{"storage.level.staging.upload.trigger.count": 3}
    )
    for i in range(2):
        pipeline.post("s", f'{{"i":{i}}}')
    pipeline.settle()
    levels = pipeline.api("GET", f"{BASE}/s/sinks/k/statistics/total").json["levels"]  # type: ignore[index]
    assert set(levels) == {"local"} and levels["local"]["recordsCount"] == 2
    pipeline.post("s", '{"i":2}')
    pipeline.settle()
    levels = pipeline.api("GET", f"{BASE}/s/sinks/k/statistics/total").json["levels"]  # type: ignore[index]
    assert set(levels) == {"staging"} and levels["staging"]["recordsCount"] == 3
    assert levels["staging"]["compressedSize"] > 0
    assert pipeline.rows("in.c-t.k") == []


def test_upload_size_and_interval_triggers(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink(
        "s",
        "size",
        [{"type": "body", "name": "b"}],
        "in.c-t.size",
        **{"storage.level.staging.upload.trigger.size": "100B"},
    )
    pipeline.sink("s", "time", [{"type": "ip", "name": "ip"}], "in.c-t.time")
    pipeline.post("s", '{"pad": "' + "x" * 120 + '"}')
    pipeline.settle()
    assert set(pipeline.api("GET", f"{BASE}/s/sinks/size/statistics/total").json["levels"]) == {"staging"}  # type: ignore[index]
    assert set(pipeline.api("GET", f"{BASE}/s/sinks/time/statistics/total").json["levels"]) == {"local"}  # type: ignore[index]
    pipeline.age("s", "time", 31)  # default interval 30s
    pipeline.settle()
    assert set(pipeline.api("GET", f"{BASE}/s/sinks/time/statistics/total").json["levels"]) == {"staging"}  # type: ignore[index]


def test_import_triggers(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink(
        "s",
        "count",
        [{"type": "body", "name": "b"}],
        "in.c-t.count",
        **{"storage.level.target.import.trigger.count": 2},
    )
    pipeline.sink("s", "interval", [{"type": "body", "name": "b"}], "in.c-t.interval")
    pipeline.post("s", "{}")
    pipeline.settle()
    assert pipeline.rows("in.c-t.count") == [] and pipeline.rows("in.c-t.interval") == []
    pipeline.post("s", "[]")
    pipeline.settle()
    assert pipeline.rows("in.c-t.count") == [("{}",), ("[]",)]
    assert pipeline.rows("in.c-t.interval") == []
    pipeline.age("s", "interval", 61)  # default import interval 1m
    pipeline.settle()
    assert pipeline.rows("in.c-t.interval") == [("{}",), ("[]",)]


def test_changed_import_conditions_import_at_once(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.k")
    pipeline.post("s", '"x"')
    pipeline.settle()
    assert pipeline.rows("in.c-t.k") == []
    pipeline.settings("s", "k", **{"storage.level.target.import.trigger.interval": "2m"})
    pipeline.settle()
    assert pipeline.rows("in.c-t.k") == [('"x"',)]


def test_mapping_change_imports_the_old_file_with_old_columns(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.v1")
    pipeline.post("s", '{"a": 1}')
    new = {"table": {"tableId": "in.c-t.v2", "mapping": {"columns": [{"type": "path", "name": "a", "path": "a"}]}}}
    pipeline.run("PATCH", f"{BASE}/s/sinks/k", new)
    pipeline.post("s", '{"a": 2}')
    pipeline.flush("s")
    assert pipeline.rows("in.c-t.v1") == [('{"a": 1}',)]
    assert pipeline.rows("in.c-t.v2") == [("2",)]


def test_schema_mismatch_waits_in_staging_then_imports(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.source("s")
    pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.k")
    pipeline.raw.sql(f"ALTER TABLE {pipeline.raw.name('in.c-t.k')} ADD COLUMN extra TEXT")
    pipeline.post("s", '"kept"')
    pipeline.flush("s")
    (waiting,) = [f for f in pipeline.file_states("s", "k") if f["state"] != "writing"]
    assert waiting["state"] == "importing"
    assert waiting["retryAttempt"] == 1
    assert 'table "in.c-t.k" has columns [b, extra], the sink needs [b]' in waiting["retryReason"]
    assert waiting["statistics"]["levels"]["staging"]["recordsCount"] == 1
    failed = pipeline.api("GET", f"{BASE}/s/sinks/k/statistics/files?failedFiles=true").json["files"]  # type: ignore[index]
    assert [f["retryAttempt"] for f in failed] == [1]
    pipeline.raw.sql(f"ALTER TABLE {pipeline.raw.name('in.c-t.k')} DROP COLUMN extra")
    time.sleep(0.3)  # the retry backoff of this test (0.2 s ±10 %)
    pipeline.settle()
    assert pipeline.rows("in.c-t.k") == [('"kept"',)]
    assert pipeline.api("GET", f"{BASE}/s/sinks/k/statistics/files?failedFiles=true").json["files"] == []  # type: ignore[index]


def test_primary_key_dedups_retries_across_files(pipeline: Pipeline) -> None:
    pipeline.source("s")
    columns = [
        {"type": "path", "name": "id", "path": "id", "rawString": True, "primaryKey": True},
        {"type": "path", "name": "v", "path": "v", "rawString": True},
    ]
    pipeline.sink("s", "k", columns, "in.c-t.k")
    for body in ('{"id": "a", "v": "1"}', '{"id": "b", "v": "1"}', '{"id": "a", "v": "2"}'):
        pipeline.post("s", body)
    pipeline.flush("s")
    # The client retries a request it did not see answered, in a later file.
    pipeline.post("s", '{"id": "b", "v": "1"}')
    pipeline.post("s", '{"id": "c", "v": "3"}')
    pipeline.flush("s")
    assert sorted(pipeline.rows("in.c-t.k")) == [("a", "2"), ("b", "1"), ("c", "3")]


def test_two_sinks_of_two_sources_into_one_table(pipeline: Pipeline) -> None:
    columns = [{"type": "path", "name": "v", "path": "v", "rawString": True}]
    for source in ("s1", "s2"):
        pipeline.source(source)
        pipeline.sink(source, "k", columns, "in.c-t.shared")
    pipeline.post("s1", '{"v": "one"}')
    pipeline.post("s2", '{"v": "two"}')
    pipeline.flush("s1")
    pipeline.flush("s2")
    assert sorted(pipeline.rows("in.c-t.shared")) == [("one",), ("two",)]
    other = {
        "sinkId": "x",
        "name": "x",
        "type": "table",
        "table": {
            "type": "keboola",
            "tableId": "in.c-t.shared",
            "mapping": {"columns": [{"type": "ip", "name": "ip"}]},
        },
    }
    task = pipeline.run("POST", f"{BASE}/s1/sinks", other, ok=False)
    assert task["result"] == 'table "in.c-t.shared" has columns [v], the sink needs [ip]'


def test_imports_are_idempotent_after_a_crash_between_import_and_state(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.k")
    pipeline.post("s", '"once"')
    pipeline.api("POST", f"{BASE}/s/flush")
    pipeline.settle(2)
    # Simulate a crash after the target committed but before the state said so.
    with components(pipeline.app).storage.transaction() as db:
        db.execute("UPDATE storage_files SET state = 'importing', imported_ns = NULL WHERE state = 'imported'")
        db.execute("UPDATE storage_slices SET state = 'uploaded' WHERE state = 'imported'")
    pipeline.settle()
    assert pipeline.rows("in.c-t.k") == [('"once"',)]
    assert [f["state"] for f in pipeline.file_states("s", "k")] == ["writing", "imported"]


class HeldImports:
    """The pipeline's real target, with imports into ``held`` tables that wait
    until the test releases them (a test double of timing only); it records
    which imports ran at once."""

    def __init__(self, target: Any, held: set[str]) -> None:
        self.target = target
        self.held = held
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running: dict[str, int] = {}
        #: The most imports that ran at once into each table.
        self.most_at_once: dict[str, int] = {}
        #: Every import id started, in order (an id twice: imported twice).
        self.started: list[str] = []
        self._imported: dict[str, threading.Event] = {}
        self.waiting = threading.Event()

    def imported(self, table: str) -> threading.Event:
        """Set when an import into ``table`` has returned."""
        with self._lock:
            return self._imported.setdefault(table, threading.Event())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    def import_files(self, request: Any) -> Any:
        table = request.spec.table_id
        with self._lock:
            self.started.append(request.import_id)
            self.running[table] = self.running.get(table, 0) + 1
            self.most_at_once[table] = max(self.most_at_once.get(table, 0), self.running[table])
        try:
            if table in self.held:
                self.waiting.set()
                assert self.release.wait(60)
            return self.target.import_files(request)
        finally:
            with self._lock:
                self.running[table] -= 1
            self.imported(table).set()


class SwitchedLease:
    """A lease the test takes away and gives back (as a cluster's election would)."""

    def __init__(self) -> None:
        self.holding = True

    def held(self) -> bool:
        return self.holding

    def release(self) -> None:
        self.holding = False


def _hold_imports(
    pipeline: Pipeline, held: set[str], concurrency: int, lease: SwitchedLease | None = None
) -> HeldImports:
    """Swaps the pipeline's coordinator for one that imports through :class:`HeldImports`."""
    wrapper = HeldImports(pipeline.coordinator.target, held)
    old = pipeline.coordinator
    options = replace(old.options, import_concurrency=concurrency)
    pipeline.coordinator = Coordinator(old.catalog, old.storage, old.layout, wrapper, options, lease=lease)
    return wrapper


def test_a_long_import_holds_up_neither_uploads_nor_other_tables(pipeline: Pipeline) -> None:
    columns = [{"type": "body", "name": "b"}]
    pipeline.source("s")
    pipeline.sink("s", "a", columns, "in.c-t.a")
    pipeline.sink("s", "b", columns, "in.c-t.b", **{"storage.level.staging.upload.trigger.count": 1})
    held = _hold_imports(pipeline, {"in.c-t.a"}, concurrency=2)
    try:
        pipeline.post("s", '"first"')
        pipeline.api("POST", f"{BASE}/s/sinks/a/flush")
        pipeline.settle(imports=False)
        assert held.waiting.wait(60)
        # Sink a's import is under way: sink b's slices are still rotated and
        # uploaded, and its file imported, meanwhile.
        pipeline.post("s", '"second"')
        pipeline.settle(imports=False)
        levels = pipeline.api("GET", f"{BASE}/s/sinks/b/statistics/total").json["levels"]  # type: ignore[index]
        assert set(levels) == {"staging"} and levels["staging"]["recordsCount"] == 2
        pipeline.api("POST", f"{BASE}/s/sinks/b/flush")
        pipeline.settle(imports=False)
        assert held.imported("in.c-t.b").wait(60)
        assert sorted(pipeline.rows("in.c-t.b")) == [('"first"',), ('"second"',)]
        assert [f["state"] for f in pipeline.file_states("s", "a")] == ["writing", "importing"]
        assert pipeline.rows("in.c-t.a") == []
    finally:
        held.release.set()
    pipeline.settle()
    assert pipeline.rows("in.c-t.a") == [('"first"',)]
    assert [f["state"] for f in pipeline.file_states("s", "a")] == ["writing", "imported"]
    # (b's first file, closed empty by its settings change, counts as imported.)
    assert [f["state"] for f in pipeline.file_states("s", "b")] == ["writing", "imported", "imported"]
    assert len(held.started) == len(set(held.started)) == 2


def test_one_import_at_a_time_into_a_table(pipeline: Pipeline) -> None:
    """Two sinks write one table: their files, and the files of one sink, are
    imported one after another, each once, however many import threads there are."""
    columns = [{"type": "path", "name": "v", "path": "v", "rawString": True}]
    for source in ("s1", "s2"):
        pipeline.source(source)
        pipeline.sink(source, "k", columns, "in.c-t.shared")
    held = _hold_imports(pipeline, {"in.c-t.shared"}, concurrency=4)
    try:
        pipeline.post("s1", '{"v": "one"}')
        pipeline.post("s2", '{"v": "two"}')
        pipeline.api("POST", f"{BASE}/s1/flush")
        pipeline.api("POST", f"{BASE}/s2/flush")
        pipeline.settle(imports=False)
        assert held.waiting.wait(60)
        pipeline.post("s1", '{"v": "three"}')
        pipeline.api("POST", f"{BASE}/s1/flush")
        # Ticks while the first import waits: the other files of the table wait too.
        pipeline.settle(imports=False)
        assert len(held.started) == 1
        ready = [f for s in ("s1", "s2") for f in pipeline.file_states(s, "k") if f["state"] == "importing"]
        assert len(ready) == 3
    finally:
        held.release.set()
    pipeline.settle()
    assert sorted(pipeline.rows("in.c-t.shared")) == [("one",), ("three",), ("two",)]
    assert held.most_at_once == {"in.c-t.shared": 1}
    assert len(held.started) == len(set(held.started)) == 3
    # The files of one sink in the order they were written.
    s1_imports = [i for i in held.started if i.startswith("1/s1/")]
    assert s1_imports == sorted(s1_imports)


def test_a_coordinator_that_loses_its_lease_starts_no_imports(pipeline: Pipeline) -> None:
    """The import under way finishes; the files ready meanwhile wait for a coordinator with the lease."""
    columns = [{"type": "body", "name": "b"}]
    pipeline.source("s")
    pipeline.sink("s", "a", columns, "in.c-t.a")
    pipeline.sink("s", "b", columns, "in.c-t.b")
    lease = SwitchedLease()
    held = _hold_imports(pipeline, {"in.c-t.a"}, concurrency=2, lease=lease)
    pipeline.post("s", '"x"')
    pipeline.api("POST", f"{BASE}/s/sinks/a/flush")
    pipeline.settle(imports=False)
    assert held.waiting.wait(60)
    lease.holding = False
    pipeline.api("POST", f"{BASE}/s/sinks/b/flush")
    pipeline.settle(imports=False)  # uploads b's slice (every node uploads its own)
    held.release.set()
    assert pipeline.coordinator.wait_for_imports(60)
    assert pipeline.rows("in.c-t.a") == [('"x"',)]
    assert [f["state"] for f in pipeline.file_states("s", "a")] == ["writing", "imported"]
    pipeline.settle(imports=False)
    assert [i.split("/")[2] for i in held.started] == ["a"]
    assert pipeline.file_states("s", "b")[1]["state"] == "importing"  # ready, not imported
    lease.holding = True
    pipeline.settle()
    assert pipeline.rows("in.c-t.b") == [('"x"',)]


def test_import_concurrency_defaults_by_target(pipeline: Pipeline) -> None:
    expected = 1 if pipeline.coordinator.target.kind == "sqlite" else POSTGRESQL_IMPORT_CONCURRENCY
    assert pipeline.coordinator.import_concurrency == expected
    options = replace(pipeline.coordinator.options, import_concurrency=3)
    assert (
        Coordinator(
            pipeline.coordinator.catalog,
            pipeline.coordinator.storage,
            pipeline.coordinator.layout,
            pipeline.coordinator.target,
            options,
        ).import_concurrency
        == 3
    )


def test_retry_backoff() -> None:
    options = CoordinatorOptions()
    assert retry_delay(1, options, lambda: 0.5) == 120
    assert retry_delay(2, options, lambda: 0.5) == 480
    assert retry_delay(3, options, lambda: 0.5) == 1920
    assert retry_delay(5, options, lambda: 0.5) == 3 * 3600
    assert retry_delay(1, options, lambda: 0.0) == pytest.approx(108)
    assert retry_delay(1, options, lambda: 1.0) == pytest.approx(132)


def test_statistics_clear(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.k")
    pipeline.post("s", "{}")
    pipeline.flush("s")
    assert pipeline.api("GET", f"{BASE}/s/sinks/k/statistics/total").json["total"]["recordsCount"] == 1  # type: ignore[index]
    assert pipeline.api("DELETE", f"{BASE}/s/sinks/k/statistics/clear").status_code == 200
    assert pipeline.api("GET", f"{BASE}/s/sinks/k/statistics/total").json["total"]["recordsCount"] == 0  # type: ignore[index]
    assert pipeline.rows("in.c-t.k") == [("{}",)]


def test_empty_slices_are_dropped(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.k")
    result = pipeline.flush("s")
    assert [f["state"] for f in result["files"]] == ["closing"]
    assert [f["state"] for f in pipeline.file_states("s", "k")] == ["writing", "imported"]
    assert list((pipeline.data_dir / "staging").rglob("*.zst")) == []
    assert not components(pipeline.app).target.table_exists("in.c-t.k") or pipeline.rows("in.c-t.k") == []


def test_file_statistics_shapes(pipeline: Pipeline) -> None:
    pipeline.source("s")
    pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.k")
    pipeline.post("s", orjson.dumps({"a": 1}))
    pipeline.flush("s")
    writing, imported = pipeline.file_states("s", "k")
    assert set(writing) == {"state", "openedAt", "statistics"}
    assert set(imported) == {"state", "openedAt", "closingAt", "importingAt", "importedAt", "statistics"}
    target = imported["statistics"]["levels"]["target"]
    assert target["recordsCount"] == 1 and target["uncompressedSize"] == len('"{""a"":1}"\n')


@pytest.fixture
def pg_pipeline(tmp_path: Path, pg_admin_url: str, pg_cluster: PgCluster) -> Iterator[Pipeline]:
    p = Pipeline(tmp_path / "data", pg_admin_url, pg_cluster)
    yield p
    close_app(p.app)


def _rolpassword(pipeline: Pipeline, role: str) -> str:
    (row,) = pipeline.raw.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")
    return str(row[0])


def test_postgresql_sink_role_is_rotated_by_disable_and_enable(pg_pipeline: Pipeline) -> None:
    from pushstream.targets.base import SinkIdentity

    pg_pipeline.source("s")
    pg_pipeline.sink("s", "k", [{"type": "body", "name": "b"}], "in.c-t.k")
    role = components(pg_pipeline.app).target.sink_user(SinkIdentity(1, "s", "k"))  # type: ignore[attr-defined]
    before = _rolpassword(pg_pipeline, role)
    assert before.startswith("SCRAM-SHA-256$")
    # The role may write its own table and nothing else.
    grants = pg_pipeline.raw.sql(
        f"SELECT table_schema || '.' || table_name, privilege_type FROM information_schema.role_table_grants"
        f" WHERE grantee = '{role}' AND table_schema = 'in.c-t' ORDER BY 2"
    )
    assert grants == [("in.c-t.k", "INSERT")]
    pg_pipeline.run("PUT", f"{BASE}/s/sinks/k/disable")
    pg_pipeline.run("PUT", f"{BASE}/s/sinks/k/enable")
    assert _rolpassword(pg_pipeline, role) != before
    pg_pipeline.post("s", '"after"')
    pg_pipeline.flush("s")
    assert pg_pipeline.rows("in.c-t.k") == [('"after"',)]


def test_postgresql_restart_during_imports_retries_exactly_once(pg_pipeline: Pipeline, pg_cluster: PgCluster) -> None:
    columns = [{"type": "path", "name": "n", "path": "n", "primaryKey": True}]
    pg_pipeline.source("s")
    pg_pipeline.sink("s", "k", columns, "in.c-t.k")
    for i in range(3):
        pg_pipeline.post("s", f'{{"n": {i}}}')
    pg_cluster.stop()
    try:
        pg_pipeline.flush("s")
        (waiting,) = [f for f in pg_pipeline.file_states("s", "k") if f["state"] != "writing"]
        assert waiting["state"] == "importing" and waiting["retryAttempt"] == 1
    finally:
        pg_cluster.start()
    time.sleep(0.3)  # the test's retry backoff
    pg_pipeline.settle()
    assert sorted(pg_pipeline.rows("in.c-t.k")) == [("0",), ("1",), ("2",)]
