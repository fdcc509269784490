"""The WSGI application: composes the roles of one pushstream process.

``create_app(config)`` opens the configuration store and the storage state, and
puts together:

- the Stream API (``/v1``, service endpoints, documentation) on Flask;
- the storage hooks (every config change keeps its sink's slices and table in
  step, inside the change's transaction) and the statistics provider;
- the receiver (``/stream/...``) as a thin WSGI layer in front of Flask, with a
  :class:`~pushstream.receiver.node.ReceiverNode` holding this process's slices;
- optionally the coordinator (``coordinator=True``; ``pushstream serve`` runs it
  in a process of its own, exactly once per data dir).
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
from pushstream.api.hooks import SinkChange
from pushstream.api.operator import set_flush_handler
from pushstream.api.statistics import set_statistics_provider
from pushstream.config import ServerConfig
from pushstream.coordinator.lock import coordinator_running, lock_data_dir
from pushstream.coordinator.pipeline import Coordinator, CoordinatorOptions, table_spec
from pushstream.errors import BadRequestError, ConfigError
from pushstream.receiver.front import FrontOptions, InFlightBoard, ServerFront, board_path
from pushstream.receiver.node import ReceiverNode
from pushstream.receiver.wsgi import ReceiverApp, ReceiverOptions
from pushstream.storage import hooks as storage_hooks
from pushstream.storage.flushing import flush_handler
from pushstream.storage.layout import Layout
from pushstream.storage.revision import revision_file, revision_file_of
from pushstream.storage.state import StorageState
from pushstream.storage.statistics import StorageStatistics
from pushstream.store import SqliteStore
from pushstream.store.base import ConfigStore
from pushstream.targets.base import SinkIdentity, Target, TargetError, open_target

log = logging.getLogger(__name__)
_EXTENSION_KEY = "pushstream.roles"


@dataclass
class Roles:
    """The data-plane pieces of one process (next to the API's services)."""

    storage: StorageState
    layout: Layout
    target: Target
    node: ReceiverNode
    coordinator: Coordinator | None
    #: The coordinator lock held while ``coordinator`` runs in this process.
    coordinator_lock: int | None = None


def open_store(config: ServerConfig) -> SqliteStore:
    """Opens (creating if needed) ``<data dir>/state.sqlite`` and makes sure the default branch exists.
    Every config revision bump is announced to the receivers of all processes."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(config.state_path, config.settings)
    store.add_revision_listener(lambda db, revision: revision_file_of(db).announce(config=revision))
    store.ensure_branch(config.project_id, config.default_branch_id, default=True)
    return store


def coordinator_options(config: ServerConfig) -> CoordinatorOptions:
    return CoordinatorOptions(retry_base=config.import_retry_base)


def _table_hook(target: Target) -> storage_hooks.SinkHook:
    def ensure_table(change: SinkChange) -> None:
        """Creates or checks the destination table of an active sink; a mismatch fails the task."""
        sink = change.new
        if sink is None or sink.is_deleted or not sink.enabled:
            return
        if change.kind not in ("created", "updated", "enabled", "undeleted"):
            return
        spec = table_spec(sink.table_id, storage_hooks.columns_json(sink))
        identity = SinkIdentity(sink.branch_id, sink.source_id, sink.sink_id)
        try:
            target.ensure_table(spec)
            target.prepare_sink(identity, spec)
            if change.kind == "enabled":
                target.rotate_sink_credentials(identity)
        except TargetError as exc:
            # An expected refusal: the task fails with this message (no traceback in the log).
            raise BadRequestError(str(exc), error="stream.api.tableMismatch") from None

    return ensure_table


def create_app(
    config: ServerConfig, *, store: ConfigStore | None = None, coordinator: bool = False, served: bool = False
) -> Flask:
    """A Flask app serving ``config`` (API and receiver); ``store`` defaults to :func:`open_store`.

    ``coordinator`` runs the coordinator in this process; ``served`` says the app is
    a worker of ``pushstream serve``, whose coordinator runs in a process of its own
    (flushes then wait for it even while it restarts)."""
    store = store if store is not None else open_store(config)
    failed = store.fail_orphaned_tasks()
    if failed:
        log.warning("%d task(s) were interrupted by a stop of the server and are marked as failed", failed)
    app = Flask("pushstream")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = init_api(app, config, store)

    storage = StorageState(config.state_path)
    layout = Layout(config.data_dir)
    target = open_target(config.target, config.data_dir)
    storage_hooks.register(services.hooks, extra=_table_hook(target))
    set_statistics_provider(app, StorageStatistics(storage))
    probe = functools.partial(coordinator_running, config.data_dir)
    set_flush_handler(app, flush_handler(storage, (lambda: True) if served else probe))

    node = ReceiverNode(store, storage, layout, revision_file(config.data_dir))
    node.start()
    options = ReceiverOptions(
        project_id=config.project_id,
        max_record_bytes=config.max_record_size,
        max_batch_bytes=config.max_batch_size,
        max_header_bytes=config.max_header_size,
        trust_forwarded_for=config.trust_proxy,
    )
    app.wsgi_app = ReceiverApp(node, app.wsgi_app, options)  # type: ignore[method-assign]

    pipeline, lock = None, None
    if coordinator:
        lock = lock_data_dir(config.data_dir)
        if lock is None:
            raise ConfigError(f"another coordinator runs for {config.data_dir}")
        pipeline = Coordinator(store, storage, layout, target, coordinator_options(config))
        pipeline.start()
    app.extensions[_EXTENSION_KEY] = Roles(storage, layout, target, node, pipeline, lock)
    # A worker process that exits normally syncs and closes its slices. Server
    # workers are multiprocessing children, which skip atexit and run finalizers.
    atexit.register(node.close)
    multiprocessing.util.Finalize(None, node.close, exitpriority=100)
    return app


def roles(app: Flask) -> Roles:
    """The data-plane roles of an app made by :func:`create_app`."""
    found: Roles = app.extensions[_EXTENSION_KEY]
    return found


def close_app(app: Flask, *, timeout: float = 30.0) -> None:
    """Stops the roles in order: tasks, coordinator, receiver node, then the stores (tests, embedding)."""
    services = api_services(app)
    services.runner.wait_idle(timeout)
    services.runner.shutdown(wait=True)
    parts = roles(app)
    if parts.coordinator is not None:
        parts.coordinator.stop()
    if parts.coordinator_lock is not None:
        os.close(parts.coordinator_lock)
    parts.node.close()
    atexit.unregister(parts.node.close)
    parts.target.close()
    parts.storage.close()
    services.store.close()


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
    options = FrontOptions(
        max_record_bytes=config.max_record_size,
        max_batch_bytes=config.max_batch_size,
        body_timeout=config.body_timeout,
        max_ingest_requests=config.max_ingest_requests,
        ingest_threads=config.threads,
        max_header_bytes=config.max_header_size,
    )
    board: InFlightBoard | None
    try:
        board = InFlightBoard(board_path(config.data_dir, os.getpid()), config.threads)
    except OSError as exc:  # a full disk: serve anyway, without the notes for crash logs
        log.warning("no in-flight board for this worker (%s)", exc)
        board = None
    front = ServerFront(app, options, board)
    if board is not None:
        multiprocessing.util.Finalize(None, board.close, exitpriority=50)
    return front
