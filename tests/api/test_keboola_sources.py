"""Sources, step by step as Keboola's own API scenarios check sinks: the same request and
answer shapes, error names and messages, version sequences, task shapes, settings and
paging, for sources (Keboola's project 4242, default branch 1, public URLs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apitest import Api
from flask import Flask
from keboola import (
    ANY_KEYS,
    BASE,
    BRANCH_ID,
    BY,
    PROJECT_ID,
    SOURCE_URL,
    Scenario,
    accepted,
    error,
    finished,
    keboola_app,
    outputs,
    page,
    source,
    task_key,
    version,
)

from pushstream.app import close_app

KEY = task_key("my-source")
SRC = f"{BASE}/my-source"
NOT_FOUND = error(404, "sourceNotFound", 'Source "my-source" not found in the branch.')
MISSING_TOKEN = error(400, "missingField", '"X-StorageApi-Token" is missing from header.')


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    application = keboola_app(tmp_path / "data")
    yield application
    close_app(application)


@pytest.fixture
def s(api: Api) -> Scenario:
    return Scenario(api)


def _source_change(s: Scenario, method: str, suffix: str, action: str, result: str, **kwargs: Any) -> dict[str, Any]:
    return s.change(method, SRC + suffix, f"api.{action}", KEY, result, outputs("my-source"), **kwargs)


# Create and get.


def test_create_minimal_and_get(s: Scenario) -> None:
    task = s.step("POST", BASE, 202, accepted("api.create.source", KEY), json={"name": "My Source", "type": "http"})
    done = s.poll(
        task,
        finished("api.create.source", KEY, "Source has been created successfully.", outputs("my-source")),
    )
    assert done["taskId"] == task["taskId"] and done["createdAt"] == task["createdAt"]
    body = s.step("GET", done["outputs"]["url"].removeprefix("https://stream.keboola.local"), 200, source())
    secret = body["http"]["url"].rsplit("/", 1)[1]
    assert len(secret) == 48 and secret.isalnum()
    # The version and the creation are signed by the same token at the same time.
    assert body["created"] == {"at": body["version"]["at"], "by": body["version"]["by"]}


def test_create_with_id_and_get(s: Scenario) -> None:
    s.change(
        "POST",
        BASE,
        "api.create.source",
        task_key("my-source-custom-id"),
        "Source has been created successfully.",
        outputs("my-source-custom-id"),
        json={"sourceId": "my-source-custom-id", "name": "My Source", "type": "http"},
    )
    s.step("GET", f"{BASE}/my-source-custom-id", 200, source("my-source-custom-id"))


def test_create_weird_id_and_get(s: Scenario) -> None:
    s.change(
        "POST",
        BASE,
        "api.create.source",
        task_key("weird-id"),
        "Source has been created successfully.",
        outputs("weird-id"),
        json={"sourceId": "!!!!~~~~weird|||id##", "name": "My Source", "type": "http"},
    )
    s.step("GET", f"{BASE}/weird-id", 200, source("weird-id"))


def test_create_with_description_and_get(s: Scenario) -> None:
    s.create_source(description="Some description ....")
    s.step("GET", SRC, 200, source(description="Some description ...."))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"name": "My Source", "type": "foo"},
            error(400, "invalidEnumValue", 'Value of body.type must be one of "http", "otlp" but got value "foo".'),
        ),
        (
            {"sourceId": "", "name": "My Source", "type": "http"},
            error(
                400, "invalidLength", 'Length of body.sourceId must be greater or equal than 1 but got value "" (len=0)'
            ),
        ),
        (
            {"sourceId": "123456789-" * 4 + "123456789", "name": "My Source", "type": "http"},
            error(
                400,
                "invalidLength",
                "Length of body.sourceId must be lesser or equal than 48 but got value "
                '"123456789-123456789-123456789-123456789-123456789" (len=49)',
            ),
        ),
        (
            {"name": "", "type": "http"},
            error(400, "invalidLength", 'Length of body.name must be greater or equal than 1 but got value "" (len=0)'),
        ),
        (
            {"name": "123456789-" * 4 + "1", "type": "http"},
            error(
                400,
                "invalidLength",
                "Length of body.name must be lesser or equal than 40 but got value "
                '"123456789-123456789-123456789-123456789-1" (len=41)',
            ),
        ),
        ({"type": "http"}, error(400, "missingField", '"name" is missing from body.')),
        ({"name": "My Source"}, error(400, "missingField", '"type" is missing from body.')),
    ],
)
def test_create_invalid_400(s: Scenario, body: dict[str, Any], expected: dict[str, Any]) -> None:
    s.step("POST", BASE, 400, expected, json=body)
    s.step("GET", f"{BASE}", 200, {ANY_KEYS: 0, "sources": []})


def test_create_exists_409(s: Scenario) -> None:
    s.create_source()
    s.step(
        "POST",
        BASE,
        409,
        error(409, "sourceAlreadyExists", 'Source "my-source" already exists in the branch.'),
        json={"name": "My Source", "type": "http"},
    )
    # The same id from another name or written otherwise.
    s.step("POST", BASE, 409, json={"sourceId": "My Source", "name": "Other", "type": "http"})


def test_create_duplicate_while_the_first_runs(s: Scenario) -> None:
    """The second create answers 409 at once: naming the reserved key while the first
    task runs, the short id once it has finished (never a second task)."""
    task = s.step("POST", BASE, 202, accepted("api.create.source", KEY), json={"name": "My Source", "type": "http"})
    body = s.step("POST", BASE, 409, json={"name": "My Source", "type": "http"})
    assert body["message"] in (
        f'Source "{PROJECT_ID}/{BRANCH_ID}/my-source" already exists in the branch.',
        'Source "my-source" already exists in the branch.',
    )
    assert body == error(409, "sourceAlreadyExists", body["message"])
    s.poll(task, finished("api.create.source", KEY, "Source has been created successfully.", outputs("my-source")))


def test_create_in_parallel_and_list(s: Scenario) -> None:
    tasks = [s.step("POST", BASE, 202, json={"name": f"My Source {i}", "type": "http"}) for i in (1, 2, 3)]
    for task in tasks:
        assert s.poll(task)["status"] == "success"
    s.step(
        "GET",
        BASE,
        200,
        {
            "projectId": PROJECT_ID,
            "branchId": BRANCH_ID,
            "page": page(100, 3, "", "my-source-3"),
            "sources": [source(f"my-source-{i}", f"My Source {i}") for i in (1, 2, 3)],
        },
    )


# Missing token and not found.


ENDPOINTS = [
    ("GET", ""),
    ("PATCH", ""),
    ("DELETE", ""),
    ("PUT", "/disable"),
    ("PUT", "/enable"),
    ("PUT", "/undelete"),
    ("POST", "/rotate-secret"),
    ("GET", "/settings"),
    ("PATCH", "/settings"),
    ("POST", "/test"),
    ("DELETE", "/statistics/clear"),
    ("GET", "/versions"),
    ("GET", "/versions/1"),
    ("PUT", "/versions/1/rollback"),
    ("GET", "/sinks"),
    ("GET", "/sinks/deleted"),
]


@pytest.mark.parametrize(("method", "suffix"), [("GET", "/../sources"), ("POST", "/../sources"), *ENDPOINTS])
def test_missing_storage_token_400(s: Scenario, method: str, suffix: str) -> None:
    path = BASE if suffix.startswith("/..") else SRC + suffix
    s.step(method, path, 400, MISSING_TOKEN, json={"name": "My Source"}, without_token=True)


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_not_found_404(s: Scenario, method: str, suffix: str) -> None:
    expected = NOT_FOUND
    if suffix == "/undelete":
        expected = error(404, "deletedSourceNotFound", 'Deleted source "my-source" not found in the branch.')
    s.step(method, SRC + suffix, 404, expected, json={"name": "My Source Updated"})


def test_get_deleted_source_is_404(s: Scenario) -> None:
    s.create_source()
    _source_change(s, "DELETE", "", "delete.source", "Source has been deleted successfully.")
    for method, suffix in ENDPOINTS:
        if suffix != "/undelete":
            s.step(method, SRC + suffix, 404, NOT_FOUND, json={"name": "My Source Updated"})


# Lists and paging.


def test_list_empty(s: Scenario) -> None:
    empty = {"projectId": PROJECT_ID, "branchId": BRANCH_ID, "page": page(100, 0, "", ""), "sources": []}
    s.step("GET", BASE, 200, empty)
    s.step("GET", f"{BASE}/deleted", 200, empty)


def test_list_paging(s: Scenario) -> None:
    for i in range(1, 6):
        s.create_source(f"my-source-{i}", f"My Source {i}")

    def listed(query: str, limit: int, after_id: str, last_id: str, ids: list[int]) -> None:
        s.step(
            "GET",
            f"{BASE}{query}",
            200,
            {
                "projectId": PROJECT_ID,
                "branchId": BRANCH_ID,
                "page": page(limit, 5, after_id, last_id),
                "sources": [source(f"my-source-{i}", f"My Source {i}") for i in ids],
            },
        )

    listed("", 100, "", "my-source-5", [1, 2, 3, 4, 5])
    listed("?afterId=my-source-5", 100, "my-source-5", "", [])
    listed("?limit=2", 2, "", "my-source-2", [1, 2])
    listed("?limit=2&afterId=my-source-2", 2, "my-source-2", "my-source-4", [3, 4])
    listed("?limit=2&afterId=my-source-4", 2, "my-source-4", "my-source-5", [5])
    listed("?limit=2&afterId=my-source-5", 2, "my-source-5", "", [])
    # An afterId between two ids (or of none) pages from the next one.
    listed("?limit=1&afterId=my-source-20", 1, "my-source-20", "my-source-3", [3])


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("0", error(400, "invalidRange", "Limit must be greater or equal than 1 but got value 0.")),
        ("101", error(400, "invalidRange", "Limit must be lesser or equal than 100 but got value 101.")),
        (
            "abc",
            error(
                400,
                "invalidFieldType",
                'Invalid value "abc" for "limit", must be a integer; '
                "limit must be greater or equal than 1 but got value 0.",
            ),
        ),
    ],
)
def test_list_bad_limit_400(s: Scenario, limit: str, expected: dict[str, Any]) -> None:
    for path in (BASE, f"{BASE}/deleted"):
        s.step("GET", f"{path}?limit={limit}", 400, expected)
    s.create_source()
    for suffix in ("/versions", "/sinks", "/sinks/deleted"):
        s.step("GET", f"{SRC}{suffix}?limit={limit}", 400, expected)


def test_list_deleted_with_paging(s: Scenario) -> None:
    for i in (1, 2, 3):
        s.create_source(f"my-source-{i}", f"My Source {i}")
    for i in (1, 2):
        s.change(
            "DELETE",
            f"{BASE}/my-source-{i}",
            "api.delete.source",
            task_key(f"my-source-{i}"),
            "Source has been deleted successfully.",
            outputs(f"my-source-{i}"),
        )
    deleted = {"deleted": {"at": "%s", "by": BY}}
    s.step(
        "GET",
        f"{BASE}/deleted",
        200,
        {
            "projectId": PROJECT_ID,
            "branchId": BRANCH_ID,
            "page": page(100, 2, "", "my-source-2"),
            "sources": [source(f"my-source-{i}", f"My Source {i}", **deleted) for i in (1, 2)],
        },
    )
    s.step(
        "GET",
        f"{BASE}/deleted?limit=1&afterId=my-source-1",
        200,
        {
            "projectId": PROJECT_ID,
            "branchId": BRANCH_ID,
            "page": page(1, 2, "my-source-1", "my-source-2"),
            "sources": [source("my-source-2", "My Source 2", **deleted)],
        },
    )
    s.step(
        "GET",
        BASE,
        200,
        {ANY_KEYS: 0, "page": page(100, 1, "", "my-source-3"), "sources": [source("my-source-3", "My Source 3")]},
    )


# Update.


def test_update(s: Scenario) -> None:
    s.create_source()
    _source_change(
        s, "PATCH", "", "update.source", "Source has been updated successfully.", json={"name": "My Source Updated"}
    )
    s.step("GET", SRC, 200, source(name="My Source Updated", number=2, change="Updated."))
    _source_change(
        s,
        "PATCH",
        "",
        "update.source",
        "Source has been updated successfully.",
        json={"changeDescription": "Super cool modification.", "name": "My Source Updated 2", "description": "New."},
    )
    s.step(
        "GET",
        SRC,
        200,
        source(name="My Source Updated 2", description="New.", number=3, change="Super cool modification."),
    )
    # An update that changes nothing is a version too, as in Keboola.
    _source_change(
        s,
        "PATCH",
        "",
        "update.source",
        "Source has been updated successfully.",
        json={"changeDescription": "Super cool modification 2.", "type": "http"},
    )
    s.step(
        "GET",
        SRC,
        200,
        source(name="My Source Updated 2", description="New.", number=4, change="Super cool modification 2."),
    )
    _source_change(s, "PATCH", "", "update.source", "Source has been updated successfully.", json={})
    s.step("GET", SRC, 200, source(name="My Source Updated 2", description="New.", number=5, change="Updated."))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"name": ""},
            error(400, "invalidLength", 'Length of body.name must be greater or equal than 1 but got value "" (len=0)'),
        ),
        (
            {"name": "123456789-" * 4 + "1"},
            error(
                400,
                "invalidLength",
                "Length of body.name must be lesser or equal than 40 but got value "
                '"123456789-123456789-123456789-123456789-1" (len=41)',
            ),
        ),
        (
            {"type": "foo"},
            error(400, "invalidEnumValue", 'Value of body.type must be one of "http", "otlp" but got value "foo".'),
        ),
    ],
)
def test_update_invalid_400(s: Scenario, body: dict[str, Any], expected: dict[str, Any]) -> None:
    s.create_source()
    s.step("PATCH", SRC, 400, expected, json=body)
    s.step("GET", SRC, 200, source())


# Disable, enable, delete, undelete.


def test_disable_enable(s: Scenario) -> None:
    s.create_source()
    _source_change(s, "PUT", "/disable", "disable.source", "Source has been disabled successfully.")
    disabled = {"at": "%s", "by": BY, "reason": "API"}
    s.step("GET", SRC, 200, source(number=2, change="Disabled.", disabled=disabled))
    _source_change(s, "PUT", "/enable", "enable.source", "Source has been enabled successfully.")
    s.step("GET", SRC, 200, source(number=3, change="Enabled."))


def test_disable_rollback(s: Scenario) -> None:
    """A rollback restores the configuration of a version, not whether the source is enabled."""
    s.create_source()
    _source_change(s, "PUT", "/disable", "disable.source", "Source has been disabled successfully.")
    s.change(
        "PUT",
        f"{SRC}/versions/1/rollback",
        "api.rollback.sourceVersion",
        KEY,
        "Source version was rolled back successfully.",
        outputs("my-source"),
    )
    disabled = {"at": "%s", "by": BY, "reason": "API"}
    s.step("GET", SRC, 200, source(number=3, change='Rollback to version "1".', disabled=disabled))


def test_delete_and_undelete(s: Scenario) -> None:
    s.create_source()
    s.create_sink()
    _source_change(s, "DELETE", "", "delete.source", "Source has been deleted successfully.")
    s.step("GET", SRC, 404, NOT_FOUND)
    s.step("GET", f"{SRC}/sinks/my-sink", 404, NOT_FOUND)
    s.step("PUT", f"{SRC}/sinks/my-sink/undelete", 404, NOT_FOUND)
    s.step("DELETE", SRC, 404, NOT_FOUND)
    s.step(
        "GET",
        f"{BASE}/deleted",
        200,
        {ANY_KEYS: 0, "page": page(100, 1, "", "my-source"), "sources": [source(deleted={"at": "%s", "by": BY})]},
    )
    _source_change(s, "PUT", "/undelete", "undelete.source", "Source has been undeleted successfully.")
    s.step("GET", SRC, 200, source(number=2, change='Undeleted to version "1".'))
    s.step("GET", f"{BASE}/deleted", 200, {ANY_KEYS: 0, "page": page(100, 0, "", ""), "sources": []})
    # The sinks deleted with the source come back with it.
    s.step("GET", f"{SRC}/sinks", 200, {ANY_KEYS: 0, "page": page(100, 1, "", "my-sink"), "sinks": [{ANY_KEYS: 0}]})
    s.step(
        "PUT",
        f"{SRC}/undelete",
        404,
        error(404, "deletedSourceNotFound", 'Deleted source "my-source" not found in the branch.'),
    )


# Versions and rollback.


def test_versions_and_paging(s: Scenario) -> None:
    s.create_source()
    patch = {"settings": [{"key": "storage.level.staging.upload.trigger.interval", "value": "45s"}]}
    for _ in range(2):
        _source_change(
            s,
            "PATCH",
            "/settings",
            "update.sourceSettings",
            "Source settings have been updated successfully.",
            json=patch,
        )
    v1, v2, v3 = version(1, "New source."), version(2, "Updated settings."), version(3, "Updated settings.")
    s.step("GET", f"{SRC}/versions", 200, {"versions": [v1, v2, v3], "page": page(100, 3, "", "%s")})
    s.step("GET", f"{SRC}/versions?limit=2", 200, {"versions": [v1, v2], "page": page(2, 3, "", "%d")})
    s.step("GET", f"{SRC}/versions?limit=2&afterId=2", 200, {"versions": [v3], "page": page(2, 1, "%s", "%s")})
    s.step("GET", f"{SRC}/versions?limit=2&afterId=0000000003", 200, {"versions": [], "page": page(2, 0, "%s", "")})
    s.step("GET", f"{SRC}/versions/2", 200, v2)


def test_version_detail_400_and_404(s: Scenario) -> None:
    s.create_source()
    for suffix, method in (("", "GET"), ("/rollback", "PUT")):
        s.step(
            method,
            f"{SRC}/versions/testversion{suffix}",
            400,
            error(
                400,
                "invalidFieldType",
                'Invalid value "testversion" for "versionNumber", must be a integer; '
                "versionNumber must be greater or equal than 1 but got value 0.",
            ),
        )
        s.step(
            method,
            f"{SRC}/versions/123{suffix}",
            404,
            error(404, "sourceVersionNotFound", 'Source version "my-source/0000000123" not found in the branch.'),
        )
        s.step(
            method,
            f"{SRC}/versions/0{suffix}",
            400,
            error(400, "invalidRange", "VersionNumber must be greater or equal than 1 but got value 0."),
        )


def test_rollback(s: Scenario) -> None:
    s.create_source(description="First.")
    _source_change(s, "PATCH", "", "update.source", "Source has been updated successfully.", json={"description": "2"})
    s.change(
        "PUT",
        f"{SRC}/versions/1/rollback",
        "api.rollback.sourceVersion",
        KEY,
        "Source version was rolled back successfully.",
        outputs("my-source"),
    )
    body = s.step("GET", SRC, 200, source(description="First.", number=3, change='Rollback to version "1".'))
    versions = s.step(
        "GET",
        f"{SRC}/versions",
        200,
        {
            "versions": [version(1, "New source."), version(2, "Updated."), version(3, 'Rollback to version "1".')],
            "page": page(100, 3, "", "%s"),
        },
    )
    assert versions["versions"][2]["hash"] == versions["versions"][0]["hash"] == body["version"]["hash"]


# Settings.

INTERVAL = "storage.level.staging.upload.trigger.interval"
SIZE = "storage.level.staging.upload.trigger.size"


def _settings_task(s: Scenario, patch: dict[str, Any]) -> None:
    _source_change(
        s, "PATCH", "/settings", "update.sourceSettings", "Source settings have been updated successfully.", json=patch
    )


def test_settings(s: Scenario) -> None:
    s.create_source()
    s.create_sink()
    defaults = s.step("GET", f"{SRC}/settings", 200)["settings"]
    # A source lists the same 27 keys with the same defaults as a sink.
    assert defaults == s.step("GET", f"{SRC}/sinks/my-sink/settings", 200)["settings"]
    assert len(defaults) == 27
    by_key = {item["key"]: item for item in defaults}
    assert by_key[INTERVAL] == {
        "key": INTERVAL,
        "type": "string",
        "description": "Duration from the last slice upload to trigger the next upload.",
        "value": "30s",
        "defaultValue": "30s",
        "overwritten": False,
        "protected": False,
        "validation": "required,minDuration=1s,maxDuration=30m",
    }
    _settings_task(s, {})
    _settings_task(s, {"settings": [{"key": INTERVAL, "value": "45s"}, {"key": SIZE, "value": "12MB"}]})
    changed = s.step("GET", f"{SRC}/settings", 200)["settings"]
    assert [item for item in changed if item["overwritten"]] == [
        {**by_key[INTERVAL], "value": "45s", "overwritten": True},
        {**by_key[SIZE], "value": "12MB", "overwritten": True},
    ]
    # The sink inherits the source's values.
    sink_settings = {i["key"]: i["value"] for i in s.step("GET", f"{SRC}/sinks/my-sink/settings", 200)["settings"]}
    assert sink_settings[INTERVAL] == "45s" and sink_settings[SIZE] == "12MB"
    s.step(
        "PATCH",
        f"{SRC}/settings",
        400,
        error(
            400,
            "badRequest",
            f'- Invalid "{SIZE}" value "bar": invalid syntax.\n- Invalid "{INTERVAL}": time: invalid duration "foo".',
        ),
        json={"settings": [{"key": INTERVAL, "value": "foo"}, {"key": SIZE, "value": "bar"}]},
    )
    s.step(
        "PATCH",
        f"{SRC}/settings",
        403,
        error(
            403,
            "forbidden",
            'Cannot modify protected keys: "storage.level.local.encoding.compression.gzip.blockSize".',
        ),
        json={"settings": [{"key": "storage.level.local.encoding.compression.gzip.blockSize", "value": "128KB"}]},
    )
    # null resets a key to its default.
    _settings_task(s, {"settings": [{"key": INTERVAL, "value": None}]})
    reset = s.step("GET", f"{SRC}/settings", 200)["settings"]
    assert [item["key"] for item in reset if item["overwritten"]] == [SIZE]
    versions = s.step("GET", f"{SRC}/versions", 200)["versions"]
    assert [(v["number"], v["description"]) for v in versions] == [
        (1, "New source."),
        (2, "Updated settings."),
        (3, "Updated settings."),
        (4, "Updated settings."),
    ]


# Rotate secret, test, statistics, tasks.


def test_rotate_secret(s: Scenario) -> None:
    s.create_source()
    before = s.step("GET", SRC, 200)
    rotated = s.step("POST", f"{SRC}/rotate-secret", 200, source())
    assert rotated["http"]["url"] != before["http"]["url"]
    assert rotated["http"]["url"].startswith(f"{SOURCE_URL}/stream/{PROJECT_ID}/my-source/")
    assert s.step("GET", SRC, 200) == rotated


def test_test_endpoint(s: Scenario) -> None:
    s.create_source()
    expected_empty = {"projectId": PROJECT_ID, "branchId": BRANCH_ID, "sourceId": "my-source", "tables": []}
    s.step("POST", f"{SRC}/test", 200, expected_empty, json={"a": 1})
    s.create_sink()
    s.step(
        "POST",
        f"{SRC}/test",
        200,
        {
            **expected_empty,
            "tables": [
                {
                    "sinkId": "my-sink",
                    "tableId": "in.c-my-bucket.my-sink",
                    "rows": [{"columns": [{"name": "id", "value": "%s"}, {"name": "body", "value": '{"a":1}'}]}],
                }
            ],
        },
        data=b'{"a":1}',
        content_type="application/json",
    )


def test_statistics_clear(s: Scenario) -> None:
    s.step("DELETE", f"{SRC}/statistics/clear", 404, NOT_FOUND)
    s.create_source()
    response = s.api.delete(f"{SRC}/statistics/clear")
    assert response.status_code == 200 and response.data == b""


def test_task_not_found(s: Scenario) -> None:
    for task_id in ("foo", "api.create.source/1/my-source/2024-01-01T00:00:00.000Z_abcde"):
        s.step("GET", f"/v1/tasks/{task_id}", 404, error(404, "taskNotFound", f'Task "{task_id}" not found.'))


def test_tasks_of_every_source_change(s: Scenario) -> None:
    """Each change's task, while processing and once finished (types ``api.<action>.source``)."""
    s.create_source()
    for method, suffix, action, result in (
        ("PATCH", "", "update.source", "Source has been updated successfully."),
        ("PATCH", "/settings", "update.sourceSettings", "Source settings have been updated successfully."),
        ("PUT", "/disable", "disable.source", "Source has been disabled successfully."),
        ("PUT", "/enable", "enable.source", "Source has been enabled successfully."),
        ("PUT", "/versions/1/rollback", "rollback.sourceVersion", "Source version was rolled back successfully."),
        ("DELETE", "", "delete.source", "Source has been deleted successfully."),
        ("PUT", "/undelete", "undelete.source", "Source has been undeleted successfully."),
    ):
        json = {"name": "My Source 2"} if suffix == "" else {} if method == "PATCH" else None
        _source_change(s, method, suffix, action, result, json=json)


