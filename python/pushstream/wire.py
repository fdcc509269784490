"""The Stream API's wire format, declared once.

Every request and response body of ``/v1`` is a :class:`msgspec.Struct` here, with
its limits, patterns, enum values and descriptions in :class:`msgspec.Meta`. The
rest of the service reads them from here:

* :mod:`pushstream.api.openapi` derives the document's components from these
  structures (a struct's docstring is its schema's description);
* :mod:`pushstream.api.validation` checks request bodies against the same
  structures and words the errors as Keboola's API does;
* the encoders at the end of this module produce the JSON the API answers
  (the storage pipeline's statistics and flushes included), and the catalog keeps
  ``by``, ``version`` and the entity events in these shapes too.

A field typed ``X | UnsetType = UNSET`` is optional: it is left out of the JSON
when not set; ``always`` names fields that have a default yet are always on the
wire (the document lists them as required). At run time this module imports
nothing of the API or the catalog, so both (and :mod:`pushstream.storage`) may
import it. Settings (:mod:`pushstream.catalog.settings`) and errors
(:mod:`pushstream.errors`) make their own JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self, get_args

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

if TYPE_CHECKING:
    from pushstream.catalog import models

# Limits and patterns.

MAX_ID_LENGTH = 48
MAX_NAME_LENGTH = 40
MAX_DESCRIPTION_LENGTH = 4096
MAX_COLUMN_NAME_LENGTH = 64
MAX_TEMPLATE_LENGTH = 4096
MAX_COLUMNS = 100
#: The largest ``limit`` of a page (and its default).
MAX_PAGE_LIMIT = 100
#: Keboola's table id: stage, bucket (with the "c-" prefix) and table name.
TABLE_ID_PATTERN = r"^(in|out)\.c-[0-9A-Za-z_-]{1,96}\.[0-9A-Za-z_-]{1,96}$"
DATE_TIME: dict[str, Any] = {"format": "date-time"}

# Enum values.

ColumnType = Literal["uuid", "id", "datetime", "ip", "body", "headers", "path", "template"]
#: What a column holds in the table (beyond Keboola, whose columns are all text).
DataType = Literal["string", "integer", "number", "boolean", "timestamp", "date", "json"]
#: How the rows of an import join the table's rows (beyond Keboola).
MergeStrategy = Literal["append", "upsert", "ledger", "snapshot"]
Signal = Literal["logs", "metrics", "traces"]
SourceType = Literal["http", "otlp"]
SinkType = Literal["table"]
TableType = Literal["keboola"]
TemplateLanguage = Literal["jsonnet"]
TaskStatus = Literal["processing", "success", "error"]
FileState = Literal["writing", "closing", "importing", "imported"]
ByType = Literal["system", "user"]
SettingType = Literal["string", "int", "float", "bool", "[]string", "[]int", "[]float"]

_ENUMS = (
    ColumnType,
    DataType,
    MergeStrategy,
    Signal,
    SourceType,
    SinkType,
    TableType,
    TemplateLanguage,
    TaskStatus,
    FileState,
    ByType,
    SettingType,
)
_DECLARED_ORDER = {frozenset(get_args(enum)): get_args(enum) for enum in _ENUMS}


def enum_values(values: Iterable[Any]) -> tuple[Any, ...]:
    """The values of an enum in their declared order (:mod:`msgspec.inspect` sorts them)."""
    values = tuple(values)
    return _DECLARED_ORDER.get(frozenset(values), values)


COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
DATA_TYPES: tuple[str, ...] = get_args(DataType)
MERGE_STRATEGIES: tuple[str, ...] = get_args(MergeStrategy)
#: Names of the columns a sink with ``systemColumns`` adds after its own, in table order.
SYSTEM_COLUMNS: tuple[str, ...] = ("_offset", "_op", "_system_time")
SIGNALS: tuple[str, ...] = get_args(Signal)
SOURCE_TYPES: tuple[str, ...] = get_args(SourceType)

# Fields used by several bodies.

Int64 = Annotated[int, Meta(extra_json_schema={"format": "int64"})]
ProjectId = Annotated[Int64, Meta(description="Id of the project.", examples=[1])]
BranchId = Annotated[Int64, Meta(description="Id of the branch.", examples=[1])]
EntityId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)]
SourceId = Annotated[EntityId, Meta(description="Id of the source, unique in the branch.", examples=["github-events"])]
SinkId = Annotated[EntityId, Meta(description="Id of the sink, unique in the source.", examples=["pull-requests"])]
Name = Annotated[
    str, Meta(min_length=1, max_length=MAX_NAME_LENGTH, description="Human readable name.", examples=["GitHub events"])
]
Description = Annotated[
    str,
    Meta(
        max_length=MAX_DESCRIPTION_LENGTH,
        description="Free-form description.",
        examples=["Webhooks of our repositories."],
    ),
]
ChangeDescription = Annotated[str, Meta(description="Description of the change (of the new version).")]
Signals = Annotated[
    tuple[Signal, ...],
    Meta(description="OTLP signals the sink accepts (kept for compatibility; HTTP sources ignore it)."),
]
Time = Annotated[str, Meta(extra_json_schema=DATE_TIME)]


class _Body(Struct, rename="camel", omit_defaults=True, kw_only=True):
    """Base of the bodies: camelCase on the wire; optional fields (``UNSET``) left out."""


class _Record(Struct, rename="camel", frozen=True):
    """Base of the parts the catalog keeps as they are on the wire (positional, immutable)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object (as dicts) of the wire."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return msgspec.convert(data, cls)


