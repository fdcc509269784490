"""Typed sinks (issue 15, beyond Keboola): ``dataType`` and ``nullable`` of a column,
``eventTimeColumn``, ``mergeStrategy`` and ``systemColumns`` of a mapping — stored and
echoed as given, checked with exact 400s on create and update, and in the document."""

from __future__ import annotations

from typing import Any

import pytest
from apitest import BASE, Api, error

from pushstream import _core, wire
from pushstream.api.openapi import openapi3

SINKS = f"{BASE}/my-source/sinks"
TYPED_COLUMNS = [
    {"type": "path", "name": "order_id", "primaryKey": True, "path": "order.id", "dataType": "integer"},
    {"type": "path", "name": "placed_at", "path": "order.time", "dataType": "timestamp", "nullable": False},
    {"type": "path", "name": "total", "path": "order.total", "dataType": "number"},
    {"type": "path", "name": "paid", "path": "order.paid", "dataType": "boolean", "nullable": True},
    {"type": "path", "name": "day", "path": "order.day", "dataType": "date"},
    {"type": "path", "name": "items", "path": "order.items", "dataType": "json"},
    {
        "type": "template",
        "name": "note",
        "template": {"language": "jsonnet", "content": 'Body("n")'},
        "dataType": "string",
    },
    {"type": "datetime", "name": "received_at", "dataType": "timestamp"},
    {"type": "body", "name": "body"},
]
TYPED_MAPPING = {
    "columns": TYPED_COLUMNS,
    "eventTimeColumn": "placed_at",
    "mergeStrategy": "ledger",
    "systemColumns": True,
}


def _table(mapping: dict[str, Any], table_id: str = "in.c-shop.orders") -> dict[str, Any]:
    return {"type": "keboola", "tableId": table_id, "mapping": mapping}


def _create(api: Api, mapping: dict[str, Any], name: str = "Orders") -> dict[str, Any]:
    api.run("POST", SINKS, json={"name": name, "type": "table", "table": _table(mapping)})
    body: dict[str, Any] = api.get(f"{SINKS}/{name.lower()}").json  # type: ignore[assignment]
    return body


def test_typed_mapping_is_stored_and_echoed_as_given(api: Api, source: dict[str, Any]) -> None:
    # Keys in the declared order whatever the request's order; unknown keys dropped.
    shuffled = {
        "systemColumns": True,
        "mergeStrategy": "ledger",
        "extra": 1,
        "eventTimeColumn": "placed_at",
        "columns": [dict(reversed(list(c.items()))) for c in TYPED_COLUMNS],
    }
    sink = _create(api, shuffled)
    assert sink["table"] == _table(TYPED_MAPPING)
    assert list(sink["table"]["mapping"]) == ["columns", "eventTimeColumn", "mergeStrategy", "systemColumns"]
    assert [list(c) for c in sink["table"]["mapping"]["columns"]] == [list(c) for c in TYPED_COLUMNS]
    listed = api.get(SINKS).json["sinks"]  # type: ignore[index]
    assert listed[0]["table"] == _table(TYPED_MAPPING)


def test_fields_not_given_stay_out_also_after_a_resave(api: Api, source: dict[str, Any]) -> None:
    plain = {"columns": [{"type": "path", "name": "id", "path": "id"}, {"type": "body", "name": "b"}]}
    sink = _create(api, plain)
    assert sink["table"]["mapping"] == plain
    # A change of something else (a re-save) adds no default and drops nothing.
    api.run("PATCH", f"{SINKS}/orders", json={"name": "Renamed"})
    api.run("PATCH", f"{SINKS}/orders", json={"table": {"tableId": "in.c-shop.orders"}})
    assert api.get(f"{SINKS}/orders").json["table"]["mapping"] == plain  # type: ignore[index]
    # Defaults given explicitly are kept as given, through re-saves too.
    explicit = {
        "columns": [
            {"type": "path", "name": "id", "path": "id", "dataType": "string", "nullable": True},
            {"type": "body", "name": "b"},
        ],
        "mergeStrategy": "append",
        "systemColumns": False,
    }
    api.run("PATCH", f"{SINKS}/orders", json={"table": {"tableId": "in.c-shop.explicit", "mapping": explicit}})
    api.run("PATCH", f"{SINKS}/orders", json={"description": "re-saved"})
    after = api.get(f"{SINKS}/orders").json
    assert after is not None
    assert after["table"] == _table(explicit, "in.c-shop.explicit")
    # The versions keep what was given: a rollback to version 1 brings the plain mapping back.
    api.run("PUT", f"{SINKS}/orders/versions/1/rollback")
    assert api.get(f"{SINKS}/orders").json["table"]["mapping"] == plain  # type: ignore[index]


