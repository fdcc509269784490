"""The WSGI application: composes the components of one pushstream process on Flask.

``create_app(config)`` opens the catalog and the data plane (built by
:mod:`pushstream.wiring`, as every process builds them), and puts together:

- the Stream API (``/v1``, service endpoints, documentation) on Flask;
- the change hooks (every config change keeps its sink's slices and table in
  step, inside the change's transaction), the statistics provider and the flush
  handler of the API;
- the receiver (``/stream/...``) as a thin WSGI layer in front of Flask, with a
  :class:`~pushstream.receiver.node.ReceiverNode` holding this process's slices;
- ``/metrics`` and the layer that counts requests and writes the access log
  (:mod:`pushstream.metrics`, :mod:`pushstream.receiver.observe`);
- optionally the coordinator (``coordinator=True``; ``pushstream serve`` runs it
  in a process of its own, exactly once per data dir).

:func:`load_app` and :func:`load_front` are the entry points of the worker
processes of ``pushstream serve``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing.util
import os
import signal
from dataclasses import dataclass

from flask import Flask

from pushstream.api import api_services, init_api
from pushstream.api.metrics import register_metrics_endpoint
from pushstream.api.operator import set_flush_handler, set_nodes_provider
from pushstream.api.statistics import set_statistics_provider
from pushstream.catalog.base import Catalog
from pushstream.config import ServerConfig
from pushstream.coordinator.lock import coordinator_running, lock_data_dir
from pushstream.coordinator.pipeline import Coordinator
from pushstream.errors import ConfigError
from pushstream.metrics import CoreMirror, metrics
from pushstream.receiver.front import InFlightBoard, ServerFront, board_path
from pushstream.receiver.node import ReceiverNode
from pushstream.receiver.observe import ObservedApp
from pushstream.receiver.wsgi import ReceiverApp
from pushstream.storage.base import StorageState
from pushstream.storage.flushing import flush_handler
from pushstream.storage.layout import Layout
from pushstream.storage.revision import revision_file
from pushstream.storage.statistics import StorageStatistics
from pushstream.targets.base import Target
from pushstream.wiring import (
    DataPlane,
    config_propagation,
    front_options,
    new_coordinator,
    nodes_provider,
    open_catalog,
    open_data_plane,
    receiver_node_id,
    receiver_options,
    register_change_hooks,
)

log = logging.getLogger(__name__)
_EXTENSION_KEY = "pushstream.components"


@dataclass
class Components:
    """The data-plane components of one process (next to the API's services)."""

    plane: DataPlane
    node: ReceiverNode
    coordinator: Coordinator | None
    #: The coordinator lock held while ``coordinator`` runs in this process.
    coordinator_lock: int | None = None
    #: Copies the core's counters into the metrics.
    mirror: CoreMirror | None = None

    @property
    def storage(self) -> StorageState:
        return self.plane.storage

    @property
    def layout(self) -> Layout:
        return self.plane.layout

    @property
    def target(self) -> Target:
        return self.plane.target


def create_app(
    config: ServerConfig, *, catalog: Catalog | None = None, coordinator: bool = False, served: bool = False
) -> Flask:
    """A Flask app serving ``config`` (API and receiver); ``catalog`` defaults to
    :func:`~pushstream.wiring.open_catalog`.

    ``coordinator`` runs the coordinator in this process; ``served`` says the app is
    a worker of ``pushstream serve``, whose coordinator runs in a process of its own
    (flushes then wait for it even while it restarts)."""
    catalog = catalog if catalog is not None else open_catalog(config)
    failed = catalog.fail_orphaned_tasks()
    if failed:
        log.warning("%d task(s) were interrupted by a stop of the server and are marked as failed", failed)
    app = Flask("pushstream")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = init_api(app, config, catalog, propagation=config_propagation(config))

    plane = open_data_plane(config)
    register_change_hooks(services.hooks, plane.target)
    set_statistics_provider(app, StorageStatistics(plane.storage))
    probe = functools.partial(coordinator_running, config.data_dir)
    set_flush_handler(app, flush_handler(plane.storage, (lambda: True) if served else probe))
    set_nodes_provider(app, nodes_provider(config, catalog, plane.storage, probe))

    node = ReceiverNode(
        catalog,
        plane.storage,
        plane.layout,
        revision_file(config.data_dir),
        node_id=receiver_node_id(config),
        announce_parts=config.staging is not None,
    )
    node.start()
    process_metrics = metrics()
    mirror = CoreMirror(process_metrics, node.node_id, node.config_revision)
    mirror.start()
    register_metrics_endpoint(app, mirror, plane.storage, config.metrics_token)
    receiver = ReceiverApp(node, app.wsgi_app, receiver_options(config))
    app.wsgi_app = ObservedApp(  # type: ignore[method-assign]
        receiver, process_metrics, access_log=config.access_log, trust_forwarded_for=config.trust_proxy
    )

    pipeline, lock = None, None
    if coordinator:
        lock = lock_data_dir(config.data_dir)
        if lock is None:
            raise ConfigError(f"another coordinator runs for {config.data_dir}")
        pipeline = new_coordinator(config, catalog, plane)
        pipeline.start()
    app.extensions[_EXTENSION_KEY] = Components(plane, node, pipeline, lock, mirror)
    # A worker process that exits normally syncs and closes its slices. Server
    # workers are multiprocessing children, which skip atexit and run finalizers.
    atexit.register(node.close)
    multiprocessing.util.Finalize(None, node.close, exitpriority=100)
    return app


def components(app: Flask) -> Components:
    """The data-plane components of an app made by :func:`create_app`."""
    found: Components = app.extensions[_EXTENSION_KEY]
    return found


def close_app(app: Flask, *, timeout: float = 30.0) -> None:
    """Stops the components in order: tasks, coordinator, receiver node, then the stores (tests, embedding)."""
    services = api_services(app)
    services.runner.wait_idle(timeout)
    services.runner.shutdown(wait=True)
    parts = components(app)
    if parts.mirror is not None:
        parts.mirror.stop()
    if parts.coordinator is not None:
        parts.coordinator.stop()
    if parts.coordinator_lock is not None:
        os.close(parts.coordinator_lock)
    parts.node.close()
    atexit.unregister(parts.node.close)
    parts.plane.close()
    services.catalog.close()


def _die_with_server() -> None:
    """Makes this worker process die with the ``serve`` process, so no worker outlives it."""
    from pushstream.coordinator.process import die_with_parent

    die_with_parent(signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid != os.getppid():
        os._exit(1)  # the server died before the request above took effect


def load_app(config_json: str) -> Flask:
    """Entry point of a worker of ``pushstream serve --front direct``: the WSGI app
    for a serialised :class:`ServerConfig`, called by the WSGI server's threads."""
    _die_with_server()
    return create_app(ServerConfig.from_json(config_json), served=True)


def load_front(config_json: str) -> ServerFront:
    """Entry point of a ``pushstream serve`` worker process (the default ``--front
    guarded``): the ASGI front (body timeouts, the ingest gate, separate thread
    pools) around the app of :func:`create_app`."""
    _die_with_server()
    config = ServerConfig.from_json(config_json)
    app = create_app(config, served=True)
    board: InFlightBoard | None
    try:
        board = InFlightBoard(board_path(config.data_dir, os.getpid()), config.threads)
    except OSError as exc:  # a full disk: serve anyway, without the notes for crash logs
        log.warning("no in-flight board for this worker (%s)", exc)
        board = None
    front = ServerFront(app, front_options(config), board)
    if board is not None:
        multiprocessing.util.Finalize(None, board.close, exitpriority=50)
    return front