# Service.


class GenericError(_Body, kw_only=True):
    """An error."""

    status_code: Annotated[Int64, Meta(description="HTTP status code.")]
    error: Annotated[
        str, Meta(description="Name of the error, `stream.api.<name>`.", examples=["stream.api.sourceNotFound"])
    ]
    message: Annotated[
        str, Meta(description="What went wrong.", examples=['Source "github-events" not found in the branch.'])
    ]
    exception_id: Annotated[str, Meta(description="Id of a server error in the server log (5xx only).")] | UnsetType = (
        UNSET
    )


class ServiceDetail(_Body, kw_only=True):
    """Name of the API and where its documentation is."""

    api: Annotated[str, Meta(description="Name of the API.", examples=["stream"])]
    documentation: Annotated[str, Meta(description="URL of the documentation.")]


# Who and when.


class By(_Record, frozen=True, omit_defaults=True):
    """Who made a change (empty fields are left out of the JSON)."""

    type: Annotated[ByType, Meta(description="Who acted: `user` (an API token) or `system`.")] = msgspec.field(
        default_factory=lambda: "system"
    )
    token_id: Annotated[str, Meta(description="Id of the token.")] = ""
    token_desc: Annotated[str, Meta(description="Description of the token.")] = ""
    user_id: Annotated[str, Meta(description="Id of the token's user.")] = ""
    user_name: Annotated[str, Meta(description="Name of the token's user.")] = ""

    #: On the wire also when it is the default (``default_factory`` keeps it from being omitted).
    always: ClassVar[tuple[str, ...]] = ("type",)


class Event(_Record, frozen=True):
    """When and by whom an entity was created or deleted."""

    at: Annotated[Time, Meta(description="When it happened.")]
    by: By


class CreatedEntity(Event, frozen=True):
    """Creation of the entity."""

    at: Annotated[Time, Meta(description="When it was created.")]


class DeletedEntity(Event, frozen=True):
    """Deletion of the entity (present only on deleted entities)."""

    at: Annotated[Time, Meta(description="When it was deleted.")]


# An entity's events are Events; the document names their schemas by role.
Created = Annotated[Event, Meta(extra={"component": "CreatedEntity"})]
Deleted = Annotated[Event, Meta(extra={"component": "DeletedEntity"})]


class Disabled(_Record, frozen=True):
    """Present only on disabled entities."""

    at: Annotated[Time, Meta(description="When it was disabled.")]
    by: By
    reason: Annotated[str, Meta(description="Why it was disabled.")] = ""

    always: ClassVar[tuple[str, ...]] = ("reason",)


class Version(_Record, frozen=True):
    """A version of a source or sink. Every change makes a new one; the last 1000 are kept."""

    # What the service makes, stated for the document (the catalog reads versions without checking them again).
    number: Annotated[Int64, Meta(description="Version number, counted from 1.", extra_json_schema={"minimum": 1})]
    hash: Annotated[
        str,
        Meta(
            description="Hash of the entity's state (16 hex digits).", extra_json_schema={"pattern": "^[0-9a-f]{16}$"}
        ),
    ]
    description: Annotated[str, Meta(description="Description of the change.")]
    at: Annotated[Time, Meta(description="When the version was made.")]
    by: By


class PaginatedResponse(_Body, kw_only=True):
    """Position of a page of records."""

    limit: Annotated[Int64, Meta(description="The limit of the request.")]
    total_count: Annotated[
        Int64,
        Meta(description="Number of all records, on every page; for versions, the number of versions after `afterId`."),
    ]
    after_id: Annotated[str, Meta(description="The `afterId` of the request.")]
    last_id: Annotated[str, Meta(description="Id of the last record of this page (the `afterId` of the next one).")]


# Tasks.


class TaskOutputs(_Body, kw_only=True):
    """What the task works on."""

    url: Annotated[str, Meta(description="API URL of the entity the task changes.")] | UnsetType = UNSET
    project_id: ProjectId | UnsetType = UNSET
    branch_id: BranchId | UnsetType = UNSET
    source_id: SourceId | UnsetType = UNSET
    sink_id: SinkId | UnsetType = UNSET


