"""Fixtures of the target tests: staging files in Keboola CSV + zstd, a private
PostgreSQL cluster per session (a fresh database per test), and ``target``
parametrised over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from targethelpers import Staging

from pushstream.targets.base import Target
from pushstream.targets.postgresql import PostgresTarget
from pushstream.targets.sqlite import SqliteTarget
from rawsql import Raw


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


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
