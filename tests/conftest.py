"""Fixtures shared by the test suites: a real ``pushstream serve`` process on a free
port with a temporary data dir (see :mod:`serverprocess`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
