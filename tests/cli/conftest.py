"""Fixtures of the command-line tests: one real server per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serverprocess import ServerProcess


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running ``pushstream serve`` shared by the tests of a module (each test uses its own source)."""
    server = ServerProcess(tmp_path_factory.mktemp("cli") / "data").start()
    yield server
    server.stop()
