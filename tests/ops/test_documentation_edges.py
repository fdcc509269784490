"""The Swagger UI page calls no online validator, and the documents' ``servers``
follow the host a request came to, or ``--api-public-url``."""

from __future__ import annotations

from typing import Any

import requests

from serverprocess import ServerProcess


def test_swagger_page_has_no_validator(server: ServerProcess) -> None:
    page = requests.get(f"{server.url}/v1/documentation", timeout=30).text
    assert "validatorUrl: null," in page
    assert "swagger.io" not in page


def test_servers_follow_the_request_host(server: ServerProcess) -> None:
    local = requests.get(f"{server.url}/v1/documentation/openapi3.json", timeout=30).json()
    assert local["servers"] == [{"url": server.url}]
    by_name = requests.get(
        f"{server.url}/v1/documentation/openapi3.json", headers={"Host": f"stream.internal:{server.port}"}, timeout=30
    ).json()
    assert by_name["servers"] == [{"url": f"http://stream.internal:{server.port}"}]
    swagger2 = requests.get(
        f"{server.url}/v1/documentation/openapi.json", headers={"Host": "stream.internal"}, timeout=30
    ).json()
    assert (swagger2["host"], swagger2["schemes"]) == ("stream.internal", ["http"])


def test_servers_of_the_public_url(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--api-public-url", "https://stream.example.com"))
    document = requests.get(
        f"{server.url}/v1/documentation/openapi3.json", headers={"Host": "other"}, timeout=30
    ).json()
    assert document["servers"] == [{"url": "https://stream.example.com"}]
