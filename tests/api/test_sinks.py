"""Sinks: create, read, list, update, delete/undelete (also with their source), enable/disable, columns and limits."""

from __future__ import annotations

from typing import Any

import pytest
from apitest import ADMIN_BY, BASE, HASH, TIME, Api, error

from pushstream.catalog.models import Task, now

SINKS = f"{BASE}/my-source/sinks"
COLUMNS = [
    {"type": "uuid", "name": "id", "primaryKey": True},
    {"type": "datetime", "name": "at"},
    {"type": "ip", "name": "ip"},
    {"type": "headers", "name": "headers"},
    {"type": "body", "name": "body"},
    {"type": "path", "name": "user", "path": "user.id", "defaultValue": "none", "rawString": True},
]
TABLE = {"type": "keboola", "tableId": "in.c-github.events", "mapping": {"columns": COLUMNS}}


def _create(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"name": "Events", "type": "table", "table": TABLE, **fields}
    return api.run("POST", SINKS, json=body)


def test_create_sink(api: Api, source: dict[str, Any]) -> None:
    task = _create(api, description="All events", allowedSignals=["logs"])
    assert task["type"] == "api.create.sink"
    assert task["taskId"].startswith("api.create.sink/1/my-source/events/")
    assert task["result"] == "Sink has been created successfully."
    assert task["outputs"] == {
        "url": "http://127.0.0.1:8000/v1/branches/1/sources/my-source/sinks/events",
        "projectId": 1,
        "branchId": 1,
        "sourceId": "my-source",
        "sinkId": "events",
    }
    response = api.get(f"{SINKS}/events")
    assert response.status_code == 200
    body = response.json
    assert body is not None
    version = body["version"]
    assert HASH.match(version["hash"]) and TIME.match(version["at"])
    assert body == {
        "projectId": 1,
        "branchId": 1,
        "sourceId": "my-source",
        "sinkId": "events",
        "type": "table",
        "name": "Events",
        "description": "All events",
        "allowedSignals": ["logs"],
        "table": TABLE,
        "version": {
            "number": 1,
            "hash": version["hash"],
            "description": "New sink.",
            "at": version["at"],
            "by": ADMIN_BY,
        },
        "created": {"at": version["at"], "by": ADMIN_BY},
    }


def test_columns_are_stored_in_canonical_form(api: Api, source: dict[str, Any]) -> None:
    columns = [
        {"name": "b", "extra": 1, "type": "body"},
        {"rawString": False, "path": "a", "name": "p", "type": "path"},
    ]
    _create(api, table={**TABLE, "mapping": {"columns": columns}})
    assert api.get(f"{SINKS}/events").json["table"]["mapping"]["columns"] == [  # type: ignore[index]
        {"type": "body", "name": "b"},
        {"type": "path", "name": "p", "path": "a", "rawString": False},
    ]


def test_sink_id_and_duplicates(api: Api, source: dict[str, Any]) -> None:
    _create(api, name="Zdroj Událostí")
    assert api.get(f"{SINKS}/zdroj-udalosti").status_code == 200
    response = api.post(SINKS, json={"name": "x", "sinkId": "Zdroj události", "type": "table", "table": TABLE})
    assert response.status_code == 409
    assert response.json == error(409, "sinkAlreadyExists", 'Sink "zdroj-udalosti" already exists in the source.')
    # The same sink id may exist in another source.
    api.create_source("Other")
    api.run("POST", f"{BASE}/other/sinks", json={"name": "Zdroj Událostí", "type": "table", "table": TABLE})


def _bad_table(**changes: Any) -> dict[str, Any]:
    return {**TABLE, **changes}


def _bad_columns(*columns: Any) -> dict[str, Any]:
    return {**TABLE, "mapping": {"columns": list(columns)}}


