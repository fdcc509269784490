"""Fixtures of the target tests: staging files in Keboola CSV + zstd, a private
PostgreSQL cluster per session (a fresh database per test), and ``target``
parametrised over SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from targethelpers import Raw, Staging

from pgcluster import PgCluster, unavailable_reason
from pushstream.targets.base import Target
from pushstream.targets.postgresql import PostgresTarget
from pushstream.targets.sqlite import SqliteTarget


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


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
def sqlite_target(tmp_path: Path) -> Iterator[SqliteTarget]:
    target = SqliteTarget(tmp_path / "tables.sqlite")
    yield target
    target.close()


@pytest.fixture
def pg_target(pg_admin_url: str) -> Iterator[PostgresTarget]:
    target = PostgresTarget(pg_admin_url)
    yield target
    target.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each shared behaviour runs against both targets."""
    name = "sqlite_target" if request.param == "sqlite" else "pg_target"
    result: Target = request.getfixturevalue(name)
    return result


@pytest.fixture
def raw(target: Any, request: pytest.FixtureRequest) -> Raw:
    cluster = None if isinstance(target, SqliteTarget) else request.getfixturevalue("pg_cluster")
    return Raw(target, cluster)
