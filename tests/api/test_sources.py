"""Sources: create, read, list, update, delete, undelete, enable/disable, rotate-secret, validation and limits."""

from __future__ import annotations

from typing import Any

import pytest
from apitest import ADMIN_BY, BASE, HASH, SECRET, TIME, Api, error

from pushstream.api.validation import normalize_id
from pushstream.catalog.models import Task, now


def _source_body(
    source_id: str, name: str, secret: str, version: dict[str, Any], created: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "projectId": 1,
        "branchId": 1,
        "sourceId": source_id,
        "type": "http",
        "name": name,
        "description": extra.pop("description", ""),
        "http": {"url": f"http://127.0.0.1:8000/stream/1/{source_id}/{secret}"},
        "version": version,
        "created": created,
        **extra,
    }


def test_create_source_answers_202_with_a_task(api: Api) -> None:
    response = api.post(BASE, json={"name": "GitHub Webhooks", "type": "http", "description": "PR events"})
    assert response.status_code == 202
    task = response.json
    assert task is not None
    task_id = task["taskId"]
    prefix = "api.create.source/1/github-webhooks/"
    assert task_id.startswith(prefix)
    suffix = task_id[len(prefix) :]
    assert TIME.match(suffix[:24]) and suffix[24] == "_" and len(suffix) == 30
    # Keboola's task: the type is the id's prefix; no outputs until it has finished.
    assert task == {
        "taskId": task_id,
        "type": "api.create.source",
        "url": f"http://127.0.0.1:8000/v1/tasks/{task_id}",
        "status": "processing",
        "isFinished": False,
        "createdAt": task["createdAt"],
    }
    assert TIME.match(task["createdAt"])
    finished = api.wait_task(task)
    assert finished == {
        **task,
        "status": "success",
        "isFinished": True,
        "finishedAt": finished["finishedAt"],
        "duration": finished["duration"],
        "result": "Source has been created successfully.",
        "outputs": {
            "url": "http://127.0.0.1:8000/v1/branches/1/sources/github-webhooks",
            "projectId": 1,
            "branchId": 1,
            "sourceId": "github-webhooks",
        },
    }
    assert TIME.match(finished["finishedAt"]) and finished["finishedAt"] >= task["createdAt"]
    assert isinstance(finished["duration"], int) and finished["duration"] >= 0


def test_created_source_body(api: Api) -> None:
    api.run("POST", BASE, json={"name": "GitHub Webhooks", "type": "http", "description": "PR events"})
    response = api.get(f"{BASE}/github-webhooks")
    assert response.status_code == 200
    body = response.json
    assert body is not None
    secret = body["http"]["url"].rsplit("/", 1)[1]
    assert SECRET.match(secret)
    version = body["version"]
    assert HASH.match(version["hash"]) and TIME.match(version["at"])
    assert version == {
        "number": 1,
        "hash": version["hash"],
        "description": "New source.",
        "at": version["at"],
        "by": ADMIN_BY,
    }
    assert body == _source_body(
        "github-webhooks",
        "GitHub Webhooks",
        secret,
        version,
        {"at": version["at"], "by": ADMIN_BY},
        description="PR events",
    )


@pytest.mark.parametrize(
    ("name", "source_id"),
    [
        ("My Source", "my-source"),
        ("Můj žluťoučký kůň", "muj-zlutoucky-kun"),
        ("  --Hello,   World!!  ", "hello-world"),
        ("ÀÉÎÕÜ ß 123", "aeiou-123"),
        ("camelCase_and_snake", "camelcase-and-snake"),
    ],
)
def test_id_is_derived_from_name(api: Api, name: str, source_id: str) -> None:
    assert normalize_id(name) == source_id
    api.run("POST", BASE, json={"name": name, "type": "http"})
    assert api.get(f"{BASE}/{source_id}").json["name"] == name  # type: ignore[index]


def test_explicit_id_is_normalised(api: Api) -> None:
    api.run("POST", BASE, json={"name": "x", "sourceId": "My_Explicit ID", "type": "http"})
    assert api.get(f"{BASE}/my-explicit-id").status_code == 200
    # 48 characters is the longest id.
    long_id = "a" * 48
    api.run("POST", BASE, json={"name": "y", "sourceId": long_id, "type": "http"})
    assert api.get(f"{BASE}/{long_id}").status_code == 200


