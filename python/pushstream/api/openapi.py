"""The OpenAPI 3.0 document of the Stream API, built from this one Python source.

It is served as ``/v1/documentation/openapi3.json`` and ``openapi3.yaml``, and
converted to Swagger 2.0 for ``openapi.json`` and ``openapi.yaml`` (the same
four files Keboola's Stream API serves). ``python -m pushstream.api.openapi``
prints the JSON.
"""

from __future__ import annotations

import copy
import inspect
import sys
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import msgspec.inspect as mi
import orjson
import yaml

from pushstream import wire
from pushstream.api.operator import MAX_WAIT as MAX_FLUSH_WAIT
from pushstream.catalog.settings import SETTINGS

JSON = "application/json"
Schema = dict[str, Any]

DESCRIPTION = """\
Configuration service of **pushstream**, a self-hosted data streams server.

A **source** is an HTTP endpoint that receives events (its URL, with a secret, is in
`http.url`), or, of type `otlp`, an OpenTelemetry endpoint (OTLP/HTTP, protobuf or
JSON, optionally gzip) that receives logs, metrics and traces:
`POST {otlp.url}/v1/logs|metrics|traces`, or `POST {otlp.baseUrl}/v1/logs|metrics|traces`
with `Authorization: Bearer {otlp.secret}`; each log record, metric data point and
span is one event, and a sink may take only some signals (`allowedSignals`). Each
source has up to 100 **sinks**; a sink maps every event into one
row of a destination table (`table.mapping.columns`). Rows are written durably to
local disk, then imported into the table in batches when the import conditions
(**settings**) are met.

The API is wire-compatible with Keboola's Stream API: the same paths, field names,
status codes and error names. Every call under `/v1/branches` and `/v1/tasks`
needs an API token in the `X-StorageApi-Token` header; tokens with the `guest`
role may only read.

Calls that change the configuration answer `202 Accepted` with a **task**; poll
`GET /v1/tasks/{taskId}` until `isFinished` is true. When a task succeeded, the
change is already in effect for newly received events.

Errors are JSON objects `{"statusCode", "error", "message"}`; server errors add an
`exceptionId` to look up in the server log.
"""


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


# Ids are kebab-case; "deleted" names the lists of deleted entities.
ID_PATTERN = "^(?!deleted$)[a-z0-9]+(-[a-z0-9]+)*$"


def _describe(schema: Schema, extra_json_schema: dict[str, Any] | None) -> Schema:
    """``schema`` with the JSON Schema keywords of a field's ``Meta``; ``examples`` become
    OpenAPI 3.0's single ``example``."""
    for key, value in (extra_json_schema or {}).items():
        if key == "examples":
            schema["example"] = value[0]
        else:
            schema[key] = value
    return schema


def _limits(schema: Schema, **limits: Any) -> Schema:
    schema.update({key: value for key, value in limits.items() if value is not None})
    return schema


def _schema(info: mi.Type) -> Schema:
    """The OpenAPI 3.0 schema of a field type of :mod:`pushstream.wire`."""
    if isinstance(info, mi.Metadata):
        component = (info.extra or {}).get("component")
        inner = ref(component) if component else _schema(info.type)
        if "$ref" in inner and info.extra_json_schema:
            # OpenAPI 3.0 ignores siblings of $ref other than a description for readers.
            return {**inner, "description": info.extra_json_schema.get("description", "")}
        return _describe(inner, info.extra_json_schema)
    if isinstance(info, mi.StructType):
        return ref(wire.component_name(info.cls))
    if isinstance(info, mi.StrType):
        return _limits({"type": "string"}, minLength=info.min_length, maxLength=info.max_length, pattern=info.pattern)
    if isinstance(info, mi.LiteralType):
        return {"type": "string", "enum": list(wire.enum_values(info.values))}
    if isinstance(info, mi.BoolType):
        return {"type": "boolean"}
    if isinstance(info, mi.IntType):
        return _limits({"type": "integer"}, minimum=info.ge, maximum=info.le)
    if isinstance(info, mi.ListType | mi.VarTupleType):
        items = _schema(info.item_type)
        return _limits({"type": "array", "items": items}, minItems=info.min_length, maxItems=info.max_length)
    if isinstance(info, mi.AnyType):
        return {}
    raise TypeError(f"no OpenAPI schema for {info!r}")


