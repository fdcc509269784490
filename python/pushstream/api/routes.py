"""The ``/v1`` endpoints of the Stream API (a Flask blueprint).

Every ``/v1/branches/...`` and ``/v1/tasks/...`` call needs the header
``X-StorageApi-Token``: missing → 400 ``stream.api.missingField``, unknown → 401
``stream.api.unauthorized``, a guest token on a write → 403 ``stream.api.forbidden``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from werkzeug.routing import BaseConverter

from pushstream import wire
from pushstream.api import api_services
from pushstream.api import validation as v
from pushstream.api.operator import MAX_WAIT as MAX_FLUSH_WAIT
from pushstream.api.operator import get_flush_handler, get_nodes_provider
from pushstream.api.service import ConfigService, version_key
from pushstream.api.statistics import get_statistics_provider, sink_statistics
from pushstream.catalog.models import By, Source, Task, Token, hash_token
from pushstream.errors import BadRequestError, ForbiddenError, UnauthorizedError

TOKEN_HEADER = "X-StorageApi-Token"
# The admin token of the server configuration appears in "by" blocks as token "0" of user "0" ("admin").
CONFIG_TOKEN = Token("0", "Admin token of the server configuration", "admin", "", user_id="0", user_name="admin")

# Configuration payloads are small; a test body is one record (the receiver's upper bound).
MAX_BODY_SIZE = 4 * 1024 * 1024

bp = Blueprint("stream_api", __name__)

_SOURCE = "/v1/branches/<branch>/sources/<entity:source_id>"
_SINK = _SOURCE + "/sinks/<entity:sink_id>"


class EntityIdConverter(BaseConverter):
    """A source or sink id in a path: any segment but ``deleted``, which names the
    list of deleted entities (so ``PATCH .../sources/deleted`` is a 405, not an update)."""

    regex = r"(?!(?:deleted)$)[^/]+"


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` (bodies of :mod:`pushstream.wire`, or plain values) as JSON."""
    return Response(wire.encode(body), status=status, mimetype="application/json")


def route(rule: str, methods: list[str]) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A route without Flask's automatic OPTIONS answer (OPTIONS is a 405 like any other undocumented method)."""

    def register(fn: Callable[..., Response]) -> Callable[..., Response]:
        bp.add_url_rule(rule, view_func=fn, methods=methods, provide_automatic_options=False)
        return fn

    return register


def service() -> ConfigService:
    return api_services(current_app).service


def _by() -> By:
    token: Token = g.pushstream_token
    return token.by()


def _source_body(source: Source) -> wire.Source:
    """A source as the caller may see it: a guest token gets the ingest URL without its secret."""
    token: Token = g.pushstream_token
    svc = service()
    secret = source.secret if token.can_write else wire.HIDDEN_SECRET
    if source.type == "otlp":
        return wire.source(source, svc.otlp_base_url(source), secret=secret)
    return wire.source(source, svc.ingest_url(source, secret=secret))


@bp.before_request
def authenticate() -> None:
    """Resolves the token of every ``/v1/branches`` and ``/v1/tasks`` call."""
    request.max_content_length = MAX_BODY_SIZE
    path = request.path
    if not (path.startswith(("/v1/branches/", "/v1/tasks/")) or path == "/v1/nodes"):
        return
    secret = request.headers.get(TOKEN_HEADER, "")
    if not secret:
        raise v.missing(f"header.{TOKEN_HEADER}")
    services = api_services(current_app)
    token: Token | None = None
    configured = services.config.api_token
    if configured and hmac.compare_digest(hash_token(secret), hash_token(configured)):
        token = CONFIG_TOKEN
    else:
        token = services.catalog.authenticate(secret)
    if token is None:
        raise UnauthorizedError("The token is not valid.")
    is_read = request.method in ("GET", "HEAD") or request.endpoint == "stream_api.test_source"
    if not is_read and not token.can_write:
        raise ForbiddenError(f'The token "{token.token_id}" may only read; this operation needs an admin token.')
    g.pushstream_token = token


def _branch(branch: str) -> int:
    return service().branch_id(v.parse_branch(branch))


