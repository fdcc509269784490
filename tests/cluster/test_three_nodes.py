"""A three-node cluster on one machine: three ``pushstream serve --cluster``
processes with their own data dirs and ports, one PostgreSQL control plane, one
S3 server for staging, a PostgreSQL target, nginx in front (tests/clusternodes.py).

What it must do: a change made through one node is followed by every node when
its task reports success; a node killed under load loses nothing it
acknowledged; the coordinator's node killed hands the imports to another node
without importing anything twice; PostgreSQL and the S3 server going away and
coming back lose nothing acknowledged."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import pgcluster
import s3server
from clusternodes import Cluster, nginx_binary
from pgcluster import PgCluster
from s3server import S3Server
from streamclient import Stream

pytestmark = pytest.mark.slow

COLUMNS: list[dict[str, Any]] = [
    {"type": "path", "name": "n", "path": "n", "rawString": True, "primaryKey": True},
    {"type": "path", "name": "body", "path": "body", "rawString": True},
]
TABLE = '"in.c-test"."events"'
_names = itertools.count(1)


def _database(pg: PgCluster, kind: str) -> tuple[str, str]:
    name = f"cluster_{kind}_{next(_names)}"
    return pg.create_admin(role=name, database=name), name


@pytest.fixture
def cluster(tmp_path: Path, pg_cluster: PgCluster, s3_server: S3Server) -> Iterator[Cluster]:
    if nginx_binary() is None:
        pytest.fail("nginx is not installed (./dev.sh setup installs it)")
    control, _ = _database(pg_cluster, "control")
    target, database = _database(pg_cluster, "target")
    running = Cluster(tmp_path, control, target, s3_server)
    running.target_database = database  # type: ignore[attr-defined]
    try:
        yield running.start()
    finally:
        running.stop()


def _rows(pg: PgCluster, database: str) -> list[tuple[str, str]]:
    try:
        return [tuple(r) for r in pg.execute(f"SELECT n, body FROM {TABLE} ORDER BY n::bigint", database=database)]
    except Exception as exc:
        if "does not exist" in str(exc):
            return []
        raise


def _body(n: int) -> str:
    return f"event {n} " + "x" * (n % 300)


class Load:
    """Clients sending numbered events through the balancer; keeps the numbers answered 200."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.stop_event = threading.Event()
        self.acknowledged: set[int] = set()
        self.statuses: dict[int, int] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(30)

    def _client(self) -> None:
        session = requests.Session()
        while not self.stop_event.is_set():
            with self._lock:
                n = next(self._counter)
            try:
                response = session.post(
                    self.url,
                    data=json.dumps({"n": n, "body": _body(n)}),
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                )
                status = response.status_code
            except requests.RequestException:
                status = 0
            with self._lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.acknowledged.add(n)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for_more(self, more: int, timeout: float = 60) -> None:
        goal = self.count() + more
        deadline = time.monotonic() + timeout
        while self.count() < goal:
            assert time.monotonic() < deadline, (self.count(), goal, self.statuses)
            time.sleep(0.05)


def _stream(cluster: Cluster) -> Stream:
    stream = Stream(cluster.nodes[0]).create()
    stream.sink("events", COLUMNS)
    return stream


def _balanced_url(cluster: Cluster, stream: Stream) -> str:
    return cluster.balancer_url + stream.url.split(str(cluster.nodes[0].port), 1)[1]


def _wait_imported(cluster: Cluster, pg: PgCluster, expected: set[int], timeout: float = 120) -> list[tuple[str, str]]:
    """Flushes through a live node until every expected row is in the table."""
    database = cluster.target_database  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while True:
        live = next(n for n in cluster.nodes if n.process is not None)
        Stream(live).flush(wait=10)
        rows = _rows(pg, database)
        if {int(n) for n, _ in rows} >= expected:
            return rows
        assert time.monotonic() < deadline, (
            len(rows),
            len(expected),
            sorted(expected - {int(n) for n, _ in rows})[:20],
        )
        time.sleep(1)


def _assert_exactly_once(rows: list[tuple[str, str]], acknowledged: set[int]) -> None:
    numbers = [int(n) for n, _ in rows]
    assert len(numbers) == len(set(numbers)), "a row was imported twice"
    assert set(numbers) >= acknowledged, sorted(acknowledged - set(numbers))[:20]
    torn = [(n, body) for n, body in rows if body != _body(int(n))]
    assert not torn, torn[:5]


def test_a_change_through_one_node_is_followed_by_every_node(cluster: Cluster) -> None:
    listed = cluster.wait_live(3)
    assert sorted(n["name"] for n in listed) == ["n1", "n2", "n3"]
    a, b, c = cluster.nodes
    stream = Stream(a).create()
    stream.sink("events", COLUMNS)
    # The task reported success: every node routes by the change at once.
    path = stream.url.split(str(a.port), 1)[1]
    for node in (b, c):
        response = requests.post(node.url + path, json={"n": 1, "body": "x"}, timeout=10)
        assert response.status_code == 200, (node.name, response.text)
        assert node.request("GET", "/v1/branches/default/sources/events/sinks/events").status_code == 200
    revision = a.request("GET", "/v1/nodes").json()["configRevision"]
    listed = cluster.node_list(b)
    assert [n["configRevision"] for n in listed] == [revision] * 3, (revision, listed)
    # A second change (disable the sink) is followed too: the event is accepted but written to no sink.
    stream.wait_task(a.request("PUT", "/v1/branches/default/sources/events/sinks/events/disable"))
    response = requests.post(c.url + path, json={"n": 2, "body": "x"}, timeout=10)
    assert response.status_code == 200 and "events" not in response.text