@pytest.mark.parametrize(
    ("body", "name", "message"),
    [
        ({"name": "x", "type": "table"}, "missingField", '"table" is missing from body.'),
        ({"type": "table", "table": TABLE}, "missingField", '"name" is missing from body.'),
        ({"name": "x", "table": TABLE}, "missingField", '"type" is missing from body.'),
        (
            {"name": "x", "type": "file", "table": TABLE},
            "invalidEnumValue",
            'Value of body.type must be one of "table" but got value "file".',
        ),
        # The type is checked before a missing table (Keboola's order).
        (
            {"name": "x", "type": "foo"},
            "invalidEnumValue",
            'Value of body.type must be one of "table" but got value "foo".',
        ),
        (
            {"name": "x", "type": "table", "table": []},
            "invalidFieldType",
            'Invalid value [] for "body.table", must be a object.',
        ),
        (
            {"name": "x", "type": "table", "table": {"tableId": "in.c-a.b", "mapping": {"columns": COLUMNS}}},
            "missingField",
            '"type" is missing from body.table.',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_table(type="snowflake")},
            "invalidEnumValue",
            'Value of body.table.type must be one of "keboola" but got value "snowflake".',
        ),
        (
            {"name": "x", "type": "table", "table": {"type": "keboola", "mapping": {"columns": COLUMNS}}},
            "missingField",
            '"tableId" is missing from body.table.',
        ),
        # The table id must match in full: a trailing newline is not a table id.
        (
            {"name": "x", "type": "table", "table": _bad_table(tableId="in.c-x.y\n")},
            "badRequest",
            '"body.table.tableId" must look like "in.c-bucket.table" (stage "in" or "out", bucket with the "c-" '
            'prefix, letters, digits, "_" and "-"), found "in.c-x.y\n".',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_table(tableId="bucket.table")},
            "badRequest",
            '"body.table.tableId" must look like "in.c-bucket.table" (stage "in" or "out", bucket with the "c-" '
            'prefix, letters, digits, "_" and "-"), found "bucket.table".',
        ),
        (
            {"name": "x", "type": "table", "table": {"type": "keboola", "tableId": "in.c-a.b"}},
            "missingField",
            '"mapping" is missing from body.table.',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_table(mapping={})},
            "missingField",
            '"columns" is missing from body.table.mapping.',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns()},
            "badRequest",
            '"body.table.mapping.columns" must contain at least one column.',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "body"})},
            "missingField",
            '"name" is missing from body.table.mapping.columns[0].',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "foo", "name": "a"})},
            "invalidEnumValue",
            'Value of body.table.mapping.columns[0].type must be one of "uuid", "id", "datetime", "ip", "body", '
            '"headers", "path", "template" but got value "foo".',
        ),
        # Names the targets cannot hold are refused at once, not by a failing task later.
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "body", "name": "a\u0000b"})},
            "badRequest",
            'Column name "a\\u0000b" contains a control character.',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "body", "name": "a\tb"})},
            "badRequest",
            'Column name "a\\tb" contains a control character.',
        ),
        (
            {
                "name": "x",
                "type": "table",
                "table": _bad_columns({"type": "body", "name": "a"}, {"type": "ip", "name": "A"}),
            },
            "badRequest",
            'Columns "a" and "A" differ only in case; column names are case-insensitive.',
        ),
        (
            {
                "name": "x",
                "type": "table",
                "table": _bad_columns({"type": "body", "name": "a"}, {"type": "ip", "name": "a"}),
            },
            "badRequest",
            'Invalid column "a": duplicate column name "a".',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "path", "name": "p"})},
            "badRequest",
            'Invalid column "p": a "path" column needs "path".',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "body", "name": "b", "path": "x"})},
            "badRequest",
            'Invalid column "b": "path" is not allowed for a column of type "body".',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "body", "name": "b", "primaryKey": "yes"})},
            "invalidFieldType",
            'Invalid value "yes" for "body.table.mapping.columns[0].primaryKey", must be a boolean.',
        ),
        (
            {"name": "x", "type": "table", "table": _bad_columns({"type": "body", "name": "n" * 65})},
            "invalidLength",
            f'Length of body.table.mapping.columns[0].name must be lesser or equal than 64 but got value "{"n" * 65}" '
            "(len=65)",
        ),
        (
            {
                "name": "x",
                "type": "table",
                "table": _bad_columns(
                    {"type": "template", "name": "t", "template": {"language": "lua", "content": "x"}}
                ),
            },
            "invalidEnumValue",
            'Value of body.table.mapping.columns[0].template.language must be one of "jsonnet" but got value "lua".',
        ),
        (
            {
                "name": "x",
                "type": "table",
                "table": _bad_columns(
                    {"type": "template", "name": "t", "template": {"language": "jsonnet", "content": ""}}
                ),
            },
            "invalidLength",
            'Length of body.table.mapping.columns[0].template.content must be greater or equal than 1 but got value "" '
            "(len=0)",
        ),
        (
            {"name": "x", "type": "table", "table": TABLE, "allowedSignals": ["spans"]},
            "invalidEnumValue",
            'Value of body.allowedSignals[0] must be one of "logs", "metrics", "traces" but got value "spans".',
        ),
        (
            {"name": "x", "type": "table", "table": TABLE, "sinkId": ""},
            "invalidLength",
            'Length of body.sinkId must be greater or equal than 1 but got value "" (len=0)',
        ),
    ],
)
def test_create_sink_validation(
    api: Api, source: dict[str, Any], body: dict[str, Any], name: str, message: str
) -> None:
    response = api.post(SINKS, json=body)
    assert response.status_code == 400
    assert response.json == error(400, name, message)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (
            "1 +",
            "badRequest",
            'Column "t" template is invalid: syntax error at line 1, column 4: unexpected end of file.',
        ),
        ("nope()", "badRequest", 'Column "t" template is invalid: error at line 1, column 1: undefined local: nope.'),
        (
            "x" * 4097,
            "invalidLength",
            f"Length of body.table.mapping.columns[0].template.content must be lesser or equal than 4096 but got value "
            f'"{"x" * 4097}" (len=4097)',
        ),
    ],
)
def test_invalid_template_is_rejected(api: Api, source: dict[str, Any], content: str, name: str, message: str) -> None:
    table = _bad_columns({"type": "template", "name": "t", "template": {"language": "jsonnet", "content": content}})
    response = api.post(SINKS, json={"name": "x", "type": "table", "table": table})
    assert response.status_code == 400
    assert response.json == error(400, name, message)


