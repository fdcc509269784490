"""The service endpoints as Keboola's API scenarios see them, against a real
``pushstream serve`` configured like Keboola's test server: ``/``, ``/v1``,
``/health-check``, the OpenAPI documents, unknown paths, tokens and methods."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import yaml
from keboola import API_URL, BRANCH_ID, PROJECT_ID, SOURCE_URL, assert_matches, error

from serverprocess import ServerProcess

BASE = f"/v1/branches/{BRANCH_ID}/sources"


@pytest.fixture
def server(server_factory: Any) -> ServerProcess:
    result: ServerProcess = server_factory(
        env={
            "PUSHSTREAM_PROJECT_ID": str(PROJECT_ID),
            "PUSHSTREAM_DEFAULT_BRANCH_ID": str(BRANCH_ID),
            "PUSHSTREAM_API_PUBLIC_URL": API_URL,
            "PUSHSTREAM_SOURCE_PUBLIC_URL": SOURCE_URL,
        }
    )
    return result


def _get(server: ServerProcess, path: str, method: str = "GET", **kwargs: Any) -> requests.Response:
    """A request without a token."""
    return requests.request(method, server.url + path, timeout=30, **kwargs)


def test_root_redirects_to_v1(server: ServerProcess) -> None:
    response = _get(server, "/", allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] in ("/v1", f"{API_URL}/v1")
    # A client that follows the redirect (as Keboola's scenario runner does) gets the index.
    followed = _get(server, "/")
    assert followed.status_code == 200
    assert followed.json() == {"api": "stream", "documentation": f"{API_URL}/v1/documentation"}


def test_v1_index(server: ServerProcess) -> None:
    response = _get(server, "/v1")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"api": "stream", "documentation": f"{API_URL}/v1/documentation"}


def test_health_check(server: ServerProcess) -> None:
    response = _get(server, "/health-check")
    assert response.status_code == 200
    assert response.text == "OK"


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/v1/documentation/openapi3.json", "application/json"),
        ("/v1/documentation/openapi3.yaml", "application/yaml"),
        ("/v1/documentation/openapi.json", "application/json"),
        ("/v1/documentation/openapi.yaml", "application/yaml"),
    ],
)
def test_openapi_documents(server: ServerProcess, path: str, media_type: str) -> None:
    response = _get(server, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == media_type
    document = yaml.safe_load(response.text)
    assert document["info"]["title"]
    # Every operation of Keboola's service is documented.
    assert {"/", "/v1", "/v1/branches/{branchId}/sources", "/v1/tasks/{taskId}"} <= set(document["paths"])


def test_documentation_page(server: ServerProcess) -> None:
    response = _get(server, "/v1/documentation")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "path",
    [
        "/foo/bar",
        "/v1/foo",
        "/v1/documentation/foo",
        "/v2",
        f"/v1/branches/{BRANCH_ID}/foo",
        f"{BASE}/my-source/foo",
        f"{BASE}/my-source/sinks/my-sink/foo",
        "/v1/branches",
    ],
)
def test_unknown_path_404(server: ServerProcess, path: str) -> None:
    """An unknown path is a 404 whether or not a token is sent (routing comes first)."""
    expected = error(404, "endpointNotFound", f'No endpoint found for path "{path}".')
    for headers in ({}, {"X-StorageApi-Token": server.token}):
        for method in ("GET", "POST"):
            response = _get(server, path + "?limit=1", method, headers=headers)
            assert response.status_code == 404, (method, path)
            assert_matches(expected, response.json())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", BASE),
        ("POST", BASE),
        ("GET", f"{BASE}/deleted"),
        ("GET", f"{BASE}/my-source"),
        ("GET", f"{BASE}/my-source/sinks"),
        ("GET", f"/v1/branches/{BRANCH_ID}/aggregation/sources"),
        ("GET", "/v1/tasks/api.create.source/1/my-source/x"),
    ],
)
def test_missing_and_bad_token(server: ServerProcess, method: str, path: str) -> None:
    response = _get(server, path, method, json={"name": "My Source", "type": "http"})
    assert response.status_code == 400
    assert response.json() == error(400, "missingField", '"X-StorageApi-Token" is missing from header.')
    response = _get(server, path, method, headers={"X-StorageApi-Token": "not-a-token"})
    assert response.status_code == 401
    assert response.json()["error"] == "stream.api.unauthorized"
    # The service endpoints need no token.
    assert _get(server, "/v1").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1", "GET, HEAD"),
        ("DELETE", "/health-check", "GET, HEAD"),
        ("PUT", BASE, "GET, HEAD, POST"),
        ("POST", f"{BASE}/my-source", "DELETE, GET, HEAD, PATCH"),
        ("GET", f"{BASE}/my-source/disable", "PUT"),
        ("GET", f"{BASE}/my-source/rotate-secret", "POST"),
    ],
)
def test_wrong_method_405(server: ServerProcess, method: str, path: str, allowed: str) -> None:
    response = server.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json() == error(405, "methodNotAllowed", f'Method "{method}" is not allowed for "{path}".')