def _component(struct: type[Any]) -> Schema:
    """The schema of a body: its fields (by their wire names), the fields always present, its docstring."""
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    always = getattr(struct, "always", ())
    properties: dict[str, Schema] = {}
    required = []
    for field in info.fields:
        properties[field.encode_name] = _schema(field.type)
        if field.required or field.name in always:
            required.append(field.encode_name)
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if struct.__doc__:
        out["description"] = " ".join(inspect.cleandoc(struct.__doc__).split())
    return out


def _schemas() -> dict[str, Schema]:
    schemas = {wire.component_name(struct): _component(struct) for struct in wire.COMPONENTS}
    # Only keys an API call may change are offered; the others answer 400 or 403.
    schemas["SettingPatch"]["properties"]["key"]["enum"] = [s.key for s in SETTINGS if not s.protected]
    schemas["SinkFiles"] = _schema(mi.type_info(wire.SinkFiles))
    # The aggregation endpoint extends Source and Sink.
    schemas["AggregatedSink"] = {
        "allOf": [
            ref("Sink"),
            {"type": "object", "properties": {"statistics": ref("AggregatedStatistics")}, "required": ["statistics"]},
        ],
        "description": "A sink with its statistics.",
    }
    schemas["AggregatedSource"] = {
        "allOf": [
            ref("Source"),
            {
                "type": "object",
                "properties": {"sinks": {"type": "array", "items": ref("AggregatedSink")}},
                "required": ["sinks"],
            },
        ],
        "description": "A source with its sinks.",
    }
    return schemas


# Parameters.

BRANCH = {
    "name": "branchId",
    "in": "path",
    "required": True,
    "description": 'Id of the branch, or "default".',
    "schema": {"type": "string", "pattern": "^(default|[0-9]{1,18})$", "example": "default"},
}
SOURCE = {
    "name": "sourceId",
    "in": "path",
    "required": True,
    "description": "Id of the source.",
    "schema": {**_schema(mi.type_info(wire.EntityId)), "pattern": ID_PATTERN, "example": "github-events"},
}
FLUSH_WAIT = {
    "name": "wait",
    "in": "query",
    "description": f"Seconds to wait for the imports (0–{MAX_FLUSH_WAIT:g}); 0 answers at once.",
    "schema": {"type": "number", "minimum": 0, "maximum": MAX_FLUSH_WAIT, "default": 0},
}
SINK = {
    "name": "sinkId",
    "in": "path",
    "required": True,
    "description": "Id of the sink.",
    "schema": {**_schema(mi.type_info(wire.EntityId)), "pattern": ID_PATTERN, "example": "pull-requests"},
}
VERSION = {
    "name": "versionNumber",
    "in": "path",
    "required": True,
    "description": "Version number, counted from 1.",
    "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 999_999_999_999_999_999, "example": 1},
}
PAGING = [
    {
        "name": "afterId",
        "in": "query",
        "description": "Return records after this id (the `lastId` of the previous page).",
        "allowEmptyValue": True,
        "schema": {"type": "string", "default": ""},
    },
    {
        "name": "limit",
        "in": "query",
        "description": "Maximum number of records returned.",
        "allowEmptyValue": True,
        "schema": {
            "type": "integer",
            "format": "int64",
            "minimum": 1,
            "maximum": wire.MAX_PAGE_LIMIT,
            "default": wire.MAX_PAGE_LIMIT,
        },
    },
]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref("GenericError")}}}