class Task(_Body, kw_only=True):
    """An asynchronous task of a configuration change."""

    task_id: Annotated[
        str,
        Meta(
            description="Id of the task.", examples=["api.create.source/1/github-events/2024-05-06T10:20:30.123Z_k3x9q"]
        ),
    ]
    type: Annotated[
        str,
        Meta(
            description="Kind of task, the prefix of its id (`api.create.source`, `api.update.sinkSettings`, "
            "`api.rollback.sourceVersion`, ...).",
            examples=["api.create.source"],
        ),
    ]
    url: Annotated[str, Meta(description="URL of the task.")]
    status: Annotated[TaskStatus, Meta(description="State of the task.")]
    is_finished: Annotated[bool, Meta(description='True when `status` is not "processing".')]
    created_at: Annotated[Time, Meta(description="When the task started.")]
    finished_at: Annotated[Time, Meta(description="When the task finished.")] | UnsetType = UNSET
    duration: Annotated[Int64, Meta(description="How long the task took, in milliseconds.")] | UnsetType = UNSET
    result: (
        Annotated[str, Meta(description="Outcome message (the error message when the task failed).")] | UnsetType
    ) = UNSET
    error: Annotated[str, Meta(description="Error message of a failed task.")] | UnsetType = UNSET
    # A TaskOutputs, as the task keeps it.
    outputs: (
        Annotated[
            dict[str, Any], Meta(description="Present once the task has finished.", extra={"component": "TaskOutputs"})
        ]
        | UnsetType
    ) = UNSET


# Sources.


class HTTPSource(_Body, kw_only=True):
    """Details of a source of type "http"."""

    url: Annotated[
        str,
        Meta(
            description="URL to send events to; it contains the source's secret. A guest (read-only) token sees "
            "`********` in place of the secret."
        ),
    ]


class OTLPSource(_Body, kw_only=True):
    """Details of a source of type "otlp": an OpenTelemetry (OTLP/HTTP) endpoint.

    An OpenTelemetry SDK or Collector exports to ``<baseUrl>/v1/logs``, ``/v1/metrics``
    and ``/v1/traces`` with ``Authorization: Bearer <secret>``, or to the same paths
    under ``url`` (the secret in the path). Bodies are OTLP protobuf
    (``application/x-protobuf``) or OTLP JSON (``application/json``), optionally
    gzip-compressed; the answer is the OTLP ``Export*ServiceResponse``. Each log
    record, metric data point and span becomes one record (see ``docs/otlp.md``).
    """

    url: Annotated[
        str,
        Meta(
            description="OTLP endpoint with the secret in its path: `<url>/v1/logs`, `/v1/metrics`, `/v1/traces`. "
            "A guest (read-only) token sees `********` in place of the secret."
        ),
    ]
    base_url: Annotated[
        str,
        Meta(
            description="OTLP endpoint without the secret, for clients that send it as `Authorization: Bearer "
            "<secret>`: `<baseUrl>/v1/logs`, `/v1/metrics`, `/v1/traces`."
        ),
    ]
    secret: Annotated[
        str, Meta(description="The source's secret (48 characters); `********` for a guest (read-only) token.")
    ]


class Source(_Body, kw_only=True):
    """A source of events; at most 100 per branch."""

    project_id: ProjectId
    branch_id: BranchId
    source_id: SourceId
    type: Annotated[SourceType, Meta(description="Kind of source.")]
    name: Name
    description: Description
    http: Annotated[HTTPSource, Meta(description='Present when `type` is "http".')] | UnsetType = UNSET
    otlp: Annotated[OTLPSource, Meta(description='Present when `type` is "otlp".')] | UnsetType = UNSET
    version: Version
    created: Created
    disabled: Disabled | UnsetType = UNSET
    deleted: Deleted | UnsetType = UNSET


class SourcesList(_Body, kw_only=True):
    """A page of sources."""

    project_id: ProjectId
    branch_id: BranchId
    page: PaginatedResponse
    sources: list[Source]


class CreateSourceRequestBody(_Body, kw_only=True):
    """A new source."""

    source_id: (
        Annotated[
            EntityId,
            Meta(
                description="Id of the new source; made from `name` when missing. It is normalised to kebab-case "
                "(accents stripped) and cannot be changed later."
            ),
        ]
        | UnsetType
    ) = UNSET
    type: Annotated[
        SourceType,
        Meta(description='Kind of source: "http" (events over HTTP) or "otlp" (OpenTelemetry logs, metrics, traces).'),
    ]
    name: Name
    description: Description | UnsetType = UNSET