def test_update_replaces_the_mapping_and_keeps_it_when_not_given(api: Api, source: dict[str, Any]) -> None:
    _create(api, TYPED_MAPPING)
    api.run("PATCH", f"{SINKS}/orders", json={"name": "Moved", "table": {"tableId": "in.c-shop.moved"}})
    assert api.get(f"{SINKS}/orders").json["table"] == _table(TYPED_MAPPING, "in.c-shop.moved")  # type: ignore[index]
    # A new mapping replaces the old one as a whole: options not given again are gone.
    columns = [{**c, "dataType": "integer"} if c["name"] == "total" else c for c in TYPED_COLUMNS]
    new = {"columns": columns, "mergeStrategy": "snapshot"}
    api.run("PATCH", f"{SINKS}/orders", json={"table": {"tableId": "in.c-shop.snapshot", "mapping": new}})
    assert api.get(f"{SINKS}/orders").json["table"] == _table(new, "in.c-shop.snapshot")  # type: ignore[index]


@pytest.mark.parametrize(
    "mapping",
    [
        # snapshot with and without a key; append without one; upsert and ledger with one.
        {"columns": [{"type": "path", "name": "k", "path": "k", "primaryKey": True}], "mergeStrategy": "snapshot"},
        {"columns": [{"type": "body", "name": "b"}], "mergeStrategy": "snapshot"},
        {"columns": [{"type": "body", "name": "b"}], "mergeStrategy": "append"},
        {"columns": [{"type": "path", "name": "k", "path": "k", "primaryKey": True}], "mergeStrategy": "upsert"},
        {"columns": [{"type": "path", "name": "k", "path": "k", "primaryKey": True}], "mergeStrategy": "ledger"},
        # Reserved names are free without system columns.
        {"columns": [{"type": "body", "name": "_offset"}], "systemColumns": False},
        {"columns": [{"type": "body", "name": "_op"}]},
        # nullable on an untyped column is taken (it has no effect there).
        {"columns": [{"type": "path", "name": "p", "path": "p", "nullable": False}]},
    ],
)
def test_valid_combinations(api: Api, source: dict[str, Any], mapping: dict[str, Any]) -> None:
    assert _create(api, mapping)["table"]["mapping"] == mapping


def _columns(*columns: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"columns": list(columns), **options}


KEY = {"type": "path", "name": "id", "path": "id", "primaryKey": True}
TIME = {"type": "path", "name": "t", "path": "t", "dataType": "timestamp"}
DATA_TYPE_CHOICES = '"string", "integer", "number", "boolean", "timestamp", "date", "json"'
MAPPING = "body.table.mapping"

