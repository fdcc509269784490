"""Wiring: what a pushstream process builds from its :class:`~pushstream.config.ServerConfig`,
in one place.

``pushstream serve`` (:mod:`pushstream.serving`), its workers (:mod:`pushstream.app`),
the coordinator process (:mod:`pushstream.coordinator.process`) and the ``token``
commands all build their components here, so they agree on them:

- the catalog (:func:`open_catalog`): its schema, the default branch,
  and the revision listener that announces every config change to the receivers
  of all processes;
- the data plane (:func:`open_data_plane`): the storage state, the layout of the
  data dir and the target database (:func:`open_target`);
- the implementations of the catalog and the storage state: this is the one
  place that picks them (SQLite in ``<data dir>/state.sqlite`` by default; the
  PostgreSQL control plane with ``--cluster``, :mod:`pushstream.catalog.postgresql`
  and :mod:`pushstream.storage.pg_state`); everything else sees their interfaces
  (:class:`~pushstream.catalog.base.Catalog`, :class:`~pushstream.storage.base.StorageState`);
- the change hooks that keep the data plane in step with the configuration,
  inside the change's transaction (:func:`register_change_hooks`);
- the options of the components: the receiver (:func:`receiver_options`), the
  guarded front (:func:`front_options`) and the coordinator
  (:func:`coordinator_options`, :func:`new_coordinator`).

Nothing here imports Flask or the API: the coordinator process runs without them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pushstream import wire
from pushstream.catalog import SqliteCatalog
from pushstream.catalog.base import Catalog, Propagation
from pushstream.catalog.events import Hooks, SinkChange
from pushstream.cluster.identity import node_prefix, receiver_id
from pushstream.config import ServerConfig
from pushstream.coordinator.pipeline import Coordinator, CoordinatorOptions, table_spec
from pushstream.coordinator.shared import SharedStagingSteps
from pushstream.errors import BadRequestError
from pushstream.receiver.front import FrontOptions
from pushstream.receiver.wsgi import ReceiverOptions
from pushstream.storage import hooks as storage_hooks
from pushstream.storage.base import StorageState
from pushstream.storage.layout import Layout
from pushstream.storage.revision import revision_file
from pushstream.storage.sqlite_state import SqliteStorageState
from pushstream.storage.staging import SharedStaging
from pushstream.targets import open_target as open_target_url
from pushstream.targets import target_kind
from pushstream.targets.base import SinkIdentity, Target, TargetError

if TYPE_CHECKING:
    from pushstream.catalog.postgresql import PgCatalog
    from pushstream.cluster.postgresql import NodeAgent


def open_catalog(config: ServerConfig) -> Catalog:
    """Opens (creating if needed) ``<data dir>/state.sqlite``, or the schema of the
    PostgreSQL control plane with ``--cluster``, and makes sure the default branch
    exists. Every config revision bump is announced to the receivers of all
    processes of this node (the data dir's revision file; with ``--cluster`` also
    by ``NOTIFY``, for the other nodes)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    revisions = revision_file(config.data_dir)
    catalog: SqliteCatalog | PgCatalog
    if config.cluster is not None:
        from pushstream.catalog.postgresql import PgCatalog

        catalog = PgCatalog(config.cluster, config.settings, storage_revisions=revisions)
    else:
        catalog = SqliteCatalog(config.state_path, config.settings)
    catalog.add_revision_listener(lambda _transaction, revision: revisions.announce(config=revision))
    catalog.ensure_branch(config.project_id, config.default_branch_id, default=True)
    return catalog


def open_target(config: ServerConfig) -> Target:
    """The target database of ``config`` (``--target``, default SQLite in the data dir)."""
    return open_target_url(config.target, config.data_dir)


def prepare_data_dir(config: ServerConfig) -> None:
    """Creates the catalog (schema, default branch; in PostgreSQL with ``--cluster``)
    and an embedded target database, so that processes started at the same moment
    do not race to create them."""
    open_catalog(config).close()
    if target_kind(config.target) == "sqlite":
        open_target(config).close()


@dataclass
class DataPlane:
    """The data components of a process: slices and files, where they lie, and the
    database they are imported into."""

    storage: StorageState
    layout: Layout
    target: Target

    def close(self) -> None:
        self.target.close()
        self.storage.close()


def open_data_plane(config: ServerConfig) -> DataPlane:
    """Opens the storage state (``state.sqlite``, or PostgreSQL with ``--cluster``),
    the data dir layout and the target."""
    return DataPlane(open_storage_state(config), Layout(config.data_dir), open_target(config))