class UpdateSourceRequestBody(_Body, kw_only=True):
    """Fields of a source to change; the others stay."""

    change_description: ChangeDescription | UnsetType = UNSET
    type: (
        Annotated[
            SourceType,
            Meta(
                description='Kind of source: "http" (events over HTTP) or "otlp" (OpenTelemetry logs, metrics, traces).'
            ),
        ]
        | UnsetType
    ) = UNSET
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET


# Sinks.


class TableColumnTemplate(_Body, kw_only=True):
    """Template of a column of type "template"."""

    language: Annotated[TemplateLanguage, Meta(description="Template language.")]
    content: Annotated[str, Meta(min_length=1, max_length=MAX_TEMPLATE_LENGTH, description="The template.")]


class TableColumn(_Body, kw_only=True):
    """One column of the destination table and how its value is made from an event."""

    type: Annotated[
        ColumnType,
        Meta(
            description="How the value is made: `uuid` (alias `id`) a new UUIDv7, `datetime` the receive time, "
            "`ip` the client IP, `body` the raw body, `headers` the headers as JSON, `path` a value of the JSON "
            "body, `template` a Jsonnet template."
        ),
    ]
    name: Annotated[
        str, Meta(min_length=1, max_length=MAX_COLUMN_NAME_LENGTH, description="Column name, unique in the sink.")
    ]
    primary_key: (
        Annotated[bool, Meta(description="Part of the table's primary key: rows with the same key are deduplicated.")]
        | UnsetType
    ) = UNSET
    path: (
        Annotated[
            str, Meta(min_length=1, description="For `path` columns: the path in the JSON body, e.g. `a.b[0].c`.")
        ]
        | UnsetType
    ) = UNSET
    default_value: (
        Annotated[str, Meta(description="For `path` columns: the value used when the path is missing.")] | UnsetType
    ) = UNSET
    raw_string: (
        Annotated[
            bool, Meta(description="For `path` and `template` columns: write a string value without JSON quotes.")
        ]
        | UnsetType
    ) = UNSET
    template: TableColumnTemplate | UnsetType = UNSET
    data_type: (
        Annotated[
            DataType,
            Meta(
                description="Beyond Keboola: the type of the table column. Left out, the column is `string`: text, "
                "written exactly as Keboola writes it. Another type converts each mapped value (a string such as "
                '`"49.28"` is read as the type too) and makes a native column of the target; a value that cannot '
                "be converted fails the record for this sink. `path` and `template` columns take any type, "
                "`datetime` `string` or `timestamp`, `headers` `string` or `json`, the others only `string`. "
                "`timestamp` takes ISO 8601 / RFC 3339 text (no offset means UTC) or seconds since the Unix epoch "
                "and keeps microseconds; `date` takes `YYYY-MM-DD`; `json` any JSON value."
            ),
        ]
        | UnsetType
    ) = UNSET
    nullable: (
        Annotated[
            bool,
            Meta(
                description="Beyond Keboola, for typed columns (not `string`): whether a null or missing value is "
                "stored as NULL (true, the default) or fails the record for this sink (false).",
                extra_json_schema={"default": True},
            ),
        ]
        | UnsetType
    ) = UNSET


class TableMapping(_Body, kw_only=True):
    """How an event becomes a row."""

    columns: Annotated[
        list[TableColumn], Meta(min_length=1, max_length=MAX_COLUMNS, description="Columns of the table, at most 100.")
    ]
    event_time_column: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_COLUMN_NAME_LENGTH,
                description="Beyond Keboola: the column that holds when the event happened (its `dataType` must be "
                "`timestamp`), as opposed to when it was received.",
            ),
        ]
        | UnsetType
    ) = UNSET
    merge_strategy: (
        Annotated[
            MergeStrategy,
            Meta(
                description="Beyond Keboola: how an import joins the rows already in the table. `append` adds every "
                "row (no primary key). `upsert` keeps one row per primary key, the latest one replacing the table's. "
                "`ledger` keeps one row per primary key, the first one ever (later rows with a known key are "
                "ignored: immutable facts). `snapshot` takes each import as the whole table: rows whose key is not "
                "in the import are deleted (without a key, the table's rows are replaced). Left out: `upsert` when "
                "a column is part of the primary key, else `append`. `upsert` and `ledger` need a primary key, "
                "`append` refuses one."
            ),
        ]
        | UnsetType
    ) = UNSET
    system_columns: (
        Annotated[
            bool,
            Meta(
                description="Beyond Keboola: when true the table gets three more columns after the sink's: "
                "`_offset` (the row's number in the table, from 0 in import order), `_op` (`+A` appended, `+I` a "
                "new key, `+U` a replaced row) and `_system_time` (when the import committed, UTC). Column names "
                "`_offset`, `_op` and `_system_time` are then reserved.",
                extra_json_schema={"default": False},
            ),
        ]
        | UnsetType
    ) = UNSET


