"""The WSGI application: composes the roles of one pushstream process.

``create_app(config)`` opens the configuration store and installs the Stream API
(``/v1``, service endpoints, documentation). The receiver and the coordinator
plug in here too.
"""

from __future__ import annotations

import logging

from flask import Flask

from pushstream.api import api_services, init_api
from pushstream.config import ServerConfig
from pushstream.store import SqliteStore
from pushstream.store.base import ConfigStore

log = logging.getLogger(__name__)


def open_store(config: ServerConfig) -> SqliteStore:
    """Opens (creating if needed) ``<data dir>/state.sqlite`` and makes sure the default branch exists."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(config.state_path, config.settings)
    store.ensure_branch(config.project_id, config.default_branch_id, default=True)
    return store


def create_app(config: ServerConfig, *, store: ConfigStore | None = None) -> Flask:
    """A Flask app serving ``config``; ``store`` defaults to :func:`open_store`."""
    store = store if store is not None else open_store(config)
    failed = store.fail_orphaned_tasks()
    if failed:
        log.warning("%d task(s) were interrupted by a stop of the server and are marked as failed", failed)
    app = Flask("pushstream")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    init_api(app, config, store)
    return app


def close_app(app: Flask, *, timeout: float = 30.0) -> None:
    """Finishes the pending tasks and closes the store (tests, embedding)."""
    services = api_services(app)
    services.runner.wait_idle(timeout)
    services.runner.shutdown(wait=True)
    services.store.close()


def load_app(config_json: str) -> Flask:
    """Entry point of a server worker process: the app for a serialised :class:`ServerConfig`."""
    return create_app(ServerConfig.from_json(config_json))
