"""Operator endpoints beyond Keboola's API: ``POST .../flush`` closes the writing
files of a source (or one sink) and imports everything that waits now;
``GET /v1/nodes`` lists the nodes of the installation.

The storage pipeline registers the handlers (:func:`set_flush_handler`,
:func:`set_nodes_provider`); the routes live with the others in
:mod:`pushstream.api.routes`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from pushstream import wire
from pushstream.errors import ApiError

_EXTENSION_KEY = "pushstream.flush"
_NODES_KEY = "pushstream.nodes"

#: ``provider() -> response body`` of ``GET /v1/nodes``.
NodesProvider = Callable[[], wire.NodesResult]

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


def set_nodes_provider(app: Flask, provider: NodesProvider) -> None:
    app.extensions[_NODES_KEY] = provider


def get_nodes_provider(app: Flask) -> NodesProvider:
    provider: NodesProvider | None = app.extensions.get(_NODES_KEY)
    if provider is None:
        raise ApiError(
            "Listing nodes is not available in this server.", error="stream.api.notImplemented", status_code=501
        )
    return provider