TableKind = Annotated[TableType, Meta(description="Kind of destination.")]
TableId = Annotated[
    str,
    Meta(
        pattern=TABLE_ID_PATTERN,
        description="Destination table, `<stage>.c-<bucket>.<table>`.",
        examples=["in.c-github.pull-requests"],
    ),
]


class TableSink(_Body, kw_only=True):
    """Details of a sink of type "table"."""

    type: TableKind
    table_id: TableId
    mapping: TableMapping


class TableSinkCreate(TableSink, kw_only=True):
    """Details of a sink of type "table"."""


class TableSinkUpdate(_Body, kw_only=True):
    """Fields of the table to change; the others stay."""

    type: TableKind | UnsetType = UNSET
    table_id: TableId | UnsetType = UNSET
    mapping: TableMapping | UnsetType = UNSET


SinkKind = Annotated[SinkType, Meta(description="Kind of sink.")]


class Sink(_Body, kw_only=True):
    """A mapping of the events of a source into a table; at most 100 per source."""

    project_id: ProjectId
    branch_id: BranchId
    source_id: SourceId
    sink_id: SinkId
    type: SinkKind
    name: Name
    description: Description
    allowed_signals: Signals | UnsetType = UNSET
    table: Annotated[dict[str, Any], Meta(extra={"component": "TableSink"})] | UnsetType = UNSET
    version: Version
    created: Created
    disabled: Disabled | UnsetType = UNSET
    deleted: Deleted | UnsetType = UNSET


class SinksList(_Body, kw_only=True):
    """A page of sinks."""

    project_id: ProjectId
    branch_id: BranchId
    source_id: SourceId
    page: PaginatedResponse
    sinks: list[Sink]


class CreateSinkRequestBody(_Body, kw_only=True):
    """A new sink."""

    sink_id: (
        Annotated[
            EntityId,
            Meta(description="Id of the new sink; made from `name` when missing. Normalised like a source id."),
        ]
        | UnsetType
    ) = UNSET
    type: SinkKind
    name: Name
    description: Description | UnsetType = UNSET
    allowed_signals: Signals | UnsetType = UNSET
    table: TableSinkCreate


class UpdateSinkRequestBody(_Body, kw_only=True):
    """Fields of a sink to change; the others stay."""

    change_description: ChangeDescription | UnsetType = UNSET
    type: SinkKind | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    allowed_signals: Signals | UnsetType = UNSET
    table: TableSinkUpdate | UnsetType = UNSET


class EntityVersions(_Body, kw_only=True):
    """A page of versions, oldest first; `afterId` and `lastId` are version numbers
    (`lastId` zero-padded to 10 digits, `0000000003`, as Keboola keys versions)."""

    versions: list[Version]
    page: PaginatedResponse


# Settings.


class SettingPatch(_Body, kw_only=True):
    """A new value of one key."""

    key: Annotated[str, Meta(min_length=1, description="Settings key.")]
    value: (
        Annotated[Any, Meta(description="The new value; `null` resets the key to the inherited value.")] | UnsetType
    ) = UNSET


class UpdateSettingsRequestBody(_Body, kw_only=True):
    """New values of settings keys."""

    change_description: ChangeDescription | UnsetType = UNSET
    settings: list[SettingPatch] | UnsetType = UNSET


class SettingResult(_Body, kw_only=True):
    """One settings key."""

    key: Annotated[str, Meta(description="Settings key.")]
    type: Annotated[SettingType, Meta(description="Type of the value.")]
    description: Annotated[str, Meta(description="What the key does.")]
    value: Annotated[Any, Meta(description="The value in effect.")]
    default_value: Annotated[Any, Meta(description="The value without this entity's own override (inherited).")]
    overwritten: Annotated[bool, Meta(description="True when this entity overrides the key.")]
    protected: Annotated[bool, Meta(description="True when only the server's operator may change it.")]
    validation: (
        Annotated[
            str,
            Meta(
                description="Allowed values as Keboola writes them, e.g. `required,min=1,max=100` or "
                "`required,minDuration=1s,maxDuration=30m`; `required` means not zero or empty."
            ),
        ]
        | UnsetType
    ) = UNSET


class SettingsResult(_Body, kw_only=True):
    """Every settings key."""

    settings: list[SettingResult]


# Statistics.


class Level(_Body, kw_only=True):
    """Statistics of records on one storage level, or in total."""

    first_record_at: Annotated[Time, Meta(description="Time of the first record.")] | UnsetType = UNSET
    last_record_at: Annotated[Time, Meta(description="Time of the last record.")] | UnsetType = UNSET
    records_count: Annotated[Int64, Meta(description="Number of records.")]
    compressed_size: Annotated[Int64, Meta(description="Compressed size in bytes.")]
    uncompressed_size: Annotated[Int64, Meta(description="Uncompressed size in bytes.")]
    first_event_at: (
        Annotated[
            Time,
            Meta(
                description="Beyond Keboola, only for a sink with an event-time column (`mapping.eventTimeColumn`),"
                " on the `target` level and in `total`: the earliest event time of the imported rows."
            ),
        ]
        | UnsetType
    ) = UNSET
    last_event_at: (
        Annotated[
            Time,
            Meta(
                description="Beyond Keboola, only for a sink with an event-time column (`mapping.eventTimeColumn`),"
                " on the `target` level and in `total`: the latest event time of the imported rows."
            ),
        ]
        | UnsetType
    ) = UNSET


