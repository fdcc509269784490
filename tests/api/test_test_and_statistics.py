"""The ``test`` endpoint (dry run of the mappings), statistics and the aggregation endpoint."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from apitest import BASE, Api, error
from flask import Flask

from pushstream.api.statistics import empty_level, set_statistics_provider

SRC = f"{BASE}/my-source"
SINKS = f"{SRC}/sinks"


def _columns(row: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["value"] for c in row["columns"]}


def test_test_endpoint_maps_with_every_enabled_sink(api: Api, source: dict[str, Any]) -> None:
    api.create_sink(
        "my-source",
        "Full",
        columns=[
            {"type": "datetime", "name": "at"},
            {"type": "ip", "name": "ip"},
            {"type": "headers", "name": "headers"},
            {"type": "body", "name": "body"},
            {"type": "path", "name": "user", "path": "user.id"},
            {"type": "path", "name": "name", "path": "user.name", "rawString": True},
            {"type": "path", "name": "missing", "path": "nope", "defaultValue": "n/a"},
            {"type": "uuid", "name": "id"},
        ],
    )
    api.create_sink(
        "my-source",
        "Raw",
        columns=[{"type": "body", "name": "raw"}],
        table={
            "type": "keboola",
            "tableId": "in.c-raw.events",
            "mapping": {"columns": [{"type": "body", "name": "raw"}]},
        },
    )
    api.create_sink("my-source", "Off", columns=[{"type": "body", "name": "x"}])
    api.run("PUT", f"{SINKS}/off/disable")
    body = b'{"user": {"id": 7, "name": "Jane"}}'
    response = api.post(
        f"{SRC}/test",
        data=body,
        headers={"Content-Type": "application/json", "X-Custom": "yes"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 200, response.json
    result = response.json
    assert result is not None
    assert [t["sinkId"] for t in result["tables"]] == ["full", "raw"]
    assert result["projectId"] == 1 and result["branchId"] == 1 and result["sourceId"] == "my-source"
    full, raw = result["tables"]
    assert full["tableId"] == "in.c-bucket.full" and raw["tableId"] == "in.c-raw.events"
    assert len(full["rows"]) == 1
    columns = _columns(full["rows"][0])
    assert [c["name"] for c in full["rows"][0]["columns"]] == [
        "at",
        "ip",
        "headers",
        "body",
        "user",
        "name",
        "missing",
        "id",
    ]
    assert columns["ip"] == "10.1.2.3"
    assert columns["body"] == body.decode()
    assert columns["user"] == "7" and columns["name"] == "Jane" and columns["missing"] == '"n/a"'
    headers = orjson.loads(columns["headers"])
    assert headers["Content-Type"] == "application/json" and headers["X-Custom"] == "yes"
    assert "X-Storageapi-Token" not in headers and "X-StorageApi-Token" not in headers
    assert len(columns["id"]) == 36 and columns["at"].endswith("Z")
    assert raw["rows"] == [{"columns": [{"name": "raw", "value": body.decode()}]}]


def test_test_endpoint_with_form_body(api: Api, source: dict[str, Any]) -> None:
    api.create_sink("my-source", columns=[{"type": "path", "name": "k", "path": "k"}])
    response = api.post(f"{SRC}/test", data="k[]=a&k[]=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert _columns(response.json["tables"][0]["rows"][0]) == {"k": '["a","b"]'}  # type: ignore[index]


def test_test_endpoint_with_template_columns(api: Api, source: dict[str, Any]) -> None:
    template = {"language": "jsonnet", "content": '{user: Body("user.id"), ip: Ip(), custom: Header("X-Custom")}'}
    api.create_sink(
        "my-source",
        columns=[
            {"type": "template", "name": "obj", "template": template},
            {
                "type": "template",
                "name": "raw",
                "rawString": True,
                "template": {"language": "jsonnet", "content": '"a" + "b"'},
            },
        ],
    )
    response = api.post(
        f"{SRC}/test",
        json={"user": {"id": 7}},
        headers={"X-Custom": "yes"},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert response.status_code == 200, response.json
    columns = _columns(response.json["tables"][0]["rows"][0])  # type: ignore[index]
    assert orjson.loads(columns["obj"]) == {"user": 7, "ip": "192.0.2.1", "custom": "yes"}
    assert columns["raw"] == "ab"
    missing = api.post(f"{SRC}/test", json={"user": {}}, headers={"X-Custom": "yes"})
    assert missing.status_code == 422
    body = missing.json
    assert body is not None and body["error"] == "stream.api.unprocessableContent"
    assert body["message"].startswith('Invalid value for column "obj" of sink "my-sink": ')


def test_test_endpoint_without_sinks(api: Api, source: dict[str, Any]) -> None:
    response = api.post(f"{SRC}/test", data=b"anything", content_type="text/plain")
    assert response.status_code == 200
    assert response.json == {"projectId": 1, "branchId": 1, "sourceId": "my-source", "tables": []}


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (
            b'{"other": 1}',
            "application/json",
            'Invalid value for column "user" of sink "my-sink": path "user.id" not found in the body.',
        ),
        (b'{"user": ', "application/json", 'Cannot map the body for sink "my-sink": malformed JSON body'),
        (
            b"user=1",
            "text/plain",
            'Cannot map the body for sink "my-sink": cannot parse request body:\n- unsupported content type '
            '"text/plain", supported types: application/json and application/x-www-form-urlencoded.',
        ),
    ],
)
def test_test_endpoint_mapping_errors(
    api: Api, source: dict[str, Any], data: bytes, content_type: str, message: str
) -> None:
    """Whatever keeps a sink from mapping the request is Keboola's 422 unprocessableContent."""
    api.create_sink("my-source", columns=[{"type": "path", "name": "user", "path": "user.id"}])
    response = api.post(f"{SRC}/test", data=data, content_type=content_type)
    assert response.status_code == 422
    body = response.json
    assert body is not None
    # The parser's wording after the frame belongs to the core.
    assert body["message"].startswith(message)
    assert body == error(422, "unprocessableContent", body["message"])


