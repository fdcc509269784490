"""``GET /v1/nodes``: the nodes of the installation — this one alone, or the
nodes of a cluster as its control plane knows them."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime

from pushstream import wire
from pushstream.catalog.base import Catalog
from pushstream.storage.base import StorageState

_STARTED = datetime.now(UTC)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SingleNode:
    """The one node of an installation without ``--cluster``."""

    def __init__(
        self,
        name: str,
        api_url: str,
        catalog: Catalog,
        storage: StorageState,
        coordinator_running: Callable[[], bool],
    ) -> None:
        self.name = name
        self.api_url = api_url
        self.catalog = catalog
        self.storage = storage
        self.coordinator_running = coordinator_running

    def __call__(self) -> wire.NodesResult:
        revision = self.catalog.revision()
        receivers = len(self.storage.live_nodes())
        node = wire.ClusterNode(
            name=self.name,
            host=socket.gethostname(),
            api_url=self.api_url,
            started_at=_time(_STARTED),
            heartbeat_at=_time(datetime.now(UTC)),
            alive=True,
            stopped=False,
            coordinator=self.coordinator_running(),
            config_revision=revision,
            receivers=receivers,
        )
        return wire.NodesResult(nodes=[node], config_revision=revision)


class ClusterNodes:
    """The nodes of a cluster, from its control plane."""

    def __init__(self, url: str, catalog: Catalog) -> None:
        from pushstream.cluster.postgresql import PgMembership

        self.catalog = catalog
        self.members = PgMembership(url)

    def __call__(self) -> wire.NodesResult:
        nodes = [
            wire.ClusterNode(
                name=n.name,
                host=n.host,
                api_url=n.api_url,
                started_at=_time(n.started_at),
                heartbeat_at=_time(n.heartbeat_at),
                alive=n.alive,
                stopped=n.stopped,
                coordinator=n.coordinator,
                config_revision=n.config_revision,
            )
            for n in self.members.nodes()
        ]
        return wire.NodesResult(nodes=nodes, config_revision=self.catalog.revision())