class Levels(_Body, kw_only=True):
    """Statistics per storage level (levels without records are left out)."""

    local: Level | UnsetType = UNSET
    staging: Level | UnsetType = UNSET
    target: Level | UnsetType = UNSET


class Rejected(_Body, kw_only=True):
    """Beyond Keboola, present only when there are any: rows of imported files that the target database
    refused (the rest of their files was imported)."""

    records_count: Annotated[
        Int64, Meta(description="Rows the target refused; kept in the data dir, listed by `pushstream rejected`.")
    ]


class SinkStatisticsTotalResult(_Body, kw_only=True):
    """Statistics of a sink."""

    total: Level
    levels: Levels
    rejected: Rejected | UnsetType = UNSET


class SinkFileStatistics(SinkStatisticsTotalResult, kw_only=True):
    """Statistics of a file."""


class SinkFile(_Body, kw_only=True):
    """A file of records on its way to the table."""

    state: Annotated[FileState, Meta(description="State of the file.")]
    opened_at: Annotated[Time, Meta(description="When the file was opened.")]
    closing_at: Annotated[Time, Meta(description="When the file started closing.")] | UnsetType = UNSET
    importing_at: Annotated[Time, Meta(description="When the import started.")] | UnsetType = UNSET
    imported_at: Annotated[Time, Meta(description="When the file was imported.")] | UnsetType = UNSET
    retry_attempt: Annotated[Int64, Meta(description="Failed import attempts.")] | UnsetType = UNSET
    retry_reason: Annotated[str, Meta(description="Why the last attempt failed.")] | UnsetType = UNSET
    retry_after: Annotated[Time, Meta(description="When the next attempt is due.")] | UnsetType = UNSET
    statistics: SinkFileStatistics | UnsetType = UNSET


SinkFiles = Annotated[list[SinkFile], Meta(description="Recent files of the sink.")]
#: How ``statistics/files`` may list files (its ``order`` query parameter, beyond
#: Keboola): newest first (the default), or by last event time, latest first.
FILE_ORDERS = ("openedAt", "eventTime")


class SinkStatisticsFilesResult(_Body, kw_only=True):
    """Recent files of a sink."""

    files: SinkFiles


class AggregatedStatistics(SinkStatisticsTotalResult, kw_only=True):
    """Statistics of a sink with its recent files."""

    files: SinkFiles


# Flush (beyond Keboola).


class FlushedFile(_Body, kw_only=True):
    """A file of a flush."""

    sink_id: str
    file_id: Annotated[str, Meta(description="Id of the file (the time it was opened).")]
    state: FileState
    retry_attempt: Annotated[Int64, Meta(description="Failed import attempts so far.")] | UnsetType = UNSET
    retry_reason: Annotated[str, Meta(description="Why the last import attempt failed.")] | UnsetType = UNSET


class FlushResult(_Body, kw_only=True):
    """Files closed or waiting when the flush was asked for, and their state when it answered."""

    branch_id: Int64
    source_id: str
    imported: Annotated[bool, Meta(description="True when every file of the flush is imported.")]
    files: list[FlushedFile]


# Nodes (beyond Keboola).


class ClusterNode(_Body, kw_only=True):
    """A node of the installation: one ``pushstream serve`` with its receivers and its coordinator process."""

    name: Annotated[str, Meta(description="The node's name (`--node-name`).")]
    host: Annotated[str, Meta(description="Host name of the machine it runs on.")]
    api_url: Annotated[str, Meta(description="Public URL of its API.")]
    started_at: Time
    heartbeat_at: Annotated[str, Meta(extra_json_schema=DATE_TIME, description="Its last sign of life.")]
    alive: Annotated[bool, Meta(description="Whether its heartbeat is recent and it did not stop.")]
    stopped: Annotated[
        bool, Meta(description="Whether it stopped cleanly (drained); not alive and not stopped: it died.")
    ]
    coordinator: Annotated[bool, Meta(description="Whether it rotates and imports for the installation now.")]
    config_revision: Annotated[Int64, Meta(description="The last config revision its receivers follow.")]
    receivers: Annotated[int, Meta(description="Receiver processes reporting (single node only).")] | UnsetType = UNSET


class NodesResult(_Body, kw_only=True):
    """The nodes of the installation, live ones first."""

    nodes: list[ClusterNode]
    config_revision: Annotated[Int64, Meta(description="The config revision of the latest committed change.")]