def _ids(branch: str, source_id: str, sink_id: str | None = None) -> tuple[int, str, str]:
    v.check_path_id(source_id, "sourceId")
    if sink_id is not None:
        v.check_path_id(sink_id, "sinkId")
    return _branch(branch), source_id, sink_id or ""


def _paging() -> tuple[str, int]:
    return request.args.get("afterId", ""), v.parse_limit(request.args.get("limit"))


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise BadRequestError("The request body is missing.", error=v.MISSING_FIELD)
    return v.parse_json_body(raw)


def _task_body(task: Task) -> wire.Task:
    return wire.task(task, f"{service().config.api_url}/v1/tasks/{task.task_id}")


def _task(task: Task) -> Response:
    return json_response(_task_body(task), 202)


# Service.


@route("/v1/tasks/<path:task_id>", ["GET"])
def get_task(task_id: str) -> Response:
    return json_response(_task_body(service().get_task(task_id)))


# Sources.


@route("/v1/branches/<branch>/sources", ["GET"])
def list_sources(branch: str) -> Response:
    return _sources_page(branch, deleted=False)


@route("/v1/branches/<branch>/sources/deleted", ["GET"])
def list_deleted_sources(branch: str) -> Response:
    return _sources_page(branch, deleted=True)


def _sources_page(branch: str, *, deleted: bool) -> Response:
    branch_id = _branch(branch)
    after_id, limit = _paging()
    sources, total = service().list_sources(branch_id, deleted=deleted, after_id=after_id, limit=limit)
    svc = service()
    return json_response(
        wire.SourcesList(
            project_id=svc.config.project_id,
            branch_id=branch_id,
            page=wire.page(limit, total, after_id, sources[-1].source_id if sources else ""),
            sources=[_source_body(s) for s in sources],
        )
    )


@route("/v1/branches/<branch>/sources", ["POST"])
def create_source(branch: str) -> Response:
    branch_id = _branch(branch)
    return _task(service().create_source(branch_id, _body(), _by()))