def test_test_endpoint_body_limit(api: Api, source: dict[str, Any]) -> None:
    api.create_sink("my-source")
    limit = 4 * 1024 * 1024
    assert api.post(f"{SRC}/test", data=b"x" * limit, content_type="text/plain").status_code == 200
    response = api.post(f"{SRC}/test", data=b"x" * (limit + 1), content_type="text/plain")
    assert response.status_code == 413
    assert response.json == error(413, "bodyTooLarge", f"The request body is too large (at most {limit} bytes).")
    response = api.post(BASE, data=b" " * (limit + 1), content_type="application/json")
    assert response.status_code == 413


def test_test_endpoint_signal_parameter(api: Api, source: dict[str, Any]) -> None:
    assert api.post(f"{SRC}/test", query_string={"signal": "logs"}).status_code == 200
    response = api.post(f"{SRC}/test", query_string={"signal": "spans"})
    assert response.status_code == 400
    assert response.json == error(
        400, "invalidEnumValue", 'Value of signal must be one of "logs", "metrics", "traces" but got value "spans".'
    )


def test_statistics_are_zero_until_a_provider_is_set(api: Api, source: dict[str, Any]) -> None:
    api.create_sink("my-source")
    total = api.get(f"{SINKS}/my-sink/statistics/total")
    assert total.status_code == 200
    assert total.json == {"total": {"recordsCount": 0, "compressedSize": 0, "uncompressedSize": 0}, "levels": {}}
    files = api.get(f"{SINKS}/my-sink/statistics/files", query_string={"failedFiles": "true"})
    assert files.status_code == 200 and files.json == {"files": []}
    bad = api.get(f"{SINKS}/my-sink/statistics/files", query_string={"failedFiles": "x"})
    assert bad.json == error(400, "badRequest", '"query.failedFiles" must be a boolean, found "x".')
    for path in (f"{SINKS}/my-sink/statistics/clear", f"{SRC}/statistics/clear"):
        response = api.delete(path)
        assert response.status_code == 200 and response.data == b""


