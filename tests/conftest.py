"""Fixtures shared by the test suites: a real ``pushstream serve`` process on a free
port with a temporary data dir (see :mod:`serverprocess`), a private PostgreSQL
cluster (see :mod:`pgcluster`), and a real S3-compatible server (see :mod:`s3server`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import clustermode
import s3server
from pgcluster import PgCluster, unavailable_reason
from serverprocess import ADMIN_TOKEN, PUSHSTREAM, ServerProcess, free_port
from statebackends import KINDS, StateBackend

__all__ = ["ADMIN_TOKEN", "PUSHSTREAM", "ServerProcess", "free_port"]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Makes started :class:`ServerProcess` es (each with its own data dir unless given); stops them all."""
    servers: list[ServerProcess] = []

    def make(data_dir: Path | None = None, **kwargs: Any) -> ServerProcess:
        data_dir = data_dir or tmp_path / f"data-{len(servers)}"
        args = tuple(kwargs.get("args", ()))
        cluster_url = clustermode.url_for(data_dir)
        if cluster_url is not None and "--cluster" not in args:
            kwargs["args"] = (*args, "--cluster", cluster_url)
        server = ServerProcess(data_dir, **kwargs)
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


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[s3server.S3Server]:
    """An S3-compatible server (s3s-fs) on a free port over a temporary directory,
    with the bucket ``pushstream``; skipped (failed under CI) when s3s-fs is not
    installed (``./dev.sh setup`` installs it)."""
    reason = s3server.unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the S3 server must run in CI: {reason}")
        pytest.skip(f"S3 tests need s3s-fs: {reason}")
    server = s3server.S3Server(tmp_path / "s3").start()
    server.create_bucket("pushstream")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=KINDS)
def state_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StateBackend:
    """The catalog and storage state on SQLite, then on PostgreSQL (``serve --cluster``,
    a fresh database of the test cluster)."""
    if request.param == "postgresql":
        return StateBackend("postgresql", tmp_path, request.getfixturevalue("pg_admin_url"))
    return StateBackend("sqlite", tmp_path)


@pytest.fixture(autouse=True)
def _cluster_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """With ``PUSHSTREAM_TEST_CLUSTER=1``: servers and apps on the PostgreSQL control
    plane (see :mod:`clustermode`)."""
    if not clustermode.ENABLED:
        yield
        return
    clustermode.activate(request.getfixturevalue("pg_cluster"))
    try:
        yield
    finally:
        clustermode.deactivate()
