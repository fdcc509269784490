"""Service endpoints, documentation, and the error JSON of unknown paths, methods and failures."""

from __future__ import annotations

import orjson
import yaml
from apitest import Api, error
from flask import Flask

from pushstream.api import api_services


def test_root_redirects_to_v1(api: Api) -> None:
    response = api.get("/", token="")
    assert response.status_code == 301
    assert response.headers["Location"] == "/v1"


def test_v1_index(api: Api) -> None:
    response = api.get("/v1", token="")
    assert response.status_code == 200
    assert response.json == {"api": "stream", "documentation": "http://127.0.0.1:8000/v1/documentation"}


def test_public_urls_come_from_config(tmp_path: object) -> None:
    from pathlib import Path

    from apitest import make_app

    from pushstream.app import close_app

    app = make_app(
        Path(str(tmp_path)) / "d",
        api_public_url="https://stream.example.com/",
        source_public_url="https://in.example.com",
    )
    try:
        client = Api(app)
        assert client.get("/v1").json == {
            "api": "stream",
            "documentation": "https://stream.example.com/v1/documentation",
        }
        source = client.create_source("S")
        assert source["http"]["url"].startswith("https://in.example.com/stream/1/s/")
        task = client.run("PUT", "/v1/branches/default/sources/s/disable")
        assert task["url"].startswith("https://stream.example.com/v1/tasks/api.disable.source/1/s/")
        assert task["outputs"]["url"] == "https://stream.example.com/v1/branches/1/sources/s"
    finally:
        close_app(app)


def test_health_check(api: Api) -> None:
    response = api.get("/health-check", token="")
    assert response.status_code == 200
    assert response.data == b"OK"
    assert response.mimetype == "text/plain"


def test_health_check_fails_when_the_catalog_is_broken(app: Flask) -> None:
    api = Api(app)

    def broken() -> int:
        raise OSError("disk gone")

    api_services(app).catalog.revision = broken  # type: ignore[method-assign]
    response = api.get("/health-check")
    assert response.status_code == 503
    assert response.json == error(503, "unavailable", "The configuration store cannot be read.")


def test_unknown_path_is_endpoint_not_found(api: Api) -> None:
    for path in ("/nope", "/v1/", "/v1/branches", "/v1/branches/default/unknown", "/v1/tasks/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json == error(404, "endpointNotFound", f'No endpoint found for path "{path}".')


def test_unknown_method_is_405(api: Api) -> None:
    response = api.post("/v1")
    assert response.status_code == 405
    assert response.json == error(405, "methodNotAllowed", 'Method "POST" is not allowed for "/v1".')
    assert response.headers["Allow"] == "GET, HEAD"
    response = api.request("OPTIONS", "/v1/branches/default/sources")
    assert response.status_code == 405
    assert response.json == error(
        405, "methodNotAllowed", 'Method "OPTIONS" is not allowed for "/v1/branches/default/sources".'
    )
    response = api.put("/v1/branches/default/sources/x")
    assert response.status_code == 405
    # The lists of deleted entities answer only GET, like any other list.
    for path in ("/v1/branches/default/sources/deleted", "/v1/branches/default/sources/x/sinks/deleted"):
        for method in ("PATCH", "DELETE"):
            response = api.request(method, path)
            assert response.status_code == 405
            assert response.json == error(405, "methodNotAllowed", f'Method "{method}" is not allowed for "{path}".')
            assert response.headers["Allow"] == "GET, HEAD"


def test_unexpected_exception_is_500_with_exception_id(app: Flask) -> None:
    api = Api(app)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    api_services(app).catalog.page_sources = boom  # type: ignore[method-assign]
    response = api.get("/v1/branches/default/sources")
    assert response.status_code == 500
    body = response.json
    assert body is not None
    exception_id = body.pop("exceptionId")
    assert exception_id.startswith("pushstream-")
    assert body == error(500, "internalError", f"Internal server error (exceptionId {exception_id}).")


def test_documentation_documents(api: Api) -> None:
    v3 = api.get("/v1/documentation/openapi3.json", token="")
    assert v3.status_code == 200 and v3.mimetype == "application/json"
    doc = v3.json
    assert doc is not None
    assert doc["openapi"] == "3.0.3"
    # No --api-public-url: the host the request came to (the test client's).
    assert doc["servers"] == [{"url": "http://localhost"}]
    v3_yaml = api.get("/v1/documentation/openapi3.yaml", token="")
    assert v3_yaml.status_code == 200 and v3_yaml.mimetype == "application/yaml"
    assert yaml.safe_load(v3_yaml.data) == doc
    v2 = api.get("/v1/documentation/openapi.json", token="")
    assert v2.status_code == 200
    swagger = v2.json
    assert swagger is not None
    assert swagger["swagger"] == "2.0"
    assert swagger["host"] == "localhost"
    assert set(swagger["paths"]) == set(doc["paths"])
    assert set(swagger["definitions"]) == set(doc["components"]["schemas"])
    assert "#/components/" not in orjson.dumps(swagger).decode()
    v2_yaml = api.get("/v1/documentation/openapi.yaml", token="")
    assert yaml.safe_load(v2_yaml.data) == swagger


def test_openapi_covers_every_operation_of_the_reference(api: Api) -> None:
    from pathlib import Path

    reference_path = Path(__file__).parents[3] / "shared" / "reference" / "keboola-stream-openapi3.json"
    doc = api.get("/v1/documentation/openapi3.json").json
    assert doc is not None
    ours = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    ours_ids = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    if reference_path.exists():
        reference = orjson.loads(reference_path.read_bytes())
        theirs = {(path, method) for path, ops in reference["paths"].items() for method in ops}
        assert theirs <= ours
        assert {op["operationId"] for ops in reference["paths"].values() for op in ops.values()} <= ours_ids
    # Every route of the app is documented, and nothing undocumented is routed
    # (but the web console's pages, which are no part of the API: it calls /v1).
    app_routes = set()
    for rule in api.app.url_map.iter_rules():
        if rule.endpoint in ("static", "stream_docs.ui_file") or rule.endpoint.startswith("console."):
            continue
        path = rule.rule.replace("<branch>", "{branchId}").replace("<entity:source_id>", "{sourceId}")
        path = path.replace("<entity:sink_id>", "{sinkId}").replace("<number>", "{versionNumber}")
        path = path.replace("<path:task_id>", "{taskId}")
        for method in rule.methods or ():
            if method != "HEAD":
                app_routes.add((path, method.lower()))
    assert app_routes == ours


def test_documentation_page_is_served_locally(api: Api) -> None:
    page = api.get("/v1/documentation", token="")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.data.decode()
    assert "http" not in html.replace('charset="utf-8"', "")  # no CDN, no absolute URLs
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        assert f"documentation/swagger-ui/{asset}" in html
        response = api.get(f"/v1/documentation/swagger-ui/{asset}", token="")
        assert response.status_code == 200
        assert len(response.data) > 1000
    missing = api.get("/v1/documentation/swagger-ui/nope.js", token="")
    assert missing.status_code == 404
    assert missing.json == error(
        404, "endpointNotFound", 'No endpoint found for path "/v1/documentation/swagger-ui/nope.js".'
    )