def open_storage_state(config: ServerConfig) -> StorageState:
    """The storage state: ``<data dir>/state.sqlite``, or the schema of the
    PostgreSQL control plane with ``--cluster`` (its revision bumps announced in the
    data dir's revision file)."""
    if config.cluster is not None:
        from pushstream.storage.pg_state import PgStorageState

        config.data_dir.mkdir(parents=True, exist_ok=True)
        return PgStorageState(config.cluster, revisions=revision_file(config.data_dir))
    return SqliteStorageState(config.state_path)


def register_change_hooks(hooks: Hooks, target: Target) -> None:
    """Subscribes the data plane to configuration changes: the storage hooks (slices,
    files) and then the target's table check of an active sink."""
    storage_hooks.register(hooks, extra=_table_hook(target))


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


def receiver_options(config: ServerConfig) -> ReceiverOptions:
    """The limits and the trust of the receiver (``/stream/...``)."""
    return ReceiverOptions(
        project_id=config.project_id,
        max_record_bytes=config.max_record_size,
        max_batch_bytes=config.max_batch_size,
        max_header_bytes=config.max_header_size,
        trust_forwarded_for=config.trust_proxy,
    )


def front_options(config: ServerConfig) -> FrontOptions:
    """The limits, timeouts and thread pools of the guarded front (``--front guarded``)."""
    return FrontOptions(
        max_record_bytes=config.max_record_size,
        max_batch_bytes=config.max_batch_size,
        body_timeout=config.body_timeout,
        max_ingest_requests=config.max_ingest_requests,
        ingest_threads=config.threads,
        max_header_bytes=config.max_header_size,
    )


def coordinator_options(config: ServerConfig) -> CoordinatorOptions:
    return CoordinatorOptions(retry_base=config.import_retry_base, import_concurrency=config.import_concurrency)


def receiver_node_id(config: ServerConfig) -> str | None:
    """The id of this process's receiver: with shared staging it names the node
    (whose coordinator uploads the process's parts); ``None``: the default id."""
    if config.staging is None:
        return None
    if config.node_name is None:
        raise ValueError("shared staging needs the node's name (serving.prepare_serve resolves it)")
    return receiver_id(config.node_name, os.getpid())


def new_coordinator(config: ServerConfig, catalog: Catalog, plane: DataPlane) -> Coordinator:
    """The coordinator over ``catalog`` and ``plane`` (not started; the caller holds
    the data dir's coordinator lock). With shared staging it uploads this node's
    parts of slices to the shared store and imports from there."""
    shared = None
    if config.staging is not None:
        if config.node_name is None:
            raise ValueError("shared staging needs the node's name (serving.prepare_serve resolves it)")
        shared = SharedStagingSteps(
            plane.storage, plane.layout, SharedStaging(config.staging), node_prefix(config.node_name)
        )
    lease = None
    if config.cluster is not None:
        from pushstream.cluster.postgresql import PgLease

        assert config.node_name is not None  # cluster mode has shared staging, checked above
        lease = PgLease(config.cluster, config.node_name)
    return Coordinator(
        catalog, plane.storage, plane.layout, plane.target, coordinator_options(config), shared=shared, lease=lease
    )


def config_propagation(config: ServerConfig) -> Propagation | None:
    """How the changes of API tasks reach the receivers of every node: in a
    cluster through the control plane; ``None`` on one node (the revision file
    of the data dir reaches every process at once)."""
    if config.cluster is None:
        return None
    from pushstream.cluster.postgresql import PgMembership

    return PgMembership(config.cluster)


def nodes_provider(
    config: ServerConfig, catalog: Catalog, storage: StorageState, coordinator_running: Callable[[], bool]
) -> Callable[[], wire.NodesResult]:
    """What ``GET /v1/nodes`` lists: this node, or the nodes of the cluster."""
    from pushstream.cluster.nodes import ClusterNodes, SingleNode

    if config.cluster is not None:
        return ClusterNodes(config.cluster, catalog)
    name = config.node_name or socket.gethostname()
    return SingleNode(name, config.api_url, catalog, storage, coordinator_running)


def node_agent(config: ServerConfig, catalog: Catalog, plane: DataPlane) -> NodeAgent | None:
    """This node's presence in a cluster (heartbeat, relay of changes to the
    local receivers), run by the node's coordinator process; ``None`` on one node."""
    if config.cluster is None:
        return None
    from pushstream.cluster.postgresql import NodeAgent

    assert config.node_name is not None
    return NodeAgent(
        config.cluster,
        config.node_name,
        config.api_url,
        revision_file(config.data_dir),
        lambda: (catalog.revision(), plane.storage.revision()),
    )