def _ok(schema: str, description: str = "OK.", status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": ref(schema)}}}}


TASK_202 = _ok("Task", "Accepted: the change runs as a task.", "202")


def _op(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str = "configuration",
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    write: bool = False,
    errors: dict[str, str] | None = None,
    description: str = "",
) -> dict[str, Any]:
    all_errors = {
        "400": "`stream.api.missingField`: the `X-StorageApi-Token` header or a required field is missing; "
        "`stream.api.invalidLength`, `stream.api.invalidEnumValue`, `stream.api.invalidFieldType`, "
        "`stream.api.invalidRange`: a field or parameter out of its bounds; `stream.api.badRequest`: other invalid "
        "input.",
        "401": "`stream.api.unauthorized`: the token is not valid.",
    }
    if write:
        all_errors["403"] = "`stream.api.forbidden`: the token may only read."
    all_errors["404"] = "`stream.api.branchNotFound`: the branch does not exist."
    all_errors.update(errors or {})
    op: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "operationId": operation_id,
        "parameters": params or [],
        "responses": {**responses, **{code: _error(text) for code, text in sorted(all_errors.items())}},
        "security": [{"storage-api-token": []}],
    }
    if description:
        op["description"] = description
    if body:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
        op["responses"]["413"] = _error("`stream.api.bodyTooLarge`: the body is larger than 4 MiB.")
    return op