def test_numeric_branch_id_works_like_default(api: Api, source: dict[str, Any]) -> None:
    assert api.get("/v1/branches/1/sources/my-source").json == source


@pytest.mark.parametrize(
    ("body", "status", "name", "message"),
    [
        ({"type": "http"}, 400, "missingField", '"name" is missing from body.'),
        ({"name": "x"}, 400, "missingField", '"type" is missing from body.'),
        (
            {"name": "", "type": "http"},
            400,
            "invalidLength",
            'Length of body.name must be greater or equal than 1 but got value "" (len=0)',
        ),
        (
            {"name": "n" * 41, "type": "http"},
            400,
            "invalidLength",
            f'Length of body.name must be lesser or equal than 40 but got value "{"n" * 41}" (len=41)',
        ),
        ({"name": 5, "type": "http"}, 400, "invalidFieldType", 'Invalid value 5 for "body.name", must be a string.'),
        (
            {"name": "x", "type": "http", "description": "d" * 4097},
            400,
            "invalidLength",
            f'Length of body.description must be lesser or equal than 4096 but got value "{"d" * 4097}" (len=4097)',
        ),
        (
            {"name": "x", "type": "ftp"},
            400,
            "invalidEnumValue",
            'Value of body.type must be one of "http", "otlp" but got value "ftp".',
        ),
        # The type is checked before the name (Keboola's order of validators).
        (
            {"name": "", "type": "ftp"},
            400,
            "invalidEnumValue",
            'Value of body.type must be one of "http", "otlp" but got value "ftp".',
        ),
        (
            {"name": "x", "type": "http", "sourceId": "a" * 49},
            400,
            "invalidLength",
            f'Length of body.sourceId must be lesser or equal than 48 but got value "{"a" * 49}" (len=49)',
        ),
        (
            {"name": "x", "type": "http", "sourceId": ""},
            400,
            "invalidLength",
            'Length of body.sourceId must be greater or equal than 1 but got value "" (len=0)',
        ),
        (
            {"name": "x", "type": "http", "sourceId": "---"},
            400,
            "badRequest",
            'Cannot derive a source id from "body.sourceId": it must contain at least one letter or digit.',
        ),
        (
            {"name": "!!!", "type": "http"},
            400,
            "badRequest",
            'Cannot derive a source id from "body.name": it must contain at least one letter or digit.',
        ),
        (
            {"name": "Deleted", "type": "http"},
            400,
            "badRequest",
            '"deleted" is reserved and cannot be used as a source id.',
        ),
    ],
)
def test_create_source_validation(api: Api, body: dict[str, Any], status: int, name: str, message: str) -> None:
    response = api.post(BASE, json=body)
    assert response.status_code == status
    assert response.json == error(status, name, message)
    assert api.get(BASE).json["sources"] == []  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "The request body is not valid JSON: unexpected end of data: line 1 column 2 (char 1)."),
        (b"[]", "The request body must be a JSON object."),
        (b'"x"', "The request body must be a JSON object."),
    ],
)
def test_create_source_with_malformed_body(api: Api, data: bytes, message: str) -> None:
    response = api.post(BASE, data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.json == error(400, "badRequest", message)


def test_empty_body_is_missing(api: Api, source: dict[str, Any]) -> None:
    for method, path in (("POST", BASE), ("PATCH", f"{BASE}/my-source"), ("PATCH", f"{BASE}/my-source/settings")):
        response = api.request(method, path)
        assert response.status_code == 400
        assert response.json == error(400, "missingField", "The request body is missing.")
    assert api.post(BASE, json={}).json == error(400, "missingField", '"type" is missing from body.')


def test_unknown_fields_are_ignored(api: Api) -> None:
    api.run("POST", BASE, json={"name": "x", "type": "http", "extra": [1, 2]})
    assert "extra" not in api.get(f"{BASE}/x").json  # type: ignore[operator]


def test_duplicate_source_is_409(api: Api, source: dict[str, Any]) -> None:
    response = api.post(BASE, json={"name": "My Source", "type": "http"})
    assert response.status_code == 409
    assert response.json == error(409, "sourceAlreadyExists", 'Source "my-source" already exists in the branch.')
    response = api.post(BASE, json={"name": "Other", "sourceId": "MY SOURCE", "type": "http"})
    assert response.status_code == 409


def test_create_of_an_id_being_created_is_409_at_once(api: Api) -> None:
    """A create while a task creating the same id still runs (here: stored as running by
    this process, as a queued task is): 409 now, naming the reserved key as Keboola
    does, not a second task that fails later."""
    running = Task(
        "api.create.source/1/my-source/2024-01-01T00:00:00.000Z_abcde", "api.create.source", "processing", now()
    )
    api.services.catalog.create_task(running)
    response = api.post(BASE, json={"name": "My Source", "type": "http"})
    assert response.status_code == 409
    assert response.json == error(409, "sourceAlreadyExists", 'Source "1/1/my-source" already exists in the branch.')
    # Another id is free; a finished task reserves nothing.
    assert api.post(BASE, json={"name": "My Source 2", "type": "http"}).status_code == 202
    api.services.catalog.finish_task(running.task_id, "error", result="x", error="x")
    api.run("POST", BASE, json={"name": "My Source", "type": "http"})


@pytest.mark.parametrize(
    ("branch", "status", "body"),
    [
        ("2", 404, error(404, "branchNotFound", 'Branch "2" not found.')),
        ("main", 400, error(400, "badRequest", '"branchId" must be "default" or a numeric branch id, found "main".')),
        (
            "1" * 19,
            400,
            error(400, "badRequest", f'"branchId" must be "default" or a numeric branch id, found "{"1" * 19}".'),
        ),
    ],
)
def test_unknown_or_invalid_branch(api: Api, branch: str, status: int, body: dict[str, Any]) -> None:
    for method, path in (
        ("GET", "/sources"),
        ("POST", "/sources"),
        ("GET", "/sources/x"),
        ("GET", "/aggregation/sources"),
    ):
        response = api.request(method, f"/v1/branches/{branch}{path}", json={"name": "x", "type": "http"})
        assert response.status_code == status
        assert response.json == body


def test_get_missing_source_is_404(api: Api) -> None:
    not_found = error(404, "sourceNotFound", 'Source "nope" not found in the branch.')
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("PUT", "/enable"),
        ("PUT", "/disable"),
        ("POST", "/rotate-secret"),
        ("GET", "/settings"),
        ("PATCH", "/settings"),
        ("POST", "/test"),
        ("DELETE", "/statistics/clear"),
        ("GET", "/versions"),
        ("GET", "/versions/1"),
        ("PUT", "/versions/1/rollback"),
        ("GET", "/sinks"),
        ("POST", "/sinks"),
        ("GET", "/sinks/deleted"),
        ("GET", "/sinks/x"),
    ):
        body = {
            "name": "x",
            "type": "table",
            "table": {
                "type": "keboola",
                "tableId": "in.c-a.b",
                "mapping": {"columns": [{"type": "body", "name": "b"}]},
            },
        }
        response = api.request(method, f"{BASE}/nope{suffix}", json=body if suffix == "/sinks" else {})
        assert response.status_code == 404, (method, suffix)
        assert response.json == not_found, (method, suffix)


