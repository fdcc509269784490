"""Operator endpoints beyond Keboola's API: ``POST .../flush`` closes the writing
files of a source (or one sink) and imports everything that waits now.

The storage pipeline registers the handler (:func:`set_flush_handler`); the
routes live with the others in :mod:`pushstream.api.routes`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from pushstream import wire
from pushstream.errors import ApiError

_EXTENSION_KEY = "pushstream.flush"

#: ``handler(branch_id, source_id, sink_id or None, wait_seconds) -> response body``
FlushHandler = Callable[[int, str, str | None, float], wire.FlushResult]

#: Longest a flush request waits for its imports.
MAX_WAIT = 600.0


def set_flush_handler(app: Flask, handler: FlushHandler) -> None:
    app.extensions[_EXTENSION_KEY] = handler


def get_flush_handler(app: Flask) -> FlushHandler:
    handler: FlushHandler | None = app.extensions.get(_EXTENSION_KEY)
    if handler is None:
        raise ApiError("Flushing is not available in this server.", error="stream.api.notImplemented", status_code=501)
    return handler