# Test of a source.


class TestResultColumn(_Body, kw_only=True):
    """One value of a row."""

    name: Annotated[str, Meta(description="Column name.")]
    value: Annotated[str, Meta(description="The value, as written to the table.")]


class TestResultRow(_Body, kw_only=True):
    """One row."""

    columns: list[TestResultColumn]


class TestResultTable(_Body, kw_only=True):
    """The row one sink makes of the request."""

    sink_id: SinkId
    table_id: Annotated[str, Meta(description="Destination table.")]
    rows: list[TestResultRow]


class TestResult(_Body, kw_only=True):
    """What the sinks of the source would write for the request."""

    project_id: ProjectId
    branch_id: BranchId
    source_id: SourceId
    tables: Annotated[list[TestResultTable], Meta(description="One per enabled sink.")]


# The aggregation endpoint's shapes extend Source and Sink (the document states them with allOf).


class AggregatedSink(Sink, kw_only=True):
    """A sink with its statistics."""

    statistics: AggregatedStatistics


class AggregatedSource(Source, kw_only=True):
    """A source with its sinks."""

    sinks: list[AggregatedSink]


class AggregatedSourcesResult(_Body, kw_only=True):
    """A page of sources with their sinks and statistics."""

    project_id: ProjectId
    branch_id: BranchId
    page: PaginatedResponse
    sources: list[AggregatedSource]


#: Every schema of the document's components, in its order.
COMPONENTS: tuple[type[Struct], ...] = (
    GenericError,
    ServiceDetail,
    By,
    CreatedEntity,
    DeletedEntity,
    Disabled,
    Version,
    PaginatedResponse,
    Task,
    TaskOutputs,
    HTTPSource,
    Source,
    SourcesList,
    CreateSourceRequestBody,
    UpdateSourceRequestBody,
    TableColumnTemplate,
    TableColumn,
    TableMapping,
    TableSink,
    TableSinkCreate,
    TableSinkUpdate,
    Sink,
    SinksList,
    CreateSinkRequestBody,
    UpdateSinkRequestBody,
    EntityVersions,
    SettingPatch,
    UpdateSettingsRequestBody,
    SettingResult,
    SettingsResult,
    Level,
    Levels,
    Rejected,
    SinkStatisticsTotalResult,
    SinkFileStatistics,
    SinkFile,
    FlushedFile,
    FlushResult,
    ClusterNode,
    NodesResult,
    SinkStatisticsFilesResult,
    AggregatedStatistics,
    AggregatedSourcesResult,
    TestResultColumn,
    TestResultRow,
    TestResultTable,
    TestResult,
)
#: Names of components that differ from their struct's (the model's name is shorter).
COMPONENT_NAMES: dict[type[Struct], str] = {Disabled: "DisabledEntity"}


def component_name(struct: type[Struct]) -> str:
    """The name of ``struct``'s schema in the OpenAPI document."""
    return COMPONENT_NAMES.get(struct, struct.__name__)


# Encoders: the JSON the API answers.

_ENCODER = msgspec.json.Encoder()


def encode(body: Any) -> bytes:
    """JSON of a body (structs, and plain values holding them)."""
    return _ENCODER.encode(body)


def to_builtins(body: Any) -> Any:
    """A body as dicts and lists (to be extended before encoding)."""
    return msgspec.to_builtins(body)


def level(
    records: int,
    compressed: int,
    uncompressed: int,
    first: str | None = None,
    last: str | None = None,
    *,
    first_event: str | None = None,
    last_event: str | None = None,
) -> Level:
    """Statistics of one level; the record times only when there are records,
    the event times (beyond Keboola) only when given."""
    events = records and first_event is not None and last_event is not None
    return Level(
        first_record_at=first if records and first is not None and last is not None else UNSET,
        last_record_at=last if records and first is not None and last is not None else UNSET,
        records_count=records,
        compressed_size=compressed,
        uncompressed_size=uncompressed,
        first_event_at=first_event if events and first_event is not None else UNSET,
        last_event_at=last_event if events and last_event is not None else UNSET,
    )


def empty_totals() -> SinkStatisticsTotalResult:
    """Totals of a sink without records."""
    return SinkStatisticsTotalResult(total=level(0, 0, 0), levels=Levels())


def totals(total: Level, levels: dict[str, Level], rejected: int) -> SinkStatisticsTotalResult:
    """Totals of a sink or file; ``rejected`` is left out when zero."""
    return SinkStatisticsTotalResult(
        total=total, levels=Levels(**levels), rejected=Rejected(records_count=rejected) if rejected else UNSET
    )