def test_template_column(api: Api, source: dict[str, Any]) -> None:
    column = {"type": "template", "name": "t", "template": {"language": "jsonnet", "content": 'Body("a") + "-" + Ip()'}}
    _create(api, table=_bad_columns(column))
    assert api.get(f"{SINKS}/events").json["table"]["mapping"]["columns"] == [column]  # type: ignore[index]


def test_column_and_sink_limits(api: Api, source: dict[str, Any]) -> None:
    columns = [{"type": "body", "name": f"c{i}"} for i in range(101)]
    response = api.post(SINKS, json={"name": "wide", "type": "table", "table": _bad_columns(*columns)})
    assert response.status_code == 422
    assert response.json == error(422, "resourceLimitReached", "Maximum number of columns per sink is 100, found 101.")
    _create(api, name="wide", table={**_bad_columns(*columns[:100]), "tableId": "in.c-github.wide"})
    tasks = [api.post(SINKS, json={"name": f"k{i:03d}", "type": "table", "table": TABLE}).json for i in range(99)]
    for task in tasks:
        assert api.wait_task(task)["status"] == "success"  # type: ignore[arg-type]
    response = api.post(SINKS, json={"name": "one too many", "type": "table", "table": TABLE})
    assert response.status_code == 422
    assert response.json == error(422, "resourceLimitReached", "Maximum number of sinks per source is 100.")
    response = api.patch(f"{SINKS}/wide", json={"table": _bad_columns(*columns)})
    assert response.status_code == 422


def test_missing_sink_is_404(api: Api, source: dict[str, Any]) -> None:
    not_found = error(404, "sinkNotFound", 'Sink "nope" not found in the source.')
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("PUT", "/enable"),
        ("PUT", "/disable"),
        ("GET", "/settings"),
        ("PATCH", "/settings"),
        ("GET", "/statistics/total"),
        ("GET", "/statistics/files"),
        ("DELETE", "/statistics/clear"),
        ("GET", "/versions"),
        ("GET", "/versions/1"),
        ("PUT", "/versions/1/rollback"),
    ):
        response = api.request(method, f"{SINKS}/nope{suffix}", json={})
        assert response.status_code == 404, (method, suffix)
        assert response.json == not_found, (method, suffix)
    # Undelete looks for a deleted sink.
    response = api.put(f"{SINKS}/nope/undelete")
    assert response.status_code == 404
    assert response.json == error(404, "deletedSinkNotFound", 'Deleted sink "nope" not found in the source.')