def _paths() -> dict[str, Any]:
    src = "/v1/branches/{branchId}/sources/{sourceId}"
    snk = src + "/sinks/{sinkId}"
    nodes = _op(
        "ListNodes",
        "List the nodes of the installation",
        _ok("NodesResult"),
        tag="operator",
        description="Beyond Keboola: every node that serves this installation (one, or the nodes of a cluster on a "
        "shared control plane), live ones first: its heartbeat, whether it coordinates the imports, and the config "
        "revision its receivers follow.",
    )
    del nodes["responses"]["404"]  # no branch in the path
    not_source = {"404": "`stream.api.sourceNotFound` or `stream.api.branchNotFound`."}
    not_sink = {"404": "`stream.api.sinkNotFound`, `stream.api.sourceNotFound` or `stream.api.branchNotFound`."}
    not_version = {
        "404": "`stream.api.sourceVersionNotFound` or `stream.api.sinkVersionNotFound`, or the entity or branch "
        "was not found."
    }
    limit_sources = "`stream.api.resourceLimitReached`: at most 100 sources per branch."
    limit_sinks = "`stream.api.resourceLimitReached`: at most 100 sinks per source (or 100 columns per sink)."
    s_params = [BRANCH, SOURCE]
    k_params = [BRANCH, SOURCE, SINK]

    def doc(operation_id: str, summary: str, content_type: str) -> dict[str, Any]:
        return {
            "get": {
                "tags": ["documentation"],
                "summary": summary,
                "operationId": operation_id,
                "responses": {"200": {"description": "The document.", "content": {content_type: {"schema": {}}}}},
            }
        }

    return {
        "/": {
            "get": {
                "tags": ["documentation"],
                "summary": "Redirect to /v1",
                "operationId": "ApiRootIndex",
                "responses": {
                    "301": {
                        "description": "Moved permanently to `/v1`.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/health-check": {
            "get": {
                "tags": ["documentation"],
                "summary": "Health check",
                "operationId": "HealthCheck",
                "responses": {
                    "200": {
                        "description": "The service works.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "503": _error("The configuration store cannot be read."),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["documentation"],
                "summary": "Prometheus metrics",
                "description": "Beyond Keboola: the server's metrics in the Prometheus text format (see "
                "docs/operations.md). Open unless the server runs with `--metrics-token`; then it needs "
                "`Authorization: Bearer <metrics token>` (not an API token).",
                "operationId": "Metrics",
                "responses": {
                    "200": {
                        "description": "The metrics of every process of the server.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _error("`stream.api.unauthorized`: the server wants a metrics token and got another."),
                },
            }
        },
        "/v1": {
            "get": {
                "tags": ["documentation"],
                "summary": "Name of the API and link to the documentation",
                "operationId": "ApiVersionIndex",
                "responses": _ok("ServiceDetail"),
            }
        },
        "/v1/documentation": doc("Documentation", "Documentation page (Swagger UI)", "text/html"),
        "/v1/documentation/openapi.json": doc("OpenapiJson", "Swagger 2.0 document (JSON)", JSON),
        "/v1/documentation/openapi.yaml": doc("OpenapiYaml", "Swagger 2.0 document (YAML)", "application/yaml"),
        "/v1/documentation/openapi3.json": doc("Openapi3Json", "OpenAPI 3.0 document (JSON)", JSON),
        "/v1/documentation/openapi3.yaml": doc("Openapi3Yaml", "OpenAPI 3.0 document (YAML)", "application/yaml"),
        "/v1/branches/{branchId}/aggregation/sources": {
            "get": _op(
                "AggregationSources",
                "Sources with their sinks and statistics",
                _ok("AggregatedSourcesResult"),
                tag="internal",
                params=[BRANCH, *PAGING],
            )
        },
        "/v1/branches/{branchId}/sources": {
            "get": _op("ListSources", "List sources", _ok("SourcesList"), params=[BRANCH, *PAGING]),
            "post": _op(
                "CreateSource",
                "Create a source",
                TASK_202,
                params=[BRANCH],
                body="CreateSourceRequestBody",
                write=True,
                errors={
                    "409": "`stream.api.sourceAlreadyExists`: the id exists, or a task creating it still runs.",
                    "422": limit_sources,
                },
            ),
        },
        "/v1/branches/{branchId}/sources/deleted": {
            "get": _op("ListDeletedSources", "List deleted sources", _ok("SourcesList"), params=[BRANCH, *PAGING])
        },
        src: {
            "get": _op("GetSource", "Get a source", _ok("Source"), params=s_params, errors=not_source),
            "patch": _op(
                "UpdateSource",
                "Update a source",
                TASK_202,
                params=s_params,
                body="UpdateSourceRequestBody",
                write=True,
                errors=not_source,
            ),
            "delete": _op(
                "DeleteSource",
                "Delete a source",
                TASK_202,
                params=[
                    *s_params,
                    {
                        "name": "cascade",
                        "in": "query",
                        "description": "Delete the source and its sinks for good (no undelete; the id is free at "
                        "once) and let the storage drop their tables.",
                        "allowEmptyValue": True,
                        "schema": {"type": "boolean", "default": False},
                    },
                ],
                write=True,
                errors=not_source,
                description="Deletes the source and its sinks; `PUT .../undelete` restores them.",
            ),
        },
        src + "/disable": {
            "put": _op("DisableSource", "Disable a source", TASK_202, params=s_params, write=True, errors=not_source)
        },
        src + "/enable": {
            "put": _op("EnableSource", "Enable a source", TASK_202, params=s_params, write=True, errors=not_source)
        },
        src + "/undelete": {
            "put": _op(
                "UndeleteSource",
                "Undelete a source",
                TASK_202,
                params=s_params,
                write=True,
                errors={
                    "404": "`stream.api.deletedSourceNotFound`: no deleted source with the id; "
                    "`stream.api.branchNotFound`.",
                    "422": limit_sources,
                },
                description="Restores a deleted source with the sinks deleted together with it, each in a new version.",
            )
        },
        src + "/rotate-secret": {
            "post": _op(
                "RotateSourceSecret",
                "Rotate the secret of a source",
                _ok("Source"),
                params=s_params,
                write=True,
                errors=not_source,
                description="Makes a new secret (and so a new `http.url`) at once; the old URL stops working.",
            )
        },
        src + "/settings": {
            "get": _op(
                "GetSourceSettings", "Get source settings", _ok("SettingsResult"), params=s_params, errors=not_source
            ),
            "patch": _op(
                "UpdateSourceSettings",
                "Update source settings",
                TASK_202,
                params=s_params,
                body="UpdateSettingsRequestBody",
                write=True,
                errors={**not_source, "403": "`stream.api.forbidden`: a protected key, or a guest token."},
            ),
        },
        src + "/test": {
            "post": {
                **_op(
                    "TestSource",
                    "Test the mappings of a source",
                    _ok("TestResult"),
                    tag="test",
                    params=[
                        *s_params,
                        {
                            "name": "signal",
                            "in": "query",
                            "description": "Accepted for compatibility; HTTP sources ignore it.",
                            "allowEmptyValue": True,
                            "schema": {"type": "string", "enum": list(wire.SIGNALS)},
                        },
                    ],
                    errors={
                        **not_source,
                        "413": "`stream.api.bodyTooLarge`: the body is larger than 4 MiB.",
                        "422": "`stream.api.unprocessableContent`: a sink cannot map the request (a body that "
                        "cannot be parsed or has a content type the mapping cannot read, a missing path, a "
                        "failing template).",
                    },
                    description="Maps the request — its body, headers and client IP — with every enabled sink of "
                    "the source, as an event sent to the source would be, and returns the rows. Nothing is stored.",
                ),
                "requestBody": {
                    "required": False,
                    "content": {
                        JSON: {"schema": {}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                        "text/plain": {"schema": {"type": "string"}},
                    },
                },
            }
        },
        src + "/statistics/clear": {
            "delete": _op(
                "SourceStatisticsClear",
                "Clear the statistics of a source",
                {"200": {"description": "Cleared."}},
                tag="statistics",
                params=s_params,
                write=True,
                errors=not_source,
            )
        },
        src + "/versions": {
            "get": _op(
                "ListSourceVersions",
                "List versions of a source",
                _ok("EntityVersions"),
                params=[*s_params, *PAGING],
                errors=not_source,
            )
        },
        src + "/versions/{versionNumber}": {
            "get": _op(
                "SourceVersionDetail",
                "Get a version of a source",
                _ok("Version"),
                params=[*s_params, VERSION],
                errors=not_version,
            )
        },
        src + "/versions/{versionNumber}/rollback": {
            "put": _op(
                "RollbackSourceVersion",
                "Roll a source back to a version",
                TASK_202,
                params=[*s_params, VERSION],
                write=True,
                errors=not_version,
                description="Makes a new version with the state of the given one (the secret and the enabled state "
                "stay as they are).",
            )
        },
        src + "/sinks": {
            "get": _op("ListSinks", "List sinks", _ok("SinksList"), params=[*s_params, *PAGING], errors=not_source),
            "post": _op(
                "CreateSink",
                "Create a sink",
                TASK_202,
                params=s_params,
                body="CreateSinkRequestBody",
                write=True,
                errors={
                    **not_source,
                    "409": "`stream.api.sinkAlreadyExists`: the id exists, or a task creating it still runs.",
                    "422": limit_sinks,
                },
            ),
        },
        src + "/sinks/deleted": {
            "get": _op(
                "ListDeletedSinks",
                "List deleted sinks",
                _ok("SinksList"),
                params=[*s_params, *PAGING],
                errors=not_source,
            )
        },
        snk: {
            "get": _op("GetSink", "Get a sink", _ok("Sink"), params=k_params, errors=not_sink),
            "patch": _op(
                "UpdateSink",
                "Update a sink",
                TASK_202,
                params=k_params,
                body="UpdateSinkRequestBody",
                write=True,
                errors={**not_sink, "422": "`stream.api.resourceLimitReached`: at most 100 columns per sink."},
            ),
            "delete": _op("DeleteSink", "Delete a sink", TASK_202, params=k_params, write=True, errors=not_sink),
        },
        snk + "/disable": {
            "put": _op("DisableSink", "Disable a sink", TASK_202, params=k_params, write=True, errors=not_sink)
        },
        snk + "/enable": {
            "put": _op("EnableSink", "Enable a sink", TASK_202, params=k_params, write=True, errors=not_sink)
        },
        snk + "/undelete": {
            "put": _op(
                "UndeleteSink",
                "Undelete a sink",
                TASK_202,
                params=k_params,
                write=True,
                errors={
                    "404": "`stream.api.deletedSinkNotFound`: no deleted sink with the id; "
                    "`stream.api.sourceNotFound`, `stream.api.branchNotFound`.",
                    "422": limit_sinks,
                },
                description="Restores a deleted sink in a new version.",
            )
        },
        snk + "/settings": {
            "get": _op("GetSinkSettings", "Get sink settings", _ok("SettingsResult"), params=k_params, errors=not_sink),
            "patch": _op(
                "UpdateSinkSettings",
                "Update sink settings",
                TASK_202,
                params=k_params,
                body="UpdateSettingsRequestBody",
                write=True,
                errors={**not_sink, "403": "`stream.api.forbidden`: a protected key, or a guest token."},
                description="A sink's settings override its source's.",
            ),
        },
        src + "/flush": {
            "post": _op(
                "FlushSource",
                "Import what the sinks of a source hold now",
                _ok("FlushResult"),
                tag="operator",
                params=[*s_params, FLUSH_WAIT],
                write=True,
                errors=not_source,
                description="Beyond Keboola: closes the writing files of every sink of the source and imports "
                "them, together with files waiting for a retry, without waiting for the import conditions. "
                "With `wait`, answers once everything is imported or an import attempt failed (or the time is up).",
            )
        },
        snk + "/flush": {
            "post": _op(
                "FlushSink",
                "Import what a sink holds now",
                _ok("FlushResult"),
                tag="operator",
                params=[*k_params, FLUSH_WAIT],
                write=True,
                errors=not_sink,
                description="Beyond Keboola: like the source's flush, for one sink.",
            )
        },
        snk + "/statistics/clear": {
            "delete": _op(
                "SinkStatisticsClear",
                "Clear the statistics of a sink",
                {"200": {"description": "Cleared."}},
                tag="statistics",
                params=k_params,
                write=True,
                errors=not_sink,
            )
        },
        snk + "/statistics/files": {
            "get": _op(
                "SinkStatisticsFiles",
                "Files of a sink",
                _ok("SinkStatisticsFilesResult"),
                tag="statistics",
                params=[
                    *k_params,
                    {
                        "name": "failedFiles",
                        "in": "query",
                        "description": "Only files that are not imported yet.",
                        "allowEmptyValue": True,
                        "schema": {"type": "boolean", "default": False},
                    },
                    {
                        "name": "order",
                        "in": "query",
                        "description": "Beyond Keboola. `openedAt`: newest file first; `eventTime`: the file "
                        "with the latest event time first (sinks with `mapping.eventTimeColumn`; files "
                        "without event times follow, newest first).",
                        "allowEmptyValue": True,
                        "schema": {"type": "string", "enum": list(wire.FILE_ORDERS), "default": wire.FILE_ORDERS[0]},
                    },
                ],
                errors=not_sink,
            )
        },
        snk + "/statistics/total": {
            "get": _op(
                "SinkStatisticsTotal",
                "Total statistics of a sink",
                _ok("SinkStatisticsTotalResult"),
                tag="statistics",
                params=k_params,
                errors=not_sink,
            )
        },
        snk + "/versions": {
            "get": _op(
                "ListSinkVersions",
                "List versions of a sink",
                _ok("EntityVersions"),
                params=[*k_params, *PAGING],
                errors=not_sink,
            )
        },
        snk + "/versions/{versionNumber}": {
            "get": _op(
                "SinkVersionDetail",
                "Get a version of a sink",
                _ok("Version"),
                params=[*k_params, VERSION],
                errors=not_version,
            )
        },
        snk + "/versions/{versionNumber}/rollback": {
            "put": _op(
                "RollbackSinkVersion",
                "Roll a sink back to a version",
                TASK_202,
                params=[*k_params, VERSION],
                write=True,
                errors=not_version,
                description="Makes a new version with the state of the given one (the enabled state stays).",
            )
        },
        "/v1/nodes": {"get": nodes},
        "/v1/tasks/{taskId}": {
            "get": _op(
                "GetTask",
                "Get a task",
                _ok("Task"),
                params=[
                    {
                        "name": "taskId",
                        "in": "path",
                        "required": True,
                        "description": "Id of the task (it contains slashes, which may be sent as they are).",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]+(/[A-Za-z0-9._:-]+)*$"},
                    }
                ],
                errors={"404": "`stream.api.taskNotFound`."},
            )
        },
    }


@lru_cache(maxsize=8)
def _build(api_url: str, version: str) -> bytes:
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "pushstream Stream API",
            "description": DESCRIPTION,
            "version": version,
            "license": {"name": "Apache 2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "servers": [{"url": api_url}],
        "tags": [
            {"name": "configuration", "description": "Sources, sinks, settings, versions and tasks."},
            {"name": "test", "description": "Dry runs of mappings."},
            {"name": "statistics", "description": "Records and files on their way to the tables."},
            {"name": "internal", "description": "Aggregated views for user interfaces."},
            {"name": "documentation", "description": "The service and its documentation."},
        ],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "storage-api-token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-StorageApi-Token",
                    "description": "An API token (`pushstream token create`, or the server's `PUSHSTREAM_API_TOKEN`).",
                }
            },
        },
    }
    return orjson.dumps(document)


def openapi3(api_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document with ``api_url`` as its server."""
    from pushstream import __version__

    document: dict[str, Any] = orjson.loads(_build(api_url, __version__))
    return document


def to_swagger2(document: dict[str, Any]) -> dict[str, Any]:
    """Converts the OpenAPI 3.0 document of this module to Swagger 2.0 (the subset it uses)."""
    doc = copy.deepcopy(document)

    def fix_refs(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    out[key] = value.replace("#/components/schemas/", "#/definitions/")
                else:
                    out[key] = fix_refs(value)
            return out
        if isinstance(node, list):
            return [fix_refs(item) for item in node]
        return node

    server = urlsplit(doc["servers"][0]["url"])
    paths: dict[str, Any] = {}
    for path, methods in doc["paths"].items():
        paths[path] = {}
        for method, op in methods.items():
            new: dict[str, Any] = {
                k: op[k] for k in ("tags", "summary", "description", "operationId", "security") if k in op
            }
            params = []
            for param in op.get("parameters", []):
                flat = {k: param[k] for k in ("name", "in", "required", "description", "allowEmptyValue") if k in param}
                flat.update({k: val for k, val in param["schema"].items() if k != "example"})
                params.append(flat)
            body = op.get("requestBody")
            if body:
                content_types = list(body["content"])
                new["consumes"] = content_types
                schema = body["content"][content_types[0]]["schema"] or {"type": "object"}
                params.append({"name": "body", "in": "body", "required": body.get("required", False), "schema": schema})
            new["parameters"] = params
            produces: list[str] = []
            responses = {}
            for code, response in op["responses"].items():
                item: dict[str, Any] = {"description": response["description"]}
                for content_type, media in response.get("content", {}).items():
                    produces.append(content_type)
                    if media.get("schema"):
                        item["schema"] = media["schema"]
                if "headers" in response:
                    item["headers"] = {name: header["schema"] for name, header in response["headers"].items()}
                responses[code] = item
            if produces:
                new["produces"] = sorted(set(produces))
            new["responses"] = responses
            paths[path][method] = new
    swagger = {
        "swagger": "2.0",
        "info": doc["info"],
        "host": server.netloc,
        "basePath": "/",
        "schemes": [server.scheme],
        "tags": doc["tags"],
        "paths": paths,
        "definitions": doc["components"]["schemas"],
        "securityDefinitions": doc["components"]["securitySchemes"],
    }
    result: dict[str, Any] = fix_refs(swagger)
    return result


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


if __name__ == "__main__":
    sys.stdout.write(
        orjson.dumps(
            openapi3(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"), option=orjson.OPT_INDENT_2
        ).decode()
        + "\n"
    )
