"""Store records → the Stream API's JSON shapes (Keboola's field names and order)."""

from __future__ import annotations

from typing import Any

from pushstream.api.service import ConfigService
from pushstream.store.models import Sink, Source, Task

#: What a guest token sees in place of a source's secret in its ingest URL.
HIDDEN_SECRET = "********"


def source_json(service: ConfigService, source: Source, *, reveal_secret: bool = True) -> dict[str, Any]:
    """A source; without ``reveal_secret`` (a guest token) the secret in ``http.url`` is :data:`HIDDEN_SECRET`."""
    url = service.ingest_url(source) if reveal_secret else service.ingest_url(source, secret=HIDDEN_SECRET)
    out: dict[str, Any] = {
        "projectId": source.project_id,
        "branchId": source.branch_id,
        "sourceId": source.source_id,
        "type": source.type,
        "name": source.name,
        "description": source.description,
        "http": {"url": url},
        "version": source.version.to_json(),
        "created": source.created.to_json(),
    }
    if source.disabled is not None:
        out["disabled"] = source.disabled.to_json()
    if source.deleted is not None:
        out["deleted"] = source.deleted.to_json()
    return out


def sink_json(sink: Sink) -> dict[str, Any]:
    out: dict[str, Any] = {
        "projectId": sink.project_id,
        "branchId": sink.branch_id,
        "sourceId": sink.source_id,
        "sinkId": sink.sink_id,
        "type": sink.type,
        "name": sink.name,
        "description": sink.description,
    }
    if sink.allowed_signals:
        out["allowedSignals"] = list(sink.allowed_signals)
    out["table"] = sink.table
    out["version"] = sink.version.to_json()
    out["created"] = sink.created.to_json()
    if sink.disabled is not None:
        out["disabled"] = sink.disabled.to_json()
    if sink.deleted is not None:
        out["deleted"] = sink.deleted.to_json()
    return out


def task_json(service: ConfigService, task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {
        "taskId": task.task_id,
        "type": task.type,
        "url": f"{service.config.api_url}/v1/tasks/{task.task_id}",
        "status": task.status,
        "isFinished": task.is_finished,
        "createdAt": task.created_at,
    }
    if task.finished_at is not None:
        out["finishedAt"] = task.finished_at
    if task.duration_ms is not None:
        out["duration"] = task.duration_ms
    if task.result is not None:
        out["result"] = task.result
    if task.error is not None:
        out["error"] = task.error
    # Keboola's tasks carry their outputs only once they have finished.
    if task.outputs and task.is_finished:
        out["outputs"] = task.outputs
    return out


def page_json(limit: int, total: int, after_id: str, last_id: str) -> dict[str, Any]:
    return {"limit": limit, "totalCount": total, "afterId": after_id, "lastId": last_id}