def test_list_sinks_and_pagination(api: Api, source: dict[str, Any]) -> None:
    for name in ("c", "a", "b"):
        _create(api, name=name)
    body = api.get(SINKS).json
    assert body is not None
    assert [s["sinkId"] for s in body["sinks"]] == ["a", "b", "c"]
    assert body["page"] == {"limit": 100, "totalCount": 3, "afterId": "", "lastId": "c"}
    assert body["projectId"] == 1 and body["branchId"] == 1 and body["sourceId"] == "my-source"
    assert body["sinks"][0] == api.get(f"{SINKS}/a").json
    page = api.get(SINKS, query_string={"limit": 2, "afterId": "a"}).json
    assert page is not None
    assert [s["sinkId"] for s in page["sinks"]] == ["b", "c"]
    assert page["page"] == {"limit": 2, "totalCount": 3, "afterId": "a", "lastId": "c"}


def test_update_sink_merges_table(api: Api, source: dict[str, Any]) -> None:
    _create(api)
    before = api.get(f"{SINKS}/events").json
    assert before is not None
    task = api.run(
        "PATCH", f"{SINKS}/events", json={"table": {"tableId": "in.c-github.other"}, "changeDescription": "Move."}
    )
    assert task["type"] == "api.update.sink" and task["result"] == "Sink has been updated successfully."
    after = api.get(f"{SINKS}/events").json
    assert after is not None
    assert after["table"] == {**TABLE, "tableId": "in.c-github.other"}
    assert after["version"]["number"] == 2 and after["version"]["description"] == "Move."
    new_columns = [{"type": "body", "name": "raw"}]
    # Other columns need another table: "in.c-github.other" already has the old ones.
    mismatch = api.patch(f"{SINKS}/events", json={"table": {"mapping": {"columns": new_columns}}})
    failed = api.wait_task(mismatch.json)  # type: ignore[arg-type]
    assert failed["status"] == "error"
    assert failed["result"] == (
        'table "in.c-github.other" has columns [id, at, ip, headers, body, user], the sink needs [raw]'
    )
    api.run(
        "PATCH",
        f"{SINKS}/events",
        json={"name": "Renamed", "table": {"tableId": "in.c-github.raw", "mapping": {"columns": new_columns}}},
    )
    after = api.get(f"{SINKS}/events").json
    assert after is not None
    assert after["name"] == "Renamed"
    assert after["table"] == {"type": "keboola", "tableId": "in.c-github.raw", "mapping": {"columns": new_columns}}
    assert after["version"]["description"] == "Updated."
    assert after["created"] == before["created"]
    response = api.patch(f"{SINKS}/events", json={"table": {"mapping": {"columns": [{"type": "path", "name": "p"}]}}})
    assert response.status_code == 400
    assert response.json == error(400, "badRequest", 'Invalid column "p": a "path" column needs "path".')


def test_disable_enable_delete_undelete_sink(api: Api, source: dict[str, Any]) -> None:
    _create(api)
    created = api.get(f"{SINKS}/events").json
    assert created is not None
    api.run("PUT", f"{SINKS}/events/disable")
    body = api.get(f"{SINKS}/events").json
    assert body is not None
    assert body["disabled"]["reason"] == "API" and body["disabled"]["by"] == ADMIN_BY
    assert body["version"]["description"] == "Disabled."
    assert api.services.catalog.list_sinks(1, "my-source") == []
    assert [s.sink_id for s in api.services.catalog.list_sinks(1, "my-source", enabled_only=False)] == ["events"]
    api.run("PUT", f"{SINKS}/events/enable")
    enabled = api.get(f"{SINKS}/events").json
    assert enabled is not None and "disabled" not in enabled
    task = api.run("DELETE", f"{SINKS}/events")
    assert task["type"] == "api.delete.sink" and task["result"] == "Sink has been deleted successfully."
    assert api.get(f"{SINKS}/events").json == error(404, "sinkNotFound", 'Sink "events" not found in the source.')
    deleted = api.get(f"{SINKS}/deleted").json
    assert deleted is not None
    assert deleted["sinks"] == [{**enabled, "deleted": {"at": deleted["sinks"][0]["deleted"]["at"], "by": ADMIN_BY}}]
    assert api.get(SINKS).json["sinks"] == []  # type: ignore[index]
    task = api.run("PUT", f"{SINKS}/events/undelete")
    assert task["type"] == "api.undelete.sink"
    undeleted = api.get(f"{SINKS}/events").json
    assert undeleted is not None
    # Undelete is a new version, as Keboola counts them: created 1, disabled 2, enabled 3, undeleted 4.
    version = undeleted["version"]
    assert version == {
        "number": 4,
        "hash": enabled["version"]["hash"],
        "description": 'Undeleted to version "3".',
        "at": version["at"],
        "by": ADMIN_BY,
    }
    assert undeleted == {**enabled, "version": version}
    assert api.put(f"{SINKS}/events/undelete").json == error(
        404, "deletedSinkNotFound", 'Deleted sink "events" not found in the source.'
    )