def test_path_id_too_long_is_400(api: Api) -> None:
    response = api.get(f"{BASE}/{'a' * 49}")
    assert response.status_code == 400
    assert response.json == error(
        400, "invalidLength", f'Length of sourceId must be lesser or equal than 48 but got value "{"a" * 49}" (len=49)'
    )


def test_list_sources_is_sorted_by_id(api: Api) -> None:
    for name in ("b", "a", "c"):
        api.create_source(name)
    body = api.get(BASE).json
    assert body is not None
    assert [s["sourceId"] for s in body["sources"]] == ["a", "b", "c"]
    assert body["page"] == {"limit": 100, "totalCount": 3, "afterId": "", "lastId": "c"}
    assert body["projectId"] == 1 and body["branchId"] == 1
    assert body["sources"][0] == api.get(f"{BASE}/a").json


def test_pagination(api: Api) -> None:
    ids = [f"s{i:02d}" for i in range(7)]
    for source_id in ids:
        api.create_source(source_id)

    def page(**query: Any) -> dict[str, Any]:
        response = api.get(BASE, query_string=query)
        assert response.status_code == 200, response.json
        return response.json  # type: ignore[return-value]

    first = page(limit=3)
    assert [s["sourceId"] for s in first["sources"]] == ids[:3]
    assert first["page"] == {"limit": 3, "totalCount": 7, "afterId": "", "lastId": "s02"}
    second = page(limit=3, afterId="s02")
    assert [s["sourceId"] for s in second["sources"]] == ids[3:6]
    assert second["page"] == {"limit": 3, "totalCount": 7, "afterId": "s02", "lastId": "s05"}
    third = page(limit=3, afterId="s05")
    assert [s["sourceId"] for s in third["sources"]] == ids[6:]
    assert third["page"] == {"limit": 3, "totalCount": 7, "afterId": "s05", "lastId": "s06"}
    empty = page(limit=3, afterId="s06")
    assert empty["sources"] == []
    assert empty["page"] == {"limit": 3, "totalCount": 7, "afterId": "s06", "lastId": ""}
    # afterId need not exist; it is a position in the order of ids.
    assert [s["sourceId"] for s in page(afterId="s035")["sources"]] == ids[4:]
    assert [s["sourceId"] for s in page(afterId="")["sources"]] == ids
    assert page(limit=1)["page"]["lastId"] == "s00"
    assert len(page(limit=100)["sources"]) == 7
    assert page(limit="")["page"]["limit"] == 100


