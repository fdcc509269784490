"""Membership, leadership and change relay of a cluster on its PostgreSQL control
plane (``serve --cluster postgresql://…``).

- **Nodes** (:class:`NodeAgent`): each node's coordinator process keeps a row in
  ``nodes`` (name, host, API URL, heartbeat each second) — the live
  nodes are those with a recent heartbeat.
- **Configuration changes reach every node**: the catalog and the storage state
  send ``NOTIFY pushstream_revision`` with the new revisions in the transaction
  of each change (delivered at its commit). Every node's agent ``LISTEN`` s,
  announces the revisions to its receivers through the data dir's revision file
  (:mod:`pushstream.storage.revision`) and acknowledges them in its row. A task
  reports success only when every live node has acknowledged its revision
  (:class:`PgMembership`); a node that does not within the wait is named in
  the log, not waited for.
- **One coordinator** (:class:`PgLease`): the coordinator that holds a session
  advisory lock rotates and imports for the whole cluster. PostgreSQL releases
  the lock when its connection ends — at once when the process dies, within the
  TCP keepalive time when its machine does — and the next coordinator takes it
  on its next tick (one second).

Why PostgreSQL and not etcd, which Keboola uses: the control plane is one
engine the user already runs (usually also the target), and its transactions
span the configuration and the storage state together — a sink change and the
change of its files commit at once, which etcd's single-key transactions could
only approximate. LISTEN/NOTIFY carries the change events, advisory locks the
election, SQL the statistics; etcd would be a second system to run, secure and
back up.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from pushstream.catalog.pg_connections import REVISION_CHANNEL, lock_key, parse_url
from pushstream.catalog.pg_connections import connect as pg_connect
from pushstream.errors import StoreUnavailableError
from pushstream.storage.revision import RevisionFile
from pushstream.storage.state import FORGET_NODE_AFTER_NS

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The channel the control plane announces revisions on (``{"config": n, "storage": m}``).
CHANNEL = REVISION_CHANNEL
#: A node whose heartbeat is older than this is not live.
NODE_TIMEOUT = 10.0
HEARTBEAT_INTERVAL = 1.0
#: How long a task waits for every live node to follow its change.
PROPAGATION_WAIT = 10.0


def connect(url: str, purpose: str) -> psycopg.Connection[Any]:
    """An autocommit connection of this process of its own to the installation's
    schema (with TCP keepalives); the catalog creates the schema and its ``nodes``."""
    return pg_connect(url, f"pushstream {purpose}")


def lease_key(url: str) -> int:
    """The advisory lock of the installation's coordinator."""
    return lock_key(parse_url(url)[1], "coordinator")


@dataclass(frozen=True)
class NodeInfo:
    """A node of the cluster as the control plane knows it."""

    name: str
    host: str
    pid: int
    api_url: str
    started_at: datetime
    heartbeat_at: datetime
    alive: bool
    stopped: bool
    config_revision: int
    coordinator: bool


def list_nodes(connection: psycopg.Connection[Any], url: str) -> list[NodeInfo]:
    """Every node that registered, live ones first, with the one that coordinates
    (the holder of the lease: its session's application name names the node)."""
    key = lease_key(url)
    holder = connection.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s"
        " AND l.objsubid = 1",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    coordinator = holder[0].removeprefix("pushstream coordinator ") if holder else None
    now = time.time_ns()
    found = []
    for name, host, pid, api_url, started_ns, heartbeat_ns, stopped, acked in connection.execute(
        "SELECT node_id, host, pid, api_url, started_ns, heartbeat_ns, stopped, config_revision_acked FROM nodes"
    ):
        alive = not stopped and now - heartbeat_ns < NODE_TIMEOUT * 1e9
        found.append(
            NodeInfo(
                name,
                host,
                pid,
                api_url,
                _moment(started_ns),
                _moment(heartbeat_ns),
                alive,
                bool(stopped),
                acked,
                alive and name == coordinator,
            )
        )
    return sorted(found, key=lambda n: (not n.alive, n.name))