def _template_sink(s: Scenario, content: str) -> None:
    s.api.run(
        "POST",
        f"{SRC}/sinks",
        json={
            "sinkId": "my-sink",
            "name": "My Sink",
            "type": "table",
            "table": {
                "type": "keboola",
                "tableId": "in.c-my-bucket.my-table",
                "mapping": {
                    "columns": [
                        {"type": "template", "name": "t", "template": {"language": "jsonnet", "content": content}}
                    ]
                },
            },
        },
    )


def _tables(value: str) -> dict[str, Any]:
    row = {"columns": [{"name": "t", "value": value}]}
    return {
        "projectId": PROJECT_ID,
        "branchId": BRANCH_ID,
        "sourceId": "my-source",
        "tables": [{"sinkId": "my-sink", "tableId": "in.c-my-bucket.my-table", "rows": [row]}],
    }


@pytest.mark.parametrize(
    ("content", "request_kwargs", "status", "expected"),
    [
        ("Body('a')", {"data": b'{"a":{"b":1}}', "content_type": "application/vnd.api+json"}, 200, '{"b":1}'),
        ("Now()", {"data": b"{}", "content_type": "application/json"}, 200, '"%d-%d-%dT%d:%d:%d.%dZ"'),
        ("BodyStr()", {"data": b"", "content_type": "application/json"}, 200, '""'),
        ("Body()", {"data": b"", "content_type": "application/x-www-form-urlencoded"}, 200, "{}"),
        (
            "Body()",
            {"data": b'{"a":1}'},
            422,
            'Cannot map the body for sink "my-sink": cannot parse request body:\n- unsupported content type "", '
            "supported types: application/json and application/x-www-form-urlencoded.",
        ),
        (
            "Body('foo1.foo2')",
            {"data": b'{"a":1}', "content_type": "application/json"},
            422,
            'Invalid value for column "t" of sink "my-sink": path "foo1.foo2" not found in the body.',
        ),
        (
            "Header('x-header-3')",
            {"data": b'{"a":1}', "content_type": "application/json"},
            422,
            'Invalid value for column "t" of sink "my-sink": header "X-Header-3" not found.',
        ),
    ],
)
def test_test_endpoint_with_templates(
    s: Scenario, content: str, request_kwargs: dict[str, Any], status: int, expected: str
) -> None:
    """The test endpoint maps as the receiver does; what a sink cannot map is a 422 naming sink and column."""
    s.create_source()
    _template_sink(s, content)
    body = _tables(expected) if status == 200 else error(422, "unprocessableContent", expected)
    s.step("POST", f"{SRC}/test", status, body, **request_kwargs)