@pytest.mark.parametrize(
    ("limit", "name", "message"),
    [
        ("0", "invalidRange", "Limit must be greater or equal than 1 but got value 0."),
        ("101", "invalidRange", "Limit must be lesser or equal than 100 but got value 101."),
        ("-1", "invalidRange", "Limit must be greater or equal than 1 but got value -1."),
        # Keboola's validators read what is not an integer as 0, then check the range too.
        (
            "abc",
            "invalidFieldType",
            'Invalid value "abc" for "limit", must be a integer; '
            "limit must be greater or equal than 1 but got value 0.",
        ),
        (
            "1.5",
            "invalidFieldType",
            'Invalid value "1.5" for "limit", must be a integer; '
            "limit must be greater or equal than 1 but got value 0.",
        ),
    ],
)
def test_invalid_limit(api: Api, limit: str, name: str, message: str) -> None:
    for path in (BASE, f"{BASE}/deleted", "/v1/branches/default/aggregation/sources"):
        response = api.get(path, query_string={"limit": limit})
        assert response.status_code == 400
        assert response.json == error(400, name, message)


def test_update_source(api: Api, source: dict[str, Any]) -> None:
    task = api.run("PATCH", f"{BASE}/my-source", json={"name": "Renamed", "description": "new"})
    assert task["type"] == "api.update.source" and task["result"] == "Source has been updated successfully."
    body = api.get(f"{BASE}/my-source").json
    assert body is not None
    version = body["version"]
    assert version["number"] == 2
    assert version["description"] == "Updated."
    assert version["hash"] != source["version"]["hash"]
    assert body == {**source, "name": "Renamed", "description": "new", "version": version}
    # A change description becomes the version's description.
    api.run("PATCH", f"{BASE}/my-source", json={"description": "newer", "changeDescription": "Because."})
    assert api.get(f"{BASE}/my-source").json["version"]["description"] == "Because."  # type: ignore[index]


def test_update_without_change_is_a_version_too(api: Api, source: dict[str, Any]) -> None:
    """As in Keboola, every update is a new version, even one that changes nothing."""
    api.run("PATCH", f"{BASE}/my-source", json={"name": "My Source"})
    api.run("PATCH", f"{BASE}/my-source", json={"changeDescription": "Nothing."})
    body = api.get(f"{BASE}/my-source").json
    assert body is not None
    version = body["version"]
    assert version["number"] == 3 and version["description"] == "Nothing."
    # The state did not change, so neither did its hash.
    assert version["hash"] == source["version"]["hash"]
    assert body == {**source, "version": version}


