"""Records of the catalog. Immutable; changes go through a
:class:`~pushstream.catalog.base.Transaction`.

``by`` blocks, versions and the created/deleted/disabled events are the structures
of the API's wire format (:mod:`pushstream.wire`), kept as they are."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from pushstream.wire import By, Disabled, Event, Signal, TaskStatus, Version

__all__ = [
    "ROLES",
    "By",
    "Disabled",
    "Event",
    "IngestSink",
    "IngestSource",
    "Role",
    "Sink",
    "Source",
    "Task",
    "TaskStatus",
    "Token",
    "Version",
    "format_time",
    "now",
    "state_hash",
    "takes_signal",
]

Role = Literal["admin", "guest"]
ROLES: tuple[Role, ...] = ("admin", "guest")


def takes_signal(allowed_signals: tuple[str, ...] | list[str], signal: str) -> bool:
    """Whether a sink with these ``allowedSignals`` takes the records of an OTLP
    ``signal`` (``logs``, ``metrics``, ``traces``): all of them when none is listed."""
    return not allowed_signals or signal in allowed_signals


def format_time(ns: int) -> str:
    """Nanoseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC)."""
    moment = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns // 1_000_000 % 1000:03d}Z"


def now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC)."""
    return format_time(time.time_ns())


def state_hash(state: dict[str, Any]) -> str:
    """The 16-hex hash of a versioned state (canonical JSON, keys sorted)."""
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(frozen=True)
class Source:
    """A source: an HTTP endpoint receiving events.

    ``settings`` holds this source's own overrides in API form (see
    :mod:`pushstream.catalog.settings`). The versioned part of a source is
    :meth:`state`; the secret is not versioned (a rollback keeps the current one).
    """

    project_id: int
    branch_id: int
    source_id: str
    name: str
    secret: str
    version: Version
    created: Event
    type: str = "http"
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    disabled: Disabled | None = None
    deleted: Event | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled is None

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None

    def state(self) -> dict[str, Any]:
        """The versioned state (what a version stores and its hash covers)."""
        return {
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "settings": dict(self.settings),
            "disabled": self.disabled.to_json() if self.disabled else None,
        }

    def with_state(self, state: dict[str, Any]) -> Source:
        """A copy with the versioned fields taken from ``state`` (rollback)."""
        disabled = state.get("disabled")
        return replace(
            self,
            type=state["type"],
            name=state["name"],
            description=state["description"],
            settings=dict(state.get("settings") or {}),
            disabled=Disabled.from_json(disabled) if disabled else None,
        )


@dataclass(frozen=True)
class Sink:
    """A sink: the mapping of a source's events into the rows of one table.

    ``table`` is the API's ``table`` object: ``{"type": "keboola", "tableId": ...,
    "mapping": {"columns": [...]}}``.
    """

    project_id: int
    branch_id: int
    source_id: str
    sink_id: str
    name: str
    table: dict[str, Any]
    version: Version
    created: Event
    type: str = "table"
    description: str = ""
    allowed_signals: tuple[Signal, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    disabled: Disabled | None = None
    deleted: Event | None = None
    deleted_with_source: bool = False

    @property
    def enabled(self) -> bool:
        return self.disabled is None

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None

    @property
    def table_id(self) -> str:
        return str(self.table.get("tableId", ""))

    @property
    def columns(self) -> list[dict[str, Any]]:
        columns: list[dict[str, Any]] = self.table.get("mapping", {}).get("columns", [])
        return columns

    @property
    def mapping_json(self) -> str:
        """The whole ``table.mapping`` object as JSON: what a storage file records
        (the table's shape and merge strategy), compared by the receiver."""
        return orjson.dumps(self.table.get("mapping", {"columns": self.columns})).decode()

    def state(self) -> dict[str, Any]:
        """The versioned state (what a version stores and its hash covers)."""
        return {
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "table": self.table,
            "allowedSignals": list(self.allowed_signals),
            "settings": dict(self.settings),
            "disabled": self.disabled.to_json() if self.disabled else None,
        }

    def with_state(self, state: dict[str, Any]) -> Sink:
        """A copy with the versioned fields taken from ``state`` (rollback)."""
        disabled = state.get("disabled")
        return replace(
            self,
            type=state["type"],
            name=state["name"],
            description=state["description"],
            table=state["table"],
            allowed_signals=tuple(state.get("allowedSignals") or ()),
            settings=dict(state.get("settings") or {}),
            disabled=Disabled.from_json(disabled) if disabled else None,
        )


@dataclass(frozen=True)
class Task:
    """An asynchronous task of a mutating API call."""

    task_id: str
    type: str
    status: TaskStatus
    created_at: str
    outputs: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None
    duration_ms: int | None = None
    result: str | None = None
    error: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status != "processing"


def hash_token(secret: str) -> str:
    """The stored form of a token secret (every catalog stores this, never the secret).
    Tokens are long random strings, so a plain SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Token:
    """An API token (its secret is never stored, only a hash)."""

    token_id: str
    description: str
    role: Role
    created_at: str
    user_id: str = ""
    user_name: str = ""

    @property
    def can_write(self) -> bool:
        return self.role == "admin"

    def by(self) -> By:
        """The ``by`` block of changes made with this token."""
        return By(
            type="user",
            token_id=self.token_id,
            token_desc=self.description,
            user_id=self.user_id,
            user_name=self.user_name,
        )


@dataclass(frozen=True)
class IngestSource:
    """What the receiver needs to route an event to a source."""

    project_id: int
    branch_id: int
    source_id: str
    secret: str
    enabled: bool
    deleted: bool
    version: int
    #: ``http`` (``/stream/...``) or ``otlp`` (``/otlp/...``): the endpoint it answers on.
    type: str = "http"

    @property
    def state(self) -> Literal["enabled", "disabled", "deleted"]:
        if self.deleted:
            return "deleted"
        return "enabled" if self.enabled else "disabled"


@dataclass(frozen=True)
class IngestSink:
    """What the receiver and the storage pipeline need about a sink.

    ``columns_json`` is the ``table.mapping.columns`` array as JSON (ready for
    :class:`pushstream.Mapping`), ``mapping_json`` the whole ``table.mapping``
    object (what storage files record, :attr:`Sink.mapping_json`); ``settings``
    are the effective settings in typed form (durations in seconds, sizes in bytes).
    """

    project_id: int
    branch_id: int
    source_id: str
    sink_id: str
    table_id: str
    columns_json: str
    enabled: bool
    version: int
    settings: dict[str, Any]
    mapping_json: str = ""
    #: The OTLP signals the sink takes (all when empty; see :func:`takes_signal`).
    allowed_signals: tuple[str, ...] = ()