INVALID = [
    (
        _columns({"type": "path", "name": "p", "path": "p", "dataType": "float"}),
        "invalidEnumValue",
        f'Value of {MAPPING}.columns[0].dataType must be one of {DATA_TYPE_CHOICES} but got value "float".',
    ),
    (
        _columns({"type": "path", "name": "p", "path": "p", "dataType": "INTEGER"}),
        "invalidEnumValue",
        f'Value of {MAPPING}.columns[0].dataType must be one of {DATA_TYPE_CHOICES} but got value "INTEGER".',
    ),
    (
        _columns({"type": "path", "name": "p", "path": "p", "dataType": 1}),
        "invalidFieldType",
        f'Invalid value 1 for "{MAPPING}.columns[0].dataType", must be a string.',
    ),
    (
        _columns({"type": "path", "name": "p", "path": "p", "nullable": "no"}),
        "invalidFieldType",
        f'Invalid value "no" for "{MAPPING}.columns[0].nullable", must be a boolean.',
    ),
    (
        _columns(TIME, eventTimeColumn="x"),
        "badRequest",
        f'"{MAPPING}.eventTimeColumn" must name a column of dataType timestamp, found "x" (no such column).',
    ),
    (
        _columns(TIME, eventTimeColumn="T"),
        "badRequest",
        f'"{MAPPING}.eventTimeColumn" must name a column of dataType timestamp, found "T" (no such column).',
    ),
    (
        _columns({"type": "datetime", "name": "at"}, eventTimeColumn="at"),
        "badRequest",
        f'"{MAPPING}.eventTimeColumn" must name a column of dataType timestamp, found "at" of dataType string.',
    ),
    (
        _columns({"type": "path", "name": "n", "path": "n", "dataType": "integer"}, eventTimeColumn="n"),
        "badRequest",
        f'"{MAPPING}.eventTimeColumn" must name a column of dataType timestamp, found "n" of dataType integer.',
    ),
    (
        _columns(TIME, eventTimeColumn=""),
        "invalidLength",
        f'Length of {MAPPING}.eventTimeColumn must be greater or equal than 1 but got value "" (len=0)',
    ),
    (
        _columns(TIME, eventTimeColumn=["t"]),
        "invalidFieldType",
        f'Invalid value ["t"] for "{MAPPING}.eventTimeColumn", must be a string.',
    ),
    (
        _columns(KEY, mergeStrategy="merge"),
        "invalidEnumValue",
        f'Value of {MAPPING}.mergeStrategy must be one of "append", "upsert", "ledger", "snapshot" but got value '
        '"merge".',
    ),
    (
        _columns(KEY, mergeStrategy="append"),
        "badRequest",
        f'"{MAPPING}.mergeStrategy": mergeStrategy append takes no primary key, found primaryKey on column "id".',
    ),
    (
        _columns(KEY, {**KEY, "name": "id2"}, mergeStrategy="append"),
        "badRequest",
        f'"{MAPPING}.mergeStrategy": mergeStrategy append takes no primary key, found primaryKey on columns "id", '
        '"id2".',
    ),
    (
        _columns({"type": "body", "name": "b"}, mergeStrategy="upsert"),
        "badRequest",
        f'"{MAPPING}.mergeStrategy": mergeStrategy upsert needs a primary key: set primaryKey on a column.',
    ),
    (
        _columns({**KEY, "primaryKey": False}, mergeStrategy="ledger"),
        "badRequest",
        f'"{MAPPING}.mergeStrategy": mergeStrategy ledger needs a primary key: set primaryKey on a column.',
    ),
    (
        _columns({"type": "body", "name": "b"}, {"type": "uuid", "name": "_offset"}, systemColumns=True),
        "badRequest",
        f'Column name "_offset" is reserved for the system column "_offset" ("{MAPPING}.systemColumns" is true).',
    ),
    (
        _columns({"type": "body", "name": "_OP"}, systemColumns=True),
        "badRequest",
        f'Column name "_OP" is reserved for the system column "_op" ("{MAPPING}.systemColumns" is true).',
    ),
    (
        _columns({"type": "datetime", "name": "_system_time"}, systemColumns=True),
        "badRequest",
        f'Column name "_system_time" is reserved for the system column "_system_time" ("{MAPPING}.systemColumns" '
        "is true).",
    ),
    (
        _columns({"type": "body", "name": "b"}, systemColumns="yes"),
        "invalidFieldType",
        f'Invalid value "yes" for "{MAPPING}.systemColumns", must be a boolean.',
    ),
]


@pytest.mark.parametrize(("mapping", "name", "message"), INVALID)
def test_create_refuses_invalid_combinations(
    api: Api, source: dict[str, Any], mapping: dict[str, Any], name: str, message: str
) -> None:
    response = api.post(SINKS, json={"name": "x", "type": "table", "table": _table(mapping)})
    assert response.status_code == 400
    assert response.json == error(400, name, message)
    assert api.get(SINKS).json["sinks"] == []  # type: ignore[index]


