"""The Stream API: Keboola-compatible configuration of sources and sinks (``/v1``),
the service endpoints (``/``, ``/health-check``) and the documentation.

:func:`init_api` installs it on a Flask app; :func:`api_services` gives the other
components of the same process the pieces they plug into: the catalog, the registry
of change events (:class:`~pushstream.catalog.events.Hooks`) and the task runner.
Statistics come from a provider set with
:func:`~pushstream.api.statistics.set_statistics_provider`, flushes go to a handler
set with :func:`~pushstream.api.operator.set_flush_handler`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from pushstream.api.service import ConfigService
from pushstream.api.statistics import StatisticsProvider, ZeroStatistics, set_statistics_provider
from pushstream.api.tasks import TaskRunner
from pushstream.catalog.base import Catalog, Propagation
from pushstream.catalog.events import Hooks
from pushstream.config import ServerConfig

_EXTENSION_KEY = "pushstream.api"


@dataclass
class ApiServices:
    """The API's collaborators in one process."""

    config: ServerConfig
    catalog: Catalog
    hooks: Hooks
    runner: TaskRunner
    service: ConfigService


def init_api(
    app: Flask, config: ServerConfig, catalog: Catalog, *, propagation: Propagation | None = None
) -> ApiServices:
    """Registers the API's blueprints and error handlers on ``app``; ``propagation``:
    how the changes of tasks reach every node of a cluster (see :class:`TaskRunner`)."""
    from pushstream import console
    from pushstream.api import docs, errors, routes

    hooks = Hooks()
    runner = TaskRunner(catalog, hooks, propagation=propagation)
    services = ApiServices(config, catalog, hooks, runner, ConfigService(config, catalog, hooks, runner))
    app.extensions[_EXTENSION_KEY] = services
    app.url_map.converters["entity"] = routes.EntityIdConverter
    app.register_blueprint(docs.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(routes.bp)
    errors.register(app)
    return services


def api_services(app: Flask) -> ApiServices:
    """The :class:`ApiServices` of an app made by :func:`init_api`."""
    services: ApiServices = app.extensions[_EXTENSION_KEY]
    return services


__all__ = [
    "ApiServices",
    "ConfigService",
    "StatisticsProvider",
    "TaskRunner",
    "ZeroStatistics",
    "api_services",
    "init_api",
    "set_statistics_provider",
]
