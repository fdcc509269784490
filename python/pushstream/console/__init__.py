"""The web console: a small static page under ``/console`` that calls the Stream API
(``/v1``) from the browser.

The page and its assets (``static/``: one HTML page, one script, one stylesheet,
shipped in the package, no build step, nothing from a CDN) hold no data, so they
are served without a token. Everything the console shows or changes goes through
``/v1`` with the token the user logs in with (kept in the tab's
``sessionStorage``, sent as ``X-StorageApi-Token``), so the console can do exactly
what that token may do through the API.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory
from werkzeug.wrappers import Response as BaseResponse

#: Where the page and its assets are, inside the installed package.
STATIC_DIR = Path(__file__).parent / "static"

bp = Blueprint("console", __name__)


def page() -> Response:
    # No caching of the page itself, so an upgraded server's page and assets match.
    response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


def slash() -> BaseResponse:
    # Relative, so that it works behind a reverse proxy with a path prefix too.
    return redirect("../console", code=308)


def asset(filename: str) -> Response:
    return send_from_directory(STATIC_DIR, filename, max_age=0)


# GET only: like the documentation, no automatic OPTIONS answer.
bp.add_url_rule("/console", "page", page, methods=["GET"], provide_automatic_options=False)
bp.add_url_rule("/console/", "slash", slash, methods=["GET"], provide_automatic_options=False)
bp.add_url_rule("/console/<path:filename>", "asset", asset, methods=["GET"], provide_automatic_options=False)