def test_sinks_follow_their_source(api: Api, source: dict[str, Any]) -> None:
    _create(api, name="a")
    _create(api, name="b")
    api.run("DELETE", f"{SINKS}/b")
    api.run("DELETE", f"{BASE}/my-source")
    # The sinks of a deleted source are not reachable.
    gone = error(404, "sourceNotFound", 'Source "my-source" not found in the branch.')
    assert api.get(SINKS).json == gone
    assert api.get(f"{SINKS}/a").json == gone
    # A sink is not undeleted without its source.
    assert api.put(f"{SINKS}/a/undelete").json == gone
    assert api.services.catalog.list_sinks(1, "my-source", enabled_only=False) == []
    api.run("PUT", f"{BASE}/my-source/undelete")
    # Undeleting the source restores the sinks deleted with it, not the one deleted before.
    assert [s["sinkId"] for s in api.get(SINKS).json["sinks"]] == ["a"]  # type: ignore[index]
    assert [s["sinkId"] for s in api.get(f"{SINKS}/deleted").json["sinks"]] == ["b"]  # type: ignore[index]
    # The source and its sink got a version each.
    assert api.get(f"{BASE}/my-source").json["version"]["description"] == 'Undeleted to version "1".'  # type: ignore[index]
    restored = api.get(f"{SINKS}/a").json["version"]  # type: ignore[index]
    assert restored["number"] == 2 and restored["description"] == 'Undeleted to version "1".'


def test_create_sink_after_its_source_is_gone_fails_the_task(api: Api, source: dict[str, Any]) -> None:
    """The task re-checks inside its transaction: a source deleted after the synchronous
    checks fails the task, and nothing of the task's change is committed."""
    from dataclasses import replace

    from pushstream.catalog.models import By, Event, now

    runner = api.services.runner
    original = runner.start

    def delete_source_first(task_type: str, key: Any, outputs: Any, apply: Any, **options: Any) -> Any:
        def wrapped(tx: Any, task_id: str) -> Any:
            tx.put_source(replace(tx.get_source(1, "my-source"), deleted=Event(now(), By())))
            return apply(tx, task_id)

        return original(task_type, key, outputs, wrapped, **options)

    runner.start = delete_source_first  # type: ignore[method-assign]
    try:
        response = api.post(SINKS, json={"name": "x", "type": "table", "table": TABLE})
    finally:
        runner.start = original  # type: ignore[method-assign]
    task = api.wait_task(response.json)  # type: ignore[arg-type]
    assert task["status"] == "error"
    assert task["error"] == task["result"] == 'Source "my-source" not found in the branch.'
    assert api.get(f"{BASE}/my-source").json == source


def test_duplicate_sink_is_409_at_request_time(api: Api, source: dict[str, Any]) -> None:
    """An existing sink, or one whose create task still runs: a 409 at once, never a
    task that fails later (Keboola names the reserved key in the second case)."""
    _create(api)
    response = api.post(SINKS, json={"name": "Events", "type": "table", "table": TABLE})
    assert response.status_code == 409
    assert response.json == error(409, "sinkAlreadyExists", 'Sink "events" already exists in the source.')
    running = Task(
        "api.create.sink/1/my-source/other/2024-01-01T00:00:00.000Z_abcde", "api.create.sink", "processing", now()
    )
    api.services.catalog.create_task(running)
    response = api.post(SINKS, json={"name": "Other", "type": "table", "table": TABLE})
    assert response.status_code == 409
    assert response.json == error(409, "sinkAlreadyExists", 'Sink "1/1/my-source/other" already exists in the source.')
    assert [s["sinkId"] for s in api.get(SINKS).json["sinks"]] == ["events"]  # type: ignore[index]
