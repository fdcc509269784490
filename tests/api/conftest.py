"""Fixtures of the Stream API tests: an in-process app on a temporary data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apitest import Api, make_app
from flask import Flask

from pushstream.app import close_app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """An in-process app on a temporary data dir with the admin token :data:`ADMIN_TOKEN`."""
    application = make_app(tmp_path / "data")
    yield application
    close_app(application)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app)


@pytest.fixture
def source(api: Api) -> dict[str, Any]:
    """A source "my-source" in the default branch."""
    return api.create_source()
