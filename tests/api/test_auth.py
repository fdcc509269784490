"""Tokens: missing, unknown, guest (read only), admin, and the ``by`` blocks they leave."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from apitest import BASE, SECRET, Api, error
from psycopg import sql

from pushstream.catalog import SqliteCatalog
from pushstream.catalog.pg_connections import parse_url
from pushstream.catalog.postgresql import PgCatalog
from pushstream.catalog.sqlite import hash_token

MISSING = error(400, "missingField", '"X-StorageApi-Token" is missing from header.')
UNAUTHORIZED = error(401, "unauthorized", "The token is not valid.")

# Every operation under /v1/branches and /v1/tasks: (method, path, is_write).
SRC = f"{BASE}/my-source"
SNK = f"{SRC}/sinks/my-sink"
OPERATIONS = [
    ("GET", "/v1/branches/default/aggregation/sources", False),
    ("GET", BASE, False),
    ("POST", BASE, True),
    ("GET", f"{BASE}/deleted", False),
    ("GET", SRC, False),
    ("PATCH", SRC, True),
    ("DELETE", SRC, True),
    ("PUT", f"{SRC}/disable", True),
    ("PUT", f"{SRC}/enable", True),
    ("PUT", f"{SRC}/undelete", True),
    ("POST", f"{SRC}/rotate-secret", True),
    ("GET", f"{SRC}/settings", False),
    ("PATCH", f"{SRC}/settings", True),
    ("POST", f"{SRC}/test", False),
    ("DELETE", f"{SRC}/statistics/clear", True),
    ("GET", f"{SRC}/versions", False),
    ("GET", f"{SRC}/versions/1", False),
    ("PUT", f"{SRC}/versions/1/rollback", True),
    ("GET", f"{SRC}/sinks", False),
    ("POST", f"{SRC}/sinks", True),
    ("GET", f"{SRC}/sinks/deleted", False),
    ("GET", SNK, False),
    ("PATCH", SNK, True),
    ("DELETE", SNK, True),
    ("PUT", f"{SNK}/disable", True),
    ("PUT", f"{SNK}/enable", True),
    ("PUT", f"{SNK}/undelete", True),
    ("GET", f"{SNK}/settings", False),
    ("PATCH", f"{SNK}/settings", True),
    ("GET", f"{SNK}/statistics/total", False),
    ("GET", f"{SNK}/statistics/files", False),
    ("DELETE", f"{SNK}/statistics/clear", True),
    ("GET", f"{SNK}/versions", False),
    ("GET", f"{SNK}/versions/1", False),
    ("PUT", f"{SNK}/versions/1/rollback", True),
    ("GET", "/v1/tasks/api.create.source/1/x/y", False),
]


@pytest.mark.parametrize(("method", "path", "write"), OPERATIONS)
def test_missing_token_is_400(api: Api, method: str, path: str, write: bool) -> None:
    response = api.request(method, path, token="")
    assert response.status_code == 400
    assert response.json == MISSING


@pytest.mark.parametrize(("method", "path", "write"), OPERATIONS)
def test_unknown_token_is_401(api: Api, method: str, path: str, write: bool) -> None:
    response = api.request(method, path, token="wrong")
    assert response.status_code == 401
    assert response.json == UNAUTHORIZED


def _guest(api: Api) -> str:
    catalog: SqliteCatalog = api.services.catalog  # type: ignore[assignment]
    _, secret = catalog.create_token("read only", "guest")
    return secret


@pytest.mark.parametrize(("method", "path", "write"), OPERATIONS)
def test_guest_token_reads_but_does_not_write(api: Api, method: str, path: str, write: bool) -> None:
    guest = _guest(api)
    response = api.request(method, path, token=guest)
    if write:
        assert response.status_code == 403
        assert response.json == error(
            403, "forbidden", 'The token "1" may only read; this operation needs an admin token.'
        )
    else:
        # Reads pass authentication and fail only because nothing exists.
        assert response.status_code in (200, 404), response.json


def _hidden(source: dict[str, Any]) -> dict[str, Any]:
    """The source as a guest sees it: the secret in the ingest URL replaced by stars."""
    url: str = source["http"]["url"]
    return {**source, "http": {"url": url.rsplit("/", 1)[0] + "/********"}}


def test_guest_sees_what_admin_made_but_no_secret(api: Api, source: dict[str, Any]) -> None:
    guest = _guest(api)
    secret = source["http"]["url"].rsplit("/", 1)[1]
    assert SECRET.fullmatch(secret)
    seen = api.get(f"{BASE}/my-source", token=guest)
    assert seen.status_code == 200
    assert seen.json == _hidden(source)
    assert seen.json["http"]["url"].endswith("/stream/1/my-source/********")
    assert secret not in seen.get_data(as_text=True)
    assert api.post(f"{BASE}/my-source/test", token=guest, json={}).status_code == 200


def test_guest_lists_sources_without_secrets(api: Api, source: dict[str, Any]) -> None:
    guest = _guest(api)
    secret = source["http"]["url"].rsplit("/", 1)[1]
    for path in (BASE, "/v1/branches/default/aggregation/sources"):
        response = api.get(path, token=guest)
        assert response.status_code == 200
        assert secret not in response.get_data(as_text=True), path
        assert response.json["sources"][0]["http"] == _hidden(source)["http"], path
    # The admin still gets the working URL.
    assert api.get(BASE).json["sources"][0]["http"] == source["http"]


def test_stored_admin_token_writes_and_signs_changes(api: Api) -> None:
    catalog: SqliteCatalog = api.services.catalog  # type: ignore[assignment]
    token, secret = catalog.create_token("ci", "admin", user_id="42", user_name="Jane Doe")
    assert secret.startswith(f"{token.token_id}-") and len(secret) == len(token.token_id) + 41
    api.token = secret
    source = api.create_source("Signed")
    by = {"type": "user", "tokenId": token.token_id, "tokenDesc": "ci", "userId": "42", "userName": "Jane Doe"}
    assert source["created"]["by"] == by
    assert source["version"]["by"] == by


def test_tokens_are_stored_as_hashes(api: Api) -> None:
    catalog: SqliteCatalog = api.services.catalog  # type: ignore[assignment]
    _, secret = catalog.create_token("x", "admin")
    if isinstance(catalog, PgCatalog):  # PUSHSTREAM_TEST_CLUSTER=1: every column of every token row
        conninfo, schema = parse_url(catalog.url)
        with psycopg.connect(conninfo) as db:
            rows = db.execute(sql.SQL("SELECT t::text FROM {}.tokens t").format(sql.Identifier(schema))).fetchall()
        raw = "".join(row[0] for row in rows).encode()
        assert secret.encode() not in raw
        assert hash_token(secret).encode() in raw
        return
    raw = catalog.path.read_bytes() + (
        catalog.path.with_name(catalog.path.name + "-wal").read_bytes()
        if catalog.path.with_name(catalog.path.name + "-wal").exists()
        else b""
    )
    assert secret.encode() not in raw
    assert hash_token(secret).encode() in raw


def test_deleted_token_stops_working(api: Api) -> None:
    catalog: SqliteCatalog = api.services.catalog  # type: ignore[assignment]
    token, secret = catalog.create_token("temp", "admin")
    assert api.get(BASE, token=secret).status_code == 200
    assert catalog.delete_token(token.token_id)
    assert not catalog.delete_token(token.token_id)
    assert api.get(BASE, token=secret).json == UNAUTHORIZED
    assert [t.token_id for t in catalog.list_tokens()] == []


def test_service_endpoints_need_no_token(api: Api) -> None:
    for path in ("/", "/v1", "/health-check", "/v1/documentation", "/v1/documentation/openapi3.json"):
        assert api.get(path, token="").status_code in (200, 301), path