@pytest.mark.parametrize(("mapping", "name", "message"), INVALID)
def test_update_refuses_invalid_combinations(
    api: Api, source: dict[str, Any], mapping: dict[str, Any], name: str, message: str
) -> None:
    before = _create(api, {"columns": [KEY, TIME]})
    response = api.patch(f"{SINKS}/orders", json={"table": {"mapping": mapping}})
    assert response.status_code == 400
    assert response.json == error(400, name, message)
    assert api.get(f"{SINKS}/orders").json == before


def test_update_checks_the_new_mapping_alone(api: Api, source: dict[str, Any]) -> None:
    # The old mapping's key does not count for the new one's strategy.
    _create(api, {"columns": [KEY], "mergeStrategy": "upsert"})
    response = api.patch(f"{SINKS}/orders", json={"table": {"mapping": {"columns": [TIME], "mergeStrategy": "ledger"}}})
    assert response.json == error(
        400,
        "badRequest",
        f'"{MAPPING}.mergeStrategy": mergeStrategy ledger needs a primary key: set primaryKey on a column.',
    )


@pytest.mark.parametrize(
    ("column", "data_type"),
    [("uuid", "integer"), ("ip", "json"), ("body", "number"), ("datetime", "date"), ("headers", "boolean")],
)
def test_data_types_a_column_type_cannot_take(api: Api, source: dict[str, Any], column: str, data_type: str) -> None:
    # The core compiles the mapping and names the column; its words are the core's.
    mapping = _columns({"type": column, "name": "c", "dataType": data_type})
    response = api.post(SINKS, json={"name": "x", "type": "table", "table": _table(mapping)})
    assert response.status_code == 400
    body = response.json
    assert body is not None and body["error"] == "stream.api.badRequest"
    assert body["message"].startswith('Invalid column "c": '), body


def test_the_document_states_the_typed_fields() -> None:
    schemas = openapi3("http://localhost")["components"]["schemas"]
    column = schemas["TableColumn"]
    assert column["properties"]["dataType"]["type"] == "string"
    assert column["properties"]["dataType"]["enum"] == list(wire.DATA_TYPES)
    assert column["properties"]["dataType"]["description"].startswith("Beyond Keboola: the type of the table column.")
    assert column["properties"]["nullable"]["type"] == "boolean"
    assert column["properties"]["nullable"]["default"] is True
    assert "dataType" not in column["required"] and "nullable" not in column["required"]
    mapping = schemas["TableMapping"]
    assert mapping["required"] == ["columns"]
    assert mapping["properties"]["eventTimeColumn"]["type"] == "string"
    assert mapping["properties"]["eventTimeColumn"]["maxLength"] == wire.MAX_COLUMN_NAME_LENGTH
    assert mapping["properties"]["mergeStrategy"]["enum"] == ["append", "upsert", "ledger", "snapshot"]
    assert mapping["properties"]["systemColumns"]["type"] == "boolean"
    assert mapping["properties"]["systemColumns"]["default"] is False
    for schema in (column["properties"]["nullable"], *mapping["properties"].values()):
        assert schema["description"], schema


def test_the_served_document_has_them(api: Api) -> None:
    document = api.get("/v1/documentation/openapi3.json").json
    assert document is not None
    mapping = document["components"]["schemas"]["TableMapping"]["properties"]
    assert list(mapping) == ["columns", "eventTimeColumn", "mergeStrategy", "systemColumns"]
    yaml_text = api.get("/v1/documentation/openapi3.yaml").get_data(as_text=True)
    assert "mergeStrategy:" in yaml_text and "- snapshot" in yaml_text


def test_the_api_declares_the_cores_data_types() -> None:
    # One declaration: the enum of the API (and its document) is the core's list, in its order.
    assert tuple(_core.DATA_TYPES) == wire.DATA_TYPES