def test_kill_a_node_under_load(cluster: Cluster, pg_cluster: PgCluster) -> None:
    stream = _stream(cluster)
    victim = cluster.nodes[1]
    with Load(_balanced_url(cluster, stream)) as load:
        load.wait_for_more(300)
        victim.kill()
        # The other nodes keep answering through the balancer.
        load.wait_for_more(300)
        victim.start(timeout=60)
        load.wait_for_more(200)
    rows = _wait_imported(cluster, pg_cluster, load.acknowledged)
    _assert_exactly_once(rows, load.acknowledged)


def test_kill_the_coordinators_node(cluster: Cluster, pg_cluster: PgCluster) -> None:
    stream = _stream(cluster)
    first = cluster.coordinator()
    with Load(_balanced_url(cluster, stream)) as load:
        load.wait_for_more(300)
        first.kill()
        killed_at = time.monotonic()
        # Another node takes the imports over (the test waits longer than the
        # promised 15 s: the figure is measured by bench/bench_cluster.py).
        deadline = killed_at + 60
        while True:
            live = [n for n in cluster.node_list() if n["alive"] and n["coordinator"] and n["name"] != first.name]
            if live:
                break
            assert time.monotonic() < deadline, cluster.node_list()
            time.sleep(0.2)
        load.wait_for_more(300)
    first.start(timeout=60)
    rows = _wait_imported(cluster, pg_cluster, load.acknowledged)
    _assert_exactly_once(rows, load.acknowledged)


def test_control_plane_and_object_store_restarts(tmp_path: Path, s3_server: S3Server) -> None:
    """PostgreSQL (its own server, fsync on) and then the S3 server restart under
    load: requests answered 200 are on disk, others get an error status; afterwards
    everything acknowledged is imported exactly once."""
    if nginx_binary() is None:
        pytest.fail("nginx is not installed (./dev.sh setup installs it)")
    assert s3server.unavailable_reason() is None
    with pgcluster.cluster() as pg:
        control, _ = _database(pg, "control")
        target, database = _database(pg, "target")
        cluster = Cluster(tmp_path / "nodes", control, target, s3_server)
        cluster.target_database = database  # type: ignore[attr-defined]
        cluster.start()
        try:
            stream = _stream(cluster)
            node = cluster.nodes[1]
            with Load(_balanced_url(cluster, stream)) as load:
                load.wait_for_more(200)
                pg.stop()
                # Routes the nodes know keep taking events onto their disks (200 = on disk) ...
                load.wait_for_more(200)
                # ... what needs the control plane is a clear 503 with the Keboola error JSON.
                answer = node.request("GET", "/v1/branches/default/sources")
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "stream.api.serviceUnavailable"
                unknown = requests.post(node.url + "/stream/1/unknown/" + "x" * 48, json={}, timeout=30)
                assert unknown.status_code == 503, unknown.text
                pg.start()
                load.wait_for_more(200)
                s3_server.stop()
                load.wait_for_more(200)
                s3_server.start()
                load.wait_for_more(200)
            assert set(load.statuses) <= {200, 500, 502, 503, 504, 0}, load.statuses
            rows = _wait_imported(cluster, pg, load.acknowledged)
            _assert_exactly_once(rows, load.acknowledged)
        finally:
            cluster.stop()


def test_the_last_write_of_a_key_wins_whichever_node_took_it(cluster: Cluster, pg_cluster: PgCluster) -> None:
    """Writes of the same keys take turns over the three nodes; the table holds the
    last write of each key (the parts of the nodes are merged by receive time)."""
    stream = _stream(cluster)
    path = stream.url.split(str(cluster.nodes[0].port), 1)[1]
    last: dict[int, str] = {}
    for turn in range(12):
        node = cluster.nodes[(turn + 1) % 3]  # the last turn via n1: not the last node in name order
        for key in range(4):
            value = f"turn {turn} via {node.name}"
            response = requests.post(node.url + path, json={"n": key, "body": value}, timeout=10)
            assert response.status_code == 200, response.text
            last[key] = value
    database = cluster.target_database  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while True:
        Stream(cluster.nodes[1]).flush(wait=10)
        rows = _rows(pg_cluster, database)
        if len(rows) == 4 and all(body.startswith("turn 11") for _, body in rows):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)
    assert rows == [(str(key), last[key]) for key in range(4)]


def test_a_drained_node_leaves_nothing_behind(cluster: Cluster, pg_cluster: PgCluster) -> None:
    """A node stopped cleanly uploads what it wrote first: its rows are imported
    without it, and the nodes list shows it stopped (a killed one: gone)."""
    stream = _stream(cluster)
    path = stream.url.split(str(cluster.nodes[0].port), 1)[1]
    leaving, killed = cluster.nodes[2], cluster.nodes[1]
    for n in range(50):
        assert requests.post(leaving.url + path, json={"n": n, "body": _body(n)}, timeout=10).status_code == 200
    leaving.stop()
    killed.kill()
    deadline = time.monotonic() + 60
    while True:
        states = {n["name"]: (n["alive"], n["stopped"]) for n in cluster.node_list(cluster.nodes[0])}
        if states == {"n1": (True, False), "n2": (False, False), "n3": (False, True)}:
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.5)
    rows = _wait_imported(cluster, pg_cluster, set(range(50)))
    _assert_exactly_once(rows, set(range(50)))
