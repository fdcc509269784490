"""`pushstream serve --target postgresql://...`: the API, the receiver workers and
the coordinator process all use the PostgreSQL target."""

from __future__ import annotations

from typing import Any

from pgcluster import PgCluster
from serverprocess import ServerProcess
from streamclient import Stream


def test_serve_with_a_postgresql_target(server_factory: Any, pg_admin_url: str, pg_cluster: PgCluster) -> None:
    server: ServerProcess = server_factory(args=("--target", pg_admin_url, "--workers", "2"))
    stream = Stream(server).create()
    columns = [
        {"type": "path", "name": "id", "path": "id", "rawString": True, "primaryKey": True},
        {"type": "path", "name": "v", "path": "v", "rawString": True},
    ]
    stream.sink("pg", columns)
    for body in ('{"id": "a", "v": "1"}', '{"id": "b", "v": "2"}', '{"id": "a", "v": "3"}'):
        assert stream.post(body).status_code == 200
    assert stream.flush(wait=60)["imported"]
    database = pg_admin_url.rsplit("/", 1)[1]
    rows = pg_cluster.execute('SELECT id, v FROM "in.c-test"."pg" ORDER BY id', database=database)
    assert rows == [("a", "3"), ("b", "2")]
    assert stream.statistics("pg")["levels"]["target"]["recordsCount"] == 3
