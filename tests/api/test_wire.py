"""The API's bodies declared once (pushstream.wire): the document, the request checks
and the store read the same declarations."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from apitest import ADMIN_BY, BASE, Api, error

from pushstream import wire
from pushstream.api.openapi import openapi3
from pushstream.catalog.models import By, Disabled, Event, Version
from statebackends import StateBackend

BY = {"type": "user", "tokenId": "1", "tokenDesc": "admin"}
VERSION = {
    "number": 2,
    "hash": "0123456789abcdef",
    "description": "Updated.",
    "at": "2024-05-06T10:20:30.123Z",
    "by": BY,
}
# Records exactly as the store wrote them before its codec was derived from the records' fields.
STORED_SOURCE = {
    "projectId": 1,
    "branchId": 1,
    "sourceId": "old",
    "type": "http",
    "name": "Old",
    "description": "",
    "secret": "s" * 48,
    "settings": {},
    "version": VERSION,
    "created": {"at": "2024-05-06T10:20:30.123Z", "by": {"type": "system"}},
    "disabled": {"at": "2024-05-06T10:20:31.000Z", "by": BY, "reason": "API"},
    "deleted": None,
}
STORED_SINK = {
    "projectId": 1,
    "branchId": 1,
    "sourceId": "old",
    "sinkId": "k",
    "type": "table",
    "name": "K",
    "description": "d",
    "table": {"type": "keboola", "tableId": "in.c-b.k", "mapping": {"columns": [{"type": "body", "name": "b"}]}},
    "allowedSignals": [],
    "settings": {},
    "version": VERSION,
    "created": {"at": "2024-05-06T10:20:30.123Z", "by": BY},
    "disabled": None,
    "deleted": None,
    "deletedWithSource": False,
}
STORED_TASK = {
    "taskId": "create.source/1/old/2024-05-06T10:20:30.123Z_abcde",
    "type": "create.source",
    "status": "success",
    "createdAt": "2024-05-06T10:20:30.123Z",
    "outputs": {"url": "u", "projectId": 1, "branchId": 1, "sourceId": "old"},
    "finishedAt": "2024-05-06T10:20:30.200Z",
    "duration": 77,
    "result": "Source has been created successfully.",
    "error": None,
}


def test_document_states_the_declared_limits() -> None:
    schemas = openapi3("http://localhost")["components"]["schemas"]
    create = schemas["CreateSourceRequestBody"]["properties"]
    assert create["name"]["maxLength"] == wire.MAX_NAME_LENGTH
    assert create["description"]["maxLength"] == wire.MAX_DESCRIPTION_LENGTH
    assert create["sourceId"]["maxLength"] == wire.MAX_ID_LENGTH
    assert create["type"]["enum"] == list(wire.SOURCE_TYPES)
    assert schemas["CreateSourceRequestBody"]["required"] == ["type", "name"]
    assert schemas["TableColumn"]["properties"]["type"]["enum"] == list(wire.COLUMN_TYPES)
    assert schemas["TableSinkCreate"]["properties"]["tableId"]["pattern"] == wire.TABLE_ID_PATTERN
    assert schemas["TableMapping"]["properties"]["columns"]["maxItems"] == wire.MAX_COLUMNS
    # The struct of the model answers under the document's name.
    assert schemas["DisabledEntity"]["required"] == ["at", "by", "reason"]
    assert schemas["Source"]["properties"]["created"] == {"$ref": "#/components/schemas/CreatedEntity"}
    assert all(wire.component_name(struct) in schemas for struct in wire.COMPONENTS)


@pytest.mark.parametrize(
    ("field", "limit"),
    [("name", wire.MAX_NAME_LENGTH), ("description", wire.MAX_DESCRIPTION_LENGTH), ("sourceId", wire.MAX_ID_LENGTH)],
)
def test_request_limits_are_the_declared_ones(api: Api, field: str, limit: int) -> None:
    body = {"type": "http", "name": "n", field: "x" * (limit + 1)}
    response = api.post(BASE, json=body)
    message = f'Length of body.{field} must be lesser or equal than {limit} but got value "{"x" * (limit + 1)}" '
    assert response.json == error(400, "invalidLength", message + f"(len={limit + 1})")
    body[field] = "x" * limit
    assert api.post(BASE, json=body).status_code == 202


def test_catalog_reads_records_of_the_previous_codec(state_backend: StateBackend) -> None:
    catalog = state_backend.catalog()
    catalog.ensure_branch(1, 1, default=True)
    catalog.close()
    state_backend.query("INSERT INTO sources VALUES (1, 'old', 1, 0, ?)", (orjson.dumps(STORED_SOURCE),))
    state_backend.query("INSERT INTO sinks VALUES (1, 'old', 'k', 0, 1, ?)", (orjson.dumps(STORED_SINK),))
    state_backend.query(
        "INSERT INTO tasks VALUES (?, 'success', 0, 'h:1', ?)", (STORED_TASK["taskId"], orjson.dumps(STORED_TASK))
    )
    catalog = state_backend.catalog()
    try:
        source = catalog.get_source(1, "old")
        assert source is not None
        by = By("user", "1", "admin")
        assert source.version == Version(2, "0123456789abcdef", "Updated.", "2024-05-06T10:20:30.123Z", by)
        assert source.created == Event("2024-05-06T10:20:30.123Z", By())
        assert source.disabled == Disabled("2024-05-06T10:20:31.000Z", by, "API")
        assert source.deleted is None and source.secret == "s" * 48
        sink = catalog.get_sink(1, "old", "k")
        assert sink is not None and sink.table == STORED_SINK["table"] and sink.allowed_signals == ()
        assert wire.to_builtins(wire.sink(sink)) == {
            key: value
            for key, value in STORED_SINK.items()
            if key not in ("allowedSignals", "settings", "deletedWithSource") and value is not None
        }
        task = catalog.get_task(STORED_TASK["taskId"])
        assert task is not None and task.type == "api.create.source" and task.duration_ms == 77
        # Written again, a record keeps the keys it had.
        with catalog.transaction() as tx:
            tx.put_sink(sink)
            tx.put_source(source)
        ((sink_data,),) = state_backend.query("SELECT data FROM sinks")
        ((source_data,),) = state_backend.query("SELECT data FROM sources")
        assert orjson.loads(sink_data) == STORED_SINK
        assert orjson.loads(source_data) == STORED_SOURCE
    finally:
        catalog.close()


def test_answers_leave_out_what_is_not_set(api: Api, source: dict[str, Any]) -> None:
    assert list(source) == [
        "projectId",
        "branchId",
        "sourceId",
        "type",
        "name",
        "description",
        "http",
        "version",
        "created",
    ]
    assert source["created"]["by"] == ADMIN_BY
    system = api.services.catalog.get_source(1, "my-source")
    assert system is not None and wire.to_builtins(system.created.by) == ADMIN_BY
    sink = api.create_sink("my-source")
    assert "allowedSignals" not in sink and "disabled" not in sink and "deleted" not in sink
    assert wire.to_builtins(By()) == {"type": "system"}
