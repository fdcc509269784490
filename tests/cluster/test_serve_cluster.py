"""``pushstream serve --cluster postgresql://...``: a real server whose catalog and
storage state live in PostgreSQL (the test cluster), through a restart of the
server and a restart of PostgreSQL under it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgcluster import PgCluster
from pushstream.catalog.pg_connections import parse_url
from pushstream.catalog.postgresql import PgCatalog
from pushstream.cluster.postgresql import NodeAgent, list_nodes
from pushstream.config import load_config
from pushstream.errors import CatalogError, ConfigError
from pushstream.storage.revision import revision_file
from serverprocess import PUSHSTREAM, ServerProcess
from streamclient import BASE, Stream, local_rows, table_rows

COLUMNS = [
    {"type": "path", "name": "id", "path": "id", "rawString": True, "primaryKey": True},
    {"type": "path", "name": "v", "path": "v", "rawString": True},
]
TABLE = "in.c-test.t"


def _event(event_id: str, value: str) -> str:
    return json.dumps({"id": event_id, "v": value})


def test_serve_cluster_keeps_its_state_in_postgresql(
    server_factory: Any, pg_admin_url: str, pg_cluster: PgCluster
) -> None:
    server: ServerProcess = server_factory(args=("--cluster", pg_admin_url + "?schema=ours", "--workers", "2"))
    stream = Stream(server).create()
    stream.sink("t", COLUMNS)
    for event_id, value in (("a", "1"), ("b", "2"), ("a", "3")):
        assert stream.post(_event(event_id, value)).status_code == 200
    assert stream.flush(wait=60)["imported"]
    assert sorted(table_rows(server.data_dir, TABLE)) == [("a", "3"), ("b", "2")]
    # Nothing of the state is in the data dir: the catalog and the storage state are in the schema.
    assert not (server.data_dir / "state.sqlite").exists()
    database = pg_admin_url.rsplit("/", 1)[1]
    assert pg_cluster.execute("SELECT count(*) FROM ours.sinks", database=database) == [(1,)]
    assert pg_cluster.execute("SELECT state FROM ours.storage_files ORDER BY file_id", database=database) == [
        ("imported",),
        ("writing",),
    ]

    # A restart of the server: configuration and state are still there.
    server.stop()
    server.start()
    assert stream.statistics("t")["levels"]["target"]["recordsCount"] == 3
    assert stream.post(_event("c", "4")).status_code == 200  # also routes this worker's source
    assert stream.flush(wait=60)["imported"]
    assert sorted(table_rows(server.data_dir, TABLE)) == [("a", "3"), ("b", "2"), ("c", "4")]


def test_a_postgresql_restart_under_a_running_cluster_server(
    server_factory: Any, pg_admin_url: str, pg_cluster: PgCluster
) -> None:
    """While PostgreSQL is away the API answers 503 (the Keboola error JSON); the
    receiver still takes events of the sources it routes already (it writes them to
    the local disk, which needs no PostgreSQL: a 200 is an event on disk) and
    imports them once PostgreSQL is back, without a restart of pushstream."""
    server: ServerProcess = server_factory(args=("--cluster", pg_admin_url))
    stream = Stream(server).create()
    stream.sink("t", COLUMNS)
    assert stream.post(_event("a", "1")).status_code == 200

    pg_cluster.stop("fast")
    try:
        response = server.request("GET", f"{BASE}/events")
        assert response.status_code == 503
        body = response.json()
        assert (body["statusCode"], body["error"]) == (503, "stream.api.serviceUnavailable")
        assert body["message"].startswith("The configuration store (PostgreSQL) is unavailable")
        assert server.request("POST", f"{BASE}/events/flush").status_code == 503
        during = stream.post(_event("b", "2"))
        assert during.status_code == 200, during.text
        assert ["b", "2"] in local_rows(server.data_dir, "t")  # acknowledged: on disk
        unknown = Stream(server, "unknown")
        unknown.url = stream.url.replace("/events/", "/unknown/")
        refused = unknown.post(_event("x", "0"))  # routing it needs the catalog
        assert refused.status_code >= 500
    finally:
        pg_cluster.start()

    assert server.request("GET", f"{BASE}/events").status_code == 200
    assert stream.post(_event("c", "3")).status_code == 200
    assert stream.flush(wait=60)["imported"]
    assert sorted(table_rows(server.data_dir, TABLE)) == [("a", "1"), ("b", "2"), ("c", "3")]
    assert stream.statistics("t")["levels"]["target"]["recordsCount"] == 3


def test_token_commands_use_the_cluster(pg_admin_url: str, tmp_path: Path) -> None:
    env = {"PUSHSTREAM_CLUSTER": pg_admin_url}
    created = _pushstream("token", "create", "--data-dir", str(tmp_path), "--description", "ci", env=env)
    listed = _pushstream("token", "list", "--data-dir", str(tmp_path), "--cluster", pg_admin_url)
    assert created.startswith("1-") and "ci" in listed
    with psycopg.connect(pg_admin_url) as db:
        assert db.execute("SELECT token_id, role FROM pushstream.tokens").fetchall() == [("1", "admin")]


def _pushstream(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*PUSHSTREAM, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_serve_says_when_the_control_plane_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"postgresql://nobody@127.0.0.1:{port}/pushstream"
    result = subprocess.run(
        [*PUSHSTREAM, "serve", "--cluster", url, "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot reach the cluster's control plane (--cluster): ")
    assert f"port {port} failed: Connection refused" in result.stderr
    assert result.stderr.rstrip().endswith("check the URL and that PostgreSQL is running, then start the node again")


def test_nodes_stopped_or_gone_for_a_day_leave_the_nodes_list(pg_admin_url: str, tmp_path: Path) -> None:
    url = pg_admin_url + "?schema=forgetting"
    PgCatalog(url, storage_revisions=revision_file(tmp_path)).close()  # creates the schema
    now = time.time_ns()
    hour = 3600 * 1_000_000_000
    with psycopg.connect(pg_admin_url, options="-c search_path=forgetting", autocommit=True) as db:
        for name, heartbeat, stopped in (
            ("gone", now - 25 * hour, 0),
            ("stopped", now - 25 * hour, 1),
            ("recent", now - hour, 1),
        ):
            db.execute(
                "INSERT INTO nodes (node_id, host, pid, started_ns, heartbeat_ns, stopped)"
                " VALUES (%s, 'h', 1, %s, %s, %s)",
                (name, heartbeat, heartbeat, stopped),
            )
    agent = NodeAgent(url, "fresh", "http://fresh", revision_file(tmp_path), lambda: (0, 0))
    agent.start()
    try:
        deadline = time.monotonic() + 30
        with psycopg.connect(pg_admin_url, options="-c search_path=forgetting", autocommit=True) as db:
            while "fresh" not in (names := [n.name for n in list_nodes(db, url)]):
                assert time.monotonic() < deadline, names
                time.sleep(0.05)
    finally:
        agent.stop()
    assert names == ["fresh", "recent"]


def test_the_cluster_option_from_flags_and_environment() -> None:
    assert load_config({}).cluster is None
    url = "postgresql://u:p@db:5432/pushstream?schema=prod"
    assert load_config({"PUSHSTREAM_CLUSTER": url}).cluster == url
    assert load_config({"PUSHSTREAM_CLUSTER": url}, cluster="postgres://other/db").cluster == "postgres://other/db"
    with pytest.raises(ConfigError, match='cluster must be a postgresql:// or postgres:// URL, found "etcd://x"'):
        load_config({"PUSHSTREAM_CLUSTER": "etcd://x"})
    help_text = _pushstream("serve", "--help")
    assert "--cluster" in help_text and "PUSHSTREAM_CLUSTER" in help_text


def test_the_schema_of_the_url() -> None:
    assert parse_url("postgresql://u@h/db") == ("postgresql://u@h/db", "pushstream")
    assert parse_url("postgresql://u@h/db?sslmode=require&schema=prod_1") == (
        "postgresql://u@h/db?sslmode=require",
        "prod_1",
    )
    with pytest.raises(CatalogError, match='must be a lowercase identifier, found "Prod; DROP"'):
        parse_url("postgresql://u@h/db?schema=Prod;%20DROP")
