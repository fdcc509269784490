"""Fixtures shared by the test suites: a real ``pushstream serve`` process on a free
port with a temporary data dir (see :mod:`serverprocess`), and a private PostgreSQL
cluster (see :mod:`pgcluster`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgcluster import PgCluster, unavailable_reason
from serverprocess import ADMIN_TOKEN, PUSHSTREAM, ServerProcess, free_port

__all__ = ["ADMIN_TOKEN", "PUSHSTREAM", "ServerProcess", "free_port"]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Makes started :class:`ServerProcess` es (each with its own data dir unless given); stops them all."""
    servers: list[ServerProcess] = []

    def make(data_dir: Path | None = None, **kwargs: Any) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data-{len(servers)}", **kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(server_factory: Any) -> ServerProcess:
    """A running ``pushstream serve`` with the admin token :data:`ADMIN_TOKEN`."""
    result: ServerProcess = server_factory()
    return result


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One private PostgreSQL server for the session; skipped (failed under CI)
    when PostgreSQL cannot run here."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must run in CI: {reason}")
        pytest.skip(f"PostgreSQL tests need a local PostgreSQL: {reason}")
    cluster = PgCluster({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


_databases = itertools.count(1)


@pytest.fixture
def pg_admin_url(pg_cluster: PgCluster) -> str:
    """A fresh database owned by a fresh non-superuser CREATEROLE admin role."""
    name = f"pushstream_t{os.getpid()}_{next(_databases)}"
    return pg_cluster.create_admin(role=name, database=name)
