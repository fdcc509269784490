"""``GET /metrics``: the Prometheus text of :mod:`pushstream.metrics`, open or
behind ``--metrics-token``."""

from __future__ import annotations

import hmac

import orjson
from flask import Flask, Response, request

from pushstream.metrics import CONTENT_TYPE, CoreMirror
from pushstream.storage.base import StorageState


def register_metrics_endpoint(app: Flask, mirror: CoreMirror, storage: StorageState, token: str | None) -> None:
    """Adds ``GET /metrics`` to ``app`` (the values of every process, this one's
    copied from ``mirror`` first); with ``token``, a scrape must send
    ``Authorization: Bearer <token>`` (401 otherwise)."""
    expected = f"Bearer {token}".encode() if token else None

    def scrape() -> Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                body = orjson.dumps(
                    {"statusCode": 401, "error": "stream.api.unauthorized", "message": "Invalid metrics token."}
                )
                return Response(body, status=401, mimetype="application/json", headers={"WWW-Authenticate": "Bearer"})
        mirror.tick()
        return Response(mirror.metrics.exposition(storage), content_type=CONTENT_TYPE)

    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"], provide_automatic_options=False)