@pytest.mark.parametrize(
    ("body", "name", "message"),
    [
        ({"name": ""}, "invalidLength", 'Length of body.name must be greater or equal than 1 but got value "" (len=0)'),
        ({"description": 1}, "invalidFieldType", 'Invalid value 1 for "body.description", must be a string.'),
        ({"type": "x"}, "invalidEnumValue", 'Value of body.type must be one of "http", "otlp" but got value "x".'),
        (
            {"changeDescription": []},
            "invalidFieldType",
            'Invalid value [] for "body.changeDescription", must be a string.',
        ),
    ],
)
def test_update_source_validation(
    api: Api, source: dict[str, Any], body: dict[str, Any], name: str, message: str
) -> None:
    response = api.patch(f"{BASE}/my-source", json=body)
    assert response.status_code == 400
    assert response.json == error(400, name, message)


def test_disable_and_enable_source(api: Api, source: dict[str, Any]) -> None:
    task = api.run("PUT", f"{BASE}/my-source/disable")
    assert task["type"] == "api.disable.source" and task["result"] == "Source has been disabled successfully."
    body = api.get(f"{BASE}/my-source").json
    assert body is not None
    disabled = body["disabled"]
    assert disabled == {"at": disabled["at"], "by": ADMIN_BY, "reason": "API"}
    assert body["version"]["number"] == 2 and body["version"]["description"] == "Disabled."
    # Disabling again changes nothing.
    api.run("PUT", f"{BASE}/my-source/disable")
    assert api.get(f"{BASE}/my-source").json == body
    task = api.run("PUT", f"{BASE}/my-source/enable")
    assert task["result"] == "Source has been enabled successfully."
    body = api.get(f"{BASE}/my-source").json
    assert body is not None
    assert "disabled" not in body
    assert body["version"]["number"] == 3 and body["version"]["description"] == "Enabled."
    # The hash covers the state: enabled again is the same state as version 1.
    assert body["version"]["hash"] == source["version"]["hash"]


def test_rotate_secret(api: Api, source: dict[str, Any]) -> None:
    revision = api.services.catalog.revision()
    response = api.post(f"{BASE}/my-source/rotate-secret")
    assert response.status_code == 200
    body = response.json
    assert body is not None
    old_url, new_url = source["http"]["url"], body["http"]["url"]
    assert new_url != old_url
    assert new_url.rsplit("/", 1)[0] == old_url.rsplit("/", 1)[0]
    assert SECRET.match(new_url.rsplit("/", 1)[1])
    assert body == {**source, "http": {"url": new_url}}
    assert api.get(f"{BASE}/my-source").json == body
    assert api.services.catalog.revision() == revision + 1
    ingest = api.services.catalog.get_source_for_ingest(1, "my-source")
    assert ingest is not None and ingest.secret == new_url.rsplit("/", 1)[1]


def test_otlp_source_has_an_otlp_block_and_rotates_its_secret(api: Api) -> None:
    api.run("POST", BASE, json={"sourceId": "telemetry", "name": "Telemetry", "type": "otlp"})
    body = api.get(f"{BASE}/telemetry").json
    assert body is not None
    assert body["type"] == "otlp" and "http" not in body
    secret = body["otlp"]["secret"]
    assert SECRET.match(secret)
    base = "http://127.0.0.1:8000/otlp/1/telemetry"
    assert body["otlp"] == {"url": f"{base}/{secret}", "baseUrl": base, "secret": secret}
    rotated = api.post(f"{BASE}/telemetry/rotate-secret").json
    assert rotated is not None
    new_secret = rotated["otlp"]["secret"]
    assert new_secret != secret and rotated["otlp"] == {
        "url": f"{base}/{new_secret}",
        "baseUrl": base,
        "secret": new_secret,
    }
    ingest = api.services.catalog.get_source_for_ingest(1, "telemetry")
    assert ingest is not None and (ingest.type, ingest.secret) == ("otlp", new_secret)


