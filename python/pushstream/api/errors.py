"""Keboola's error JSON for every error of the app, unknown paths and methods included:
``{"statusCode": N, "error": "stream.api.<name>", "message": "..."}``; 5xx answers
add an ``exceptionId`` that is also logged with the traceback."""

from __future__ import annotations

import logging
import re
import secrets

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from pushstream.errors import ApiError
from pushstream.storage.space import is_disk_full

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait when the data dir's disk is full.
DISK_FULL_RETRY_AFTER = 5


def _respond(body: dict[str, object], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json", headers=headers)


def _exception_id() -> str:
    return f"pushstream-{secrets.token_hex(8)}"


def handle_api_error(exc: ApiError) -> Response:
    body = exc.to_json()
    if exc.status_code >= 500:
        body["exceptionId"] = exception_id = _exception_id()
        log.error("%s %s failed (%s): %s", request.method, request.path, exception_id, exc.message)
    return _respond(body, exc.status_code)


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    if isinstance(exc, NotFound):
        body: dict[str, object] = {
            "statusCode": 404,
            "error": "stream.api.endpointNotFound",
            "message": f'No endpoint found for path "{request.path}".',
        }
    elif isinstance(exc, MethodNotAllowed):
        body = {
            "statusCode": 405,
            "error": "stream.api.methodNotAllowed",
            "message": f'Method "{request.method}" is not allowed for "{request.path}".',
        }
    elif isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        body = {
            "statusCode": 413,
            "error": "stream.api.bodyTooLarge",
            "message": f"The request body is too large (at most {limit} bytes)."
            if limit
            else "The request body is too large.",
        }
    else:
        name = re.sub(r"[^A-Za-z0-9]+", " ", exc.name or "error").title().replace(" ", "")
        body = {
            "statusCode": status,
            "error": f"stream.api.{name[:1].lower()}{name[1:]}",
            "message": exc.description or exc.name,
        }
    if status >= 500:
        body["exceptionId"] = _exception_id()
    headers = dict(exc.get_headers())
    headers.pop("Content-Type", None)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return _respond(body, status, headers)


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    exception_id = _exception_id()
    if is_disk_full(exc):
        # Clears by itself once space is freed: the client retries; no paths in the answer.
        log.warning("%s %s failed (%s): the disk is full: %s", request.method, request.path, exception_id, exc)
        return _respond(
            {
                "statusCode": 503,
                "error": "stream.api.serviceUnavailable",
                "message": "The server's disk is full, retry later.",
                "exceptionId": exception_id,
            },
            503,
            {"Retry-After": str(DISK_FULL_RETRY_AFTER)},
        )
    log.exception("%s %s failed (%s)", request.method, request.path, exception_id)
    return _respond(
        {
            "statusCode": 500,
            "error": "stream.api.internalError",
            "message": f"Internal server error (exceptionId {exception_id}).",
            "exceptionId": exception_id,
        },
        500,
    )


def register(app: Flask) -> None:
    """Installs the handlers on the whole app."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