class FakeStatistics:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def sink_totals(self, branch_id: int, source_id: str, sink_id: str) -> dict[str, Any]:
        level = {
            **empty_level(),
            "recordsCount": 3,
            "firstRecordAt": "2024-01-01T00:00:00.000Z",
            "lastRecordAt": "2024-01-01T00:00:01.000Z",
        }
        return {"total": level, "levels": {"local": level}}

    def sink_files(
        self, branch_id: int, source_id: str, sink_id: str, *, failed_only: bool, by_event_time: bool = False
    ) -> list[dict[str, Any]]:
        self.calls.append(("files", sink_id, failed_only, by_event_time))
        return [
            {
                "state": "writing",
                "openedAt": "2024-01-01T00:00:00.000Z",
                "statistics": self.sink_totals(branch_id, source_id, sink_id),
            }
        ]

    def clear_sink(self, branch_id: int, source_id: str, sink_id: str) -> None:
        self.calls.append(("clear_sink", branch_id, source_id, sink_id))

    def clear_source(self, branch_id: int, source_id: str) -> None:
        self.calls.append(("clear_source", branch_id, source_id))


def test_statistics_provider(app: Flask, api: Api, source: dict[str, Any]) -> None:
    provider = FakeStatistics()
    set_statistics_provider(app, provider)
    api.create_sink("my-source")
    total = api.get(f"{SINKS}/my-sink/statistics/total").json
    assert total == provider.sink_totals(1, "my-source", "my-sink")
    files = api.get(f"{SINKS}/my-sink/statistics/files", query_string={"failedFiles": "1"}).json
    assert files == {"files": provider.sink_files(1, "my-source", "my-sink", failed_only=True)}
    assert ("files", "my-sink", True, False) in provider.calls
    api.get(f"{SINKS}/my-sink/statistics/files", query_string={"order": "eventTime"})
    assert ("files", "my-sink", False, True) in provider.calls
    api.delete(f"{SINKS}/my-sink/statistics/clear")
    api.delete(f"{SRC}/statistics/clear")
    assert ("clear_sink", 1, "my-source", "my-sink") in provider.calls
    assert ("clear_source", 1, "my-source") in provider.calls


def test_aggregation(app: Flask, api: Api) -> None:
    empty = api.get("/v1/branches/default/aggregation/sources").json
    assert empty == {
        "projectId": 1,
        "branchId": 1,
        "page": {"limit": 100, "totalCount": 0, "afterId": "", "lastId": ""},
        "sources": [],
    }
    api.create_source("a")
    api.create_source("b")
    api.create_sink("a", "s1")
    api.create_sink("a", "s2")
    body = api.get("/v1/branches/default/aggregation/sources").json
    assert body is not None
    assert body["page"] == {"limit": 100, "totalCount": 2, "afterId": "", "lastId": "b"}
    first, second = body["sources"]
    assert {k: v for k, v in first.items() if k != "sinks"} == api.get(f"{BASE}/a").json
    assert second["sinks"] == []
    zero = {"recordsCount": 0, "compressedSize": 0, "uncompressedSize": 0}
    for sink, sink_id in zip(first["sinks"], ("s1", "s2"), strict=True):
        statistics = sink.pop("statistics")
        assert sink == api.get(f"{BASE}/a/sinks/{sink_id}").json
        assert statistics["total"] == zero and statistics["levels"] == {}
        # A new sink has one file, open for writing.
        assert [f["state"] for f in statistics["files"]] == ["writing"]
    page = api.get("/v1/branches/default/aggregation/sources", query_string={"afterId": "a", "limit": 1}).json
    assert page is not None
    assert [s["sourceId"] for s in page["sources"]] == ["b"]
    assert page["page"] == {"limit": 1, "totalCount": 2, "afterId": "a", "lastId": "b"}
    set_statistics_provider(app, FakeStatistics())
    stats = api.get("/v1/branches/default/aggregation/sources").json["sources"][0]["sinks"][0]["statistics"]  # type: ignore[index]
    assert stats["total"]["recordsCount"] == 3 and len(stats["files"]) == 1