def _moment(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


class PgLease:
    """The coordinator's lease: a session advisory lock on a connection of its own."""

    def __init__(self, url: str, node_name: str) -> None:
        self.url = url
        self.node_name = node_name
        self.key = lease_key(url)
        self._connection: psycopg.Connection[Any] | None = None
        self._held = False

    def held(self) -> bool:
        try:
            if self._connection is None or self._connection.closed:
                self._held = False
                self._connection = connect(self.url, f"coordinator {self.node_name}")
            if self._held:
                # The lock lives as long as the connection: check that it still does.
                self._connection.execute("SELECT 1")
            else:
                row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                self._held = bool(row and row[0])
        except (psycopg.Error, StoreUnavailableError) as exc:
            if self._held:
                log.warning("lost the coordinator lease: %s", exc)
            self._drop()
        return self._held

    def _drop(self) -> None:
        self._held = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def release(self) -> None:
        self._drop()


class PgMembership:
    """Reads of the cluster's nodes for the API: the nodes list, and waiting for
    every live node to follow a config revision (one connection per thread)."""

    def __init__(self, url: str, wait: float = PROPAGATION_WAIT) -> None:
        self.url = url
        self.wait_seconds = wait
        self._local = threading.local()

    def _read(self, query: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``query`` on this thread's connection; once more on a new one when it
        broke (PostgreSQL restarted); :class:`StoreUnavailableError` when it is away."""
        for attempt in (1, 2):
            connection: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
            try:
                if connection is None or connection.closed:
                    connection = self._local.connection = connect(self.url, "api")
                return query(connection)
            except (psycopg.OperationalError, StoreUnavailableError) as exc:
                self._local.connection = None
                if attempt == 2:
                    if isinstance(exc, StoreUnavailableError):
                        raise
                    reason = str(exc).strip().splitlines()[0]
                    raise StoreUnavailableError(
                        f"The configuration store (PostgreSQL) is unavailable: {reason}"
                    ) from None
        raise AssertionError("unreachable")

    def nodes(self) -> list[NodeInfo]:
        """Every node that registered (see :func:`list_nodes`)."""
        return self._read(lambda connection: list_nodes(connection, self.url))

    def lagging(self, revision: int) -> list[str]:
        """Live nodes that have not acknowledged ``revision`` yet."""
        rows = self._read(
            lambda connection: connection.execute(
                "SELECT node_id FROM nodes WHERE stopped = 0 AND heartbeat_ns > %s AND config_revision_acked < %s"
                " ORDER BY node_id",
                (time.time_ns() - int(NODE_TIMEOUT * 1e9), revision),
            ).fetchall()
        )
        return [name for (name,) in rows]

    def wait(self, revision: int) -> list[str]:
        """Waits (at most :attr:`wait_seconds`) for every live node to follow
        ``revision``; returns the nodes that did not."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.002
        while True:
            try:
                behind = self.lagging(revision)
            except (psycopg.Error, StoreUnavailableError) as exc:
                return [f"(unknown: {exc})"]
            if not behind or time.monotonic() >= deadline:
                return behind
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


class NodeAgent:
    """This node's presence in the cluster: heartbeat, and the relay of revision
    notifications to the local receivers with their acknowledgement."""

    def __init__(
        self,
        url: str,
        name: str,
        api_url: str,
        revisions: RevisionFile,
        current: Callable[[], tuple[int, int]],
    ) -> None:
        self.url = url
        self.schema = parse_url(url)[1]
        self.name = name
        self.api_url = api_url
        self.revisions = revisions
        #: The committed (config, storage) revisions (read after a reconnect: notifications may have been missed).
        self.current = current
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cluster-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with connect(self.url, f"node {self.name}") as connection:
                connection.execute("UPDATE nodes SET stopped = 1 WHERE node_id = %s", (self.name,))
        except (psycopg.Error, StoreUnavailableError) as exc:
            log.warning("could not record the stop of node %s: %s", self.name, exc)

    def _run(self) -> None:
        failure = ""
        while not self._stop.is_set():
            try:
                with connect(self.url, f"node {self.name}") as connection:
                    self._serve(connection)
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}".strip()
                if text != failure:
                    log.warning("node %s: the control plane is unreachable, retrying: %s", self.name, text)
                    failure = text
                self._stop.wait(1.0)

    def _serve(self, connection: psycopg.Connection[Any]) -> None:
        now = time.time_ns()
        connection.execute(
            "INSERT INTO nodes (node_id, host, pid, started_ns, heartbeat_ns, api_url)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (node_id) DO UPDATE SET host = excluded.host,"
            " pid = excluded.pid, api_url = excluded.api_url, started_ns = excluded.started_ns,"
            " heartbeat_ns = excluded.heartbeat_ns, stopped = 0",
            (self.name, socket.gethostname(), os.getpid(), now, now, self.api_url),
        )
        # Nodes stopped or gone for a day leave the list (each start under a new name adds one).
        connection.execute("DELETE FROM nodes WHERE heartbeat_ns < %s", (now - FORGET_NODE_AFTER_NS,))
        connection.execute(f"LISTEN {CHANNEL}")
        # Whatever changed while this node was not listening.
        config, storage = self.current()
        self._follow(connection, config, storage)
        log.info("node %s joined the cluster (config revision %d)", self.name, config)
        next_beat = time.monotonic() + HEARTBEAT_INTERVAL
        while not self._stop.is_set():
            # Collected first: the generator holds the connection's lock while it yields.
            notices = list(connection.notifies(timeout=HEARTBEAT_INTERVAL / 2, stop_after=64))
            for notice in notices:
                try:
                    announced = json.loads(notice.payload)
                    if announced.get("schema", self.schema) != self.schema:
                        continue  # another installation in the same database
                    config, storage = int(announced.get("config", 0)), int(announced.get("storage", 0))
                except (ValueError, TypeError, AttributeError):
                    log.warning("node %s: ignored a malformed notification %r", self.name, notice.payload)
                    continue
                self._follow(connection, config, storage)
            if time.monotonic() >= next_beat:
                connection.execute("UPDATE nodes SET heartbeat_ns = %s WHERE node_id = %s", (time.time_ns(), self.name))
                next_beat = time.monotonic() + HEARTBEAT_INTERVAL

    def _follow(self, connection: psycopg.Connection[Any], config: int, storage: int) -> None:
        """Announces revisions to the local receivers, then acknowledges them:
        once announced, every local receiver routes by them on its next request."""
        self.revisions.announce(config=config, storage=storage)
        connection.execute(
            "UPDATE nodes SET config_revision_acked = greatest(config_revision_acked, %s), heartbeat_ns = %s"
            " WHERE node_id = %s",
            (config, time.time_ns(), self.name),
        )