def test_delete_and_undelete_source(api: Api, source: dict[str, Any]) -> None:
    task = api.run("DELETE", f"{BASE}/my-source")
    assert task["type"] == "api.delete.source" and task["result"] == "Source has been deleted successfully."
    response = api.get(f"{BASE}/my-source")
    assert response.status_code == 404
    assert response.json == error(404, "sourceNotFound", 'Source "my-source" not found in the branch.')
    assert api.get(BASE).json["sources"] == []  # type: ignore[index]
    deleted = api.get(f"{BASE}/deleted").json
    assert deleted is not None
    item = deleted["sources"][0]
    assert item == {**source, "deleted": {"at": item["deleted"]["at"], "by": ADMIN_BY}}
    assert deleted["page"] == {"limit": 100, "totalCount": 1, "afterId": "", "lastId": "my-source"}
    # Delete twice: it is gone.
    assert api.delete(f"{BASE}/my-source").status_code == 404
    # Undelete brings it back as it was, in a new version (Keboola's sequence).
    task = api.run("PUT", f"{BASE}/my-source/undelete")
    assert task["type"] == "api.undelete.source"
    assert task["result"] == "Source has been undeleted successfully."
    body = api.get(f"{BASE}/my-source").json
    assert body is not None
    version = body["version"]
    assert version == {
        "number": 2,
        "hash": source["version"]["hash"],
        "description": 'Undeleted to version "1".',
        "at": version["at"],
        "by": ADMIN_BY,
    }
    assert body == {**source, "version": version}
    assert api.get(f"{BASE}/deleted").json["sources"] == []  # type: ignore[index]
    # Only a deleted source can be undeleted.
    response = api.put(f"{BASE}/my-source/undelete")
    assert response.status_code == 404
    assert response.json == error(404, "deletedSourceNotFound", 'Deleted source "my-source" not found in the branch.')
    response = api.put(f"{BASE}/nope/undelete")
    assert response.json == error(404, "deletedSourceNotFound", 'Deleted source "nope" not found in the branch.')


def test_recreate_deleted_source_continues_versions(api: Api, source: dict[str, Any]) -> None:
    api.run("DELETE", f"{BASE}/my-source")
    recreated = api.create_source("My Source", description="again")
    assert recreated["version"]["number"] == 2
    assert recreated["http"]["url"] != source["http"]["url"]
    assert "deleted" not in recreated
    versions = api.get(f"{BASE}/my-source/versions").json
    assert [v["number"] for v in versions["versions"]] == [1, 2]  # type: ignore[index]


def test_cascade_delete_purges_source_and_sinks(api: Api, source: dict[str, Any]) -> None:
    api.create_sink("my-source")
    api.run("DELETE", f"{BASE}/my-source", query_string={"cascade": "true"})
    assert api.get(f"{BASE}/deleted").json["sources"] == []  # type: ignore[index]
    assert api.put(f"{BASE}/my-source/undelete").status_code == 404
    recreated = api.create_source()
    assert recreated["version"]["number"] == 1
    assert api.get(f"{BASE}/my-source/sinks/deleted").json["sinks"] == []  # type: ignore[index]


def test_invalid_cascade_is_400(api: Api, source: dict[str, Any]) -> None:
    response = api.delete(f"{BASE}/my-source", query_string={"cascade": "maybe"})
    assert response.status_code == 400
    assert response.json == error(400, "badRequest", '"query.cascade" must be a boolean, found "maybe".')
    api.run("DELETE", f"{BASE}/my-source", query_string={"cascade": ""})
    assert len(api.get(f"{BASE}/deleted").json["sources"]) == 1  # type: ignore[index]


def test_source_limit_per_branch(api: Api) -> None:
    tasks = [api.post(BASE, json={"name": f"s{i:03d}", "type": "http"}).json for i in range(100)]
    for task in tasks:
        assert api.wait_task(task)["status"] == "success"  # type: ignore[arg-type]
    assert api.services.catalog.count_sources(1) == 100
    response = api.post(BASE, json={"name": "one too many", "type": "http"})
    assert response.status_code == 422
    assert response.json == error(422, "resourceLimitReached", "Maximum number of sources per branch is 100.")
    # A deleted source frees a place, and cannot be undeleted while the branch is full.
    api.run("DELETE", f"{BASE}/s000")
    api.create_source("s100")
    response = api.put(f"{BASE}/s000/undelete")
    assert response.status_code == 422
    assert response.json == error(422, "resourceLimitReached", "Maximum number of sources per branch is 100.")
