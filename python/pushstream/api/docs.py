"""Service endpoints: ``/`` (→ ``/v1``), ``/v1``, ``/health-check``, and the
documentation under ``/v1/documentation`` — the OpenAPI documents and a Swagger UI
page whose files are served from the ``swagger-ui-bundle`` package (no CDN, no
call to Swagger's online validator). The documents' ``servers`` entry is
``--api-public-url``, or else the host the request came to."""

from __future__ import annotations

import html
from pathlib import Path

import orjson
from flask import Blueprint, Response, current_app, redirect, request, send_from_directory
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
from werkzeug.wrappers import Response as BaseResponse

from pushstream.api import api_services, openapi

bp = Blueprint("stream_docs", __name__)

_UI_DIR = Path(swagger_ui_path)
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="documentation/swagger-ui/swagger-ui.css">
  <link rel="icon" type="image/png" href="documentation/swagger-ui/favicon-32x32.png">
  <style>body {{ margin: 0; }}</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="documentation/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="documentation/swagger-ui/swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = function () {{
      window.ui = SwaggerUIBundle({{
        url: "documentation/openapi3.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
        validatorUrl: null,
      }});
    }};
  </script>
</body>
</html>
"""


def _config_api_url() -> str:
    return api_services(current_app).config.api_url


def _documented_api_url() -> str:
    """The API's public URL: ``--api-public-url`` when given, else the scheme and
    host the request came to (so the documentation works by any host name)."""
    config = api_services(current_app).config
    if config.api_public_url:
        return config.api_public_url
    return request.host_url.rstrip("/")


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), mimetype="application/json")


def _no_options(rule: str, endpoint: str, view: object) -> None:
    bp.add_url_rule(rule, endpoint, view, methods=["GET"], provide_automatic_options=False)  # type: ignore[arg-type]


def root() -> BaseResponse:
    return redirect("/v1", code=301)


def index() -> Response:
    return _json({"api": "stream", "documentation": f"{_config_api_url()}/v1/documentation"})


def health_check() -> Response:
    try:
        api_services(current_app).catalog.revision()
    except Exception:
        current_app.logger.exception("health check: the configuration store cannot be read")
        body = {
            "statusCode": 503,
            "error": "stream.api.unavailable",
            "message": "The configuration store cannot be read.",
        }
        return Response(orjson.dumps(body), status=503, mimetype="application/json")
    # Keboola's answer to the letter: goa writes a text/plain string result as is, without a newline.
    return Response("OK", mimetype="text/plain")


def page() -> Response:
    # Relative asset URLs: the page works behind a reverse proxy with a path prefix.
    return Response(_PAGE.format(title=html.escape("pushstream Stream API")), mimetype="text/html")


def ui_file(filename: str) -> Response:
    return send_from_directory(_UI_DIR, filename, max_age=86400)


def openapi3_json() -> Response:
    return _json(openapi.openapi3(_documented_api_url()))


def openapi3_yaml() -> Response:
    return Response(openapi.to_yaml(openapi.openapi3(_documented_api_url())), mimetype="application/yaml")


def openapi2_json() -> Response:
    return _json(openapi.to_swagger2(openapi.openapi3(_documented_api_url())))


def openapi2_yaml() -> Response:
    return Response(
        openapi.to_yaml(openapi.to_swagger2(openapi.openapi3(_documented_api_url()))), mimetype="application/yaml"
    )


_no_options("/", "root", root)
_no_options("/v1", "index", index)
_no_options("/health-check", "health_check", health_check)
_no_options("/v1/documentation", "page", page)
_no_options("/v1/documentation/swagger-ui/<path:filename>", "ui_file", ui_file)
_no_options("/v1/documentation/openapi3.json", "openapi3_json", openapi3_json)
_no_options("/v1/documentation/openapi3.yaml", "openapi3_yaml", openapi3_yaml)
_no_options("/v1/documentation/openapi.json", "openapi_json", openapi2_json)
_no_options("/v1/documentation/openapi.yaml", "openapi_yaml", openapi2_yaml)