def aggregated_statistics(sink_totals: SinkStatisticsTotalResult, files: Iterable[SinkFile]) -> AggregatedStatistics:
    """The ``statistics`` block of a sink in the aggregation endpoint."""
    return AggregatedStatistics(
        total=sink_totals.total, levels=sink_totals.levels, rejected=sink_totals.rejected, files=list(files)
    )


#: What a guest token sees in place of a source's secret in its ingest URL.
HIDDEN_SECRET = "********"


def source(record: models.Source, url: str, *, secret: str = "") -> Source:
    """A source as the API shows it; ``url`` is its ingest URL (with the secret, or
    :data:`HIDDEN_SECRET`): the ``/stream/...`` URL of an HTTP source, the
    ``/otlp/...`` base URL (without the secret) of an OTLP source, whose ``secret``
    is shown as given."""
    otlp = record.type == "otlp"
    return Source(
        project_id=record.project_id,
        branch_id=record.branch_id,
        source_id=record.source_id,
        type="otlp" if otlp else "http",
        name=record.name,
        description=record.description,
        http=UNSET if otlp else HTTPSource(url=url),
        otlp=OTLPSource(url=f"{url}/{secret}", base_url=url, secret=secret) if otlp else UNSET,
        version=record.version,
        created=record.created,
        disabled=UNSET if record.disabled is None else record.disabled,
        deleted=UNSET if record.deleted is None else record.deleted,
    )


def sink(record: models.Sink) -> Sink:
    """A sink as the API shows it (``allowedSignals`` only when set)."""
    return Sink(
        project_id=record.project_id,
        branch_id=record.branch_id,
        source_id=record.source_id,
        sink_id=record.sink_id,
        type="table",
        name=record.name,
        description=record.description,
        allowed_signals=record.allowed_signals or UNSET,
        table=record.table,
        version=record.version,
        created=record.created,
        disabled=UNSET if record.disabled is None else record.disabled,
        deleted=UNSET if record.deleted is None else record.deleted,
    )


def aggregated_sink(record: models.Sink, statistics: AggregatedStatistics) -> AggregatedSink:
    body = sink(record)
    return AggregatedSink(**msgspec.structs.asdict(body), statistics=statistics)


def aggregated_source(body: Source, sinks: list[AggregatedSink]) -> AggregatedSource:
    return AggregatedSource(**msgspec.structs.asdict(body), sinks=sinks)


def task(record: models.Task, url: str) -> Task:
    """A task; ``url`` is its own URL. Keboola's tasks carry their outputs only once they have finished."""
    return Task(
        task_id=record.task_id,
        type=record.type,
        url=url,
        status=record.status,
        is_finished=record.is_finished,
        created_at=record.created_at,
        finished_at=UNSET if record.finished_at is None else record.finished_at,
        duration=UNSET if record.duration_ms is None else record.duration_ms,
        result=UNSET if record.result is None else record.result,
        error=UNSET if record.error is None else record.error,
        outputs=record.outputs if record.outputs and record.is_finished else UNSET,
    )


def page(limit: int, total: int, after_id: str, last_id: str) -> PaginatedResponse:
    return PaginatedResponse(limit=limit, total_count=total, after_id=after_id, last_id=last_id)


def sink_file(
    state: str,
    opened_at: str,
    statistics: SinkStatisticsTotalResult,
    *,
    closing_at: str | None,
    importing_at: str | None,
    imported_at: str | None,
    retry_attempt: int,
    retry_reason: str,
    retry_after: str | None,
) -> SinkFile:
    """A file of a sink; the retry fields only after a failed attempt, ``retryAfter`` only while not imported."""
    retried = bool(retry_attempt)
    return SinkFile(
        state=msgspec.convert(state, FileState),
        opened_at=opened_at,
        closing_at=UNSET if closing_at is None else closing_at,
        importing_at=UNSET if importing_at is None else importing_at,
        imported_at=UNSET if imported_at is None else imported_at,
        retry_attempt=retry_attempt if retried else UNSET,
        retry_reason=retry_reason if retried else UNSET,
        retry_after=retry_after if retried and retry_after is not None and state != "imported" else UNSET,
        statistics=SinkFileStatistics(**msgspec.structs.asdict(statistics)),
    )


def flushed_file(sink_id: str, file_id: str, state: str, retry_attempt: int, retry_reason: str) -> FlushedFile:
    """A file of a flush; the retries only of a file not imported yet."""
    retried = state != "imported" and bool(retry_attempt)
    return FlushedFile(
        sink_id=sink_id,
        file_id=file_id,
        state=msgspec.convert(state, FileState),
        retry_attempt=retry_attempt if retried else UNSET,
        retry_reason=retry_reason if retried else UNSET,
    )


def flush_result(branch_id: int, source_id: str, files: list[FlushedFile]) -> FlushResult:
    return FlushResult(
        branch_id=branch_id,
        source_id=source_id,
        imported=all(f.state == "imported" for f in files),
        files=files,
    )
