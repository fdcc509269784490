"""How the catalog's entities are stored: the JSON documents of sources, sinks,
tasks and tokens, and who owns a task. Shared by every implementation of the
catalog (:mod:`pushstream.catalog.sqlite`, :mod:`pushstream.catalog.postgresql`),
so that both store exactly the same documents."""

from __future__ import annotations

import dataclasses
import os
import socket
import string
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import msgspec
import orjson

from pushstream.catalog import settings as settings_registry
from pushstream.catalog.models import IngestSink, IngestSource, Sink, Source, Task, Token

ALNUM = string.ascii_letters + string.digits
_HOST = socket.gethostname()


def dumps(value: Any) -> bytes:
    """JSON of a stored document."""
    return orjson.dumps(value)


def owner() -> str:
    """The owner recorded with a task this process creates: ``host:pid``."""
    return f"{_HOST}:{os.getpid()}"


def owner_alive_here(task_owner: str) -> bool:
    """Whether the process owning a task runs, as far as this machine can tell
    (the SQLite catalog: every process of an installation is on one machine)."""
    host, _, pid = task_owner.rpartition(":")
    if host != _HOST or not pid.isdigit():
        # Another machine's process cannot be checked; assume it is alive.
        return True
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Entities are stored as the JSON of their records: camelCase keys (the API's) made from the field
# names, and by, version and events in their wire shapes (pushstream.wire). Only the task's duration
# is stored under another name (Keboola's).
_STORED_NAMES = {"duration_ms": "duration"}
R = TypeVar("R", Source, Sink, Task)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _stored_names(record_type: type[Any]) -> tuple[tuple[str, str], ...]:
    """(field name, stored key) of a record type."""
    return tuple((f.name, _STORED_NAMES.get(f.name) or _camel(f.name)) for f in dataclasses.fields(record_type))


_STRUCT_ENCODER = msgspec.json.Encoder()
_STORED_KEYS = {record_type: _stored_names(record_type) for record_type in (Source, Sink, Task)}


def _to_data(record: Source | Sink | Task) -> bytes:
    # By attribute: a record made by msgspec.convert holds its defaults on the class only.
    return _STRUCT_ENCODER.encode({key: getattr(record, name) for name, key in _STORED_KEYS[type(record)]})


def _from_data(record_type: type[R], data: bytes) -> R:
    stored = orjson.loads(data)
    values = {name: stored[key] for name, key in _STORED_KEYS[record_type] if stored.get(key) is not None}
    return msgspec.convert(values, record_type)


def source_to_data(source: Source) -> bytes:
    return _to_data(source)


def source_from_data(data: bytes) -> Source:
    return _from_data(Source, data)


def sink_to_data(sink: Sink) -> bytes:
    return _to_data(sink)


def sink_from_data(data: bytes) -> Sink:
    return _from_data(Sink, data)


def task_to_data(task: Task) -> bytes:
    return _to_data(task)


def task_from_data(data: bytes) -> Task:
    task = _from_data(Task, data)
    if not task.type.startswith("api."):
        # Tasks stored before the types carried Keboola's "api." prefix.
        task = replace(task, type=f"api.{task.type}")
    return task


def token_from_row(token_id: str, role: str, data: bytes) -> Token:
    d = orjson.loads(data)
    return Token(
        token_id=token_id,
        description=d.get("description", ""),
        role="admin" if role == "admin" else "guest",
        created_at=d.get("createdAt", ""),
        user_id=d.get("userId", ""),
        user_name=d.get("userName", ""),
    )


def parse_time_ns(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000) * 1_000_000


def ingest_source(source: Source) -> IngestSource:
    """What the receiver needs of a source."""
    return IngestSource(
        project_id=source.project_id,
        branch_id=source.branch_id,
        source_id=source.source_id,
        secret=source.secret,
        enabled=source.enabled,
        deleted=source.is_deleted,
        version=source.version.number,
        type=source.type,
    )


def ingest_sink(sink: Sink, operator_settings: Any, source_settings: Any) -> IngestSink:
    """What the receiver needs of a sink, with its effective settings."""
    return IngestSink(
        project_id=sink.project_id,
        branch_id=sink.branch_id,
        source_id=sink.source_id,
        sink_id=sink.sink_id,
        table_id=sink.table_id,
        columns_json=orjson.dumps(sink.columns).decode(),
        mapping_json=sink.mapping_json,
        allowed_signals=sink.allowed_signals,
        enabled=sink.enabled,
        version=sink.version.number,
        settings=settings_registry.resolve(operator_settings, source_settings, sink.settings),
    )