@route(_SOURCE, ["GET"])
def get_source(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return json_response(_source_body(service().get_source(branch_id, source_id)))


@route(_SOURCE, ["PATCH"])
def update_source(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return _task(service().update_source(branch_id, source_id, _body(), _by()))


@route(_SOURCE, ["DELETE"])
def delete_source(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    cascade = v.parse_query_bool(request.args.get("cascade"), "cascade")
    return _task(service().delete_source(branch_id, source_id, _by(), cascade=cascade))


@route(_SOURCE + "/enable", ["PUT"])
def enable_source(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return _task(service().set_source_enabled(branch_id, source_id, True, _by()))


@route(_SOURCE + "/disable", ["PUT"])
def disable_source(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return _task(service().set_source_enabled(branch_id, source_id, False, _by()))


@route(_SOURCE + "/undelete", ["PUT"])
def undelete_source(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return _task(service().undelete_source(branch_id, source_id, _by()))


@route(_SOURCE + "/rotate-secret", ["POST"])
def rotate_source_secret(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return json_response(_source_body(service().rotate_secret(branch_id, source_id)))


@route(_SOURCE + "/settings", ["GET"])
def get_source_settings(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return json_response({"settings": service().source_settings(branch_id, source_id)})


@route(_SOURCE + "/settings", ["PATCH"])
def update_source_settings(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return _task(service().patch_source_settings(branch_id, source_id, _body(), _by()))


@route(_SOURCE + "/test", ["POST"])
def test_source(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    signal = request.args.get("signal")
    if signal and signal not in wire.SIGNALS:
        raise v.invalid_enum("signal", signal, wire.SIGNALS)
    # The token is the caller's credential, not part of the event.
    headers = [(k, val) for k, val in request.headers.items() if k.lower() != TOKEN_HEADER.lower()]
    rows = service().test_source(
        branch_id, source_id, request.get_data(cache=False), headers, request.remote_addr or "", signal=signal
    )
    return json_response(
        wire.TestResult(
            project_id=service().config.project_id,
            branch_id=branch_id,
            source_id=source_id,
            tables=[
                wire.TestResultTable(
                    sink_id=sink.sink_id,
                    table_id=sink.table_id,
                    rows=[
                        wire.TestResultRow(
                            columns=[
                                wire.TestResultColumn(name=c["name"], value=val)
                                for c, val in zip(sink.columns, row, strict=True)
                            ]
                        )
                    ],
                )
                for sink, row in rows
            ],
        )
    )


@route(_SOURCE + "/statistics/clear", ["DELETE"])
def clear_source_statistics(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    service().get_source(branch_id, source_id)
    get_statistics_provider(current_app).clear_source(branch_id, source_id)
    return Response(status=200)


# Versions of sources and sinks.


@route(_SOURCE + "/versions", ["GET"])
def list_source_versions(branch: str, source_id: str) -> Response:
    return _versions_page(*_ids(branch, source_id))


@route(_SINK + "/versions", ["GET"])
def list_sink_versions(branch: str, source_id: str, sink_id: str) -> Response:
    return _versions_page(*_ids(branch, source_id, sink_id))


def _versions_page(branch_id: int, source_id: str, sink_id: str) -> Response:
    after_id, limit = _paging()
    versions, total = service().list_versions(branch_id, source_id, sink_id, after_id=after_id, limit=limit)
    return json_response(
        wire.EntityVersions(
            versions=versions,
            page=wire.page(limit, total, after_id, version_key(versions[-1].number) if versions else ""),
        )
    )


@route(_SOURCE + "/versions/<number>", ["GET"])
def get_source_version(branch: str, source_id: str, number: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    version = service().get_version(branch_id, source_id, "", v.parse_version_number(number))
    return json_response(version)


@route(_SINK + "/versions/<number>", ["GET"])
def get_sink_version(branch: str, source_id: str, sink_id: str, number: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    version = service().get_version(branch_id, source_id, sink_id, v.parse_version_number(number))
    return json_response(version)


@route(_SOURCE + "/versions/<number>/rollback", ["PUT"])
def rollback_source(branch: str, source_id: str, number: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return _task(service().rollback_source(branch_id, source_id, v.parse_version_number(number), _by()))


@route(_SINK + "/versions/<number>/rollback", ["PUT"])
def rollback_sink(branch: str, source_id: str, sink_id: str, number: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return _task(service().rollback_sink(branch_id, source_id, sink_id, v.parse_version_number(number), _by()))


# Sinks.


@route(_SOURCE + "/sinks", ["GET"])
def list_sinks(branch: str, source_id: str) -> Response:
    return _sinks_page(branch, source_id, deleted=False)


@route(_SOURCE + "/sinks/deleted", ["GET"])
def list_deleted_sinks(branch: str, source_id: str) -> Response:
    return _sinks_page(branch, source_id, deleted=True)


def _sinks_page(branch: str, source_id: str, *, deleted: bool) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    after_id, limit = _paging()
    sinks, total = service().list_sinks(branch_id, source_id, deleted=deleted, after_id=after_id, limit=limit)
    return json_response(
        wire.SinksList(
            project_id=service().config.project_id,
            branch_id=branch_id,
            source_id=source_id,
            page=wire.page(limit, total, after_id, sinks[-1].sink_id if sinks else ""),
            sinks=[wire.sink(s) for s in sinks],
        )
    )


@route(_SOURCE + "/sinks", ["POST"])
def create_sink(branch: str, source_id: str) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id)
    return _task(service().create_sink(branch_id, source_id, _body(), _by()))


@route(_SINK, ["GET"])
def get_sink(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return json_response(wire.sink(service().get_sink(branch_id, source_id, sink_id)))


@route(_SINK, ["PATCH"])
def update_sink(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return _task(service().update_sink(branch_id, source_id, sink_id, _body(), _by()))


@route(_SINK, ["DELETE"])
def delete_sink(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return _task(service().delete_sink(branch_id, source_id, sink_id, _by()))


@route(_SINK + "/enable", ["PUT"])
def enable_sink(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return _task(service().set_sink_enabled(branch_id, source_id, sink_id, True, _by()))


@route(_SINK + "/disable", ["PUT"])
def disable_sink(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return _task(service().set_sink_enabled(branch_id, source_id, sink_id, False, _by()))


@route(_SINK + "/undelete", ["PUT"])
def undelete_sink(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return _task(service().undelete_sink(branch_id, source_id, sink_id, _by()))


@route(_SINK + "/settings", ["GET"])
def get_sink_settings(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return json_response({"settings": service().sink_settings(branch_id, source_id, sink_id)})


@route(_SINK + "/settings", ["PATCH"])
def update_sink_settings(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    return _task(service().patch_sink_settings(branch_id, source_id, sink_id, _body(), _by()))


@route(_SINK + "/statistics/total", ["GET"])
def sink_statistics_total(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    service().get_sink(branch_id, source_id, sink_id)
    return json_response(get_statistics_provider(current_app).sink_totals(branch_id, source_id, sink_id))


@route(_SINK + "/statistics/files", ["GET"])
def sink_statistics_files(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    failed_only = v.parse_query_bool(request.args.get("failedFiles"), "failedFiles")
    # Beyond Keboola: ``order=eventTime`` lists files by their last event time.
    order = request.args.get("order") or wire.FILE_ORDERS[0]
    if order not in wire.FILE_ORDERS:
        raise v.invalid_enum("order", order, wire.FILE_ORDERS)
    service().get_sink(branch_id, source_id, sink_id)
    files = get_statistics_provider(current_app).sink_files(
        branch_id, source_id, sink_id, failed_only=failed_only, by_event_time=order == "eventTime"
    )
    return json_response(wire.SinkStatisticsFilesResult(files=files))


@route(_SINK + "/statistics/clear", ["DELETE"])
def clear_sink_statistics(branch: str, source_id: str, sink_id: str) -> Response:
    branch_id, source_id, sink_id = _ids(branch, source_id, sink_id)
    service().get_sink(branch_id, source_id, sink_id)
    get_statistics_provider(current_app).clear_sink(branch_id, source_id, sink_id)
    return Response(status=200)


# Operator (beyond Keboola): import what waits now.


def _flush(branch: str, source_id: str, sink_id: str | None) -> Response:
    branch_id, source_id, _ = _ids(branch, source_id, sink_id)
    service().get_source(branch_id, source_id)
    if sink_id is not None:
        service().get_sink(branch_id, source_id, sink_id)
    wait = v.parse_flush_wait(request.args.get("wait"), MAX_FLUSH_WAIT)
    return json_response(get_flush_handler(current_app)(branch_id, source_id, sink_id, wait))


@route("/v1/nodes", ["GET"])
def list_nodes() -> Response:
    return json_response(get_nodes_provider(current_app)())


@route(_SOURCE + "/flush", ["POST"])
def flush_source(branch: str, source_id: str) -> Response:
    return _flush(branch, source_id, None)


@route(_SINK + "/flush", ["POST"])
def flush_sink(branch: str, source_id: str, sink_id: str) -> Response:
    return _flush(branch, source_id, sink_id)


# Aggregation (one call for a UI: sources with their sinks and statistics).


@route("/v1/branches/<branch>/aggregation/sources", ["GET"])
def aggregation_sources(branch: str) -> Response:
    branch_id = _branch(branch)
    after_id, limit = _paging()
    svc = service()
    sources, total = svc.list_sources(branch_id, after_id=after_id, limit=limit)
    out = []
    for source in sources:
        sinks, _ = svc.catalog.page_sinks(branch_id, source.source_id)
        aggregated = [
            wire.aggregated_sink(sink, sink_statistics(current_app, branch_id, source.source_id, sink.sink_id))
            for sink in sinks
        ]
        out.append(wire.aggregated_source(_source_body(source), aggregated))
    return json_response(
        wire.AggregatedSourcesResult(
            project_id=svc.config.project_id,
            branch_id=branch_id,
            page=wire.page(limit, total, after_id, sources[-1].source_id if sources else ""),
            sources=out,
        )
    )
