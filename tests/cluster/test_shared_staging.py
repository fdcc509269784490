"""Shared staging (``--staging s3://bucket/prefix`` or ``file:///path``) on real
servers: every receiver process uploads its own part of a slice to the store,
the coordinator imports from the store, and the parts of several processes go
back into receive order, so that a primary key's last write wins."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import obstore
import pytest
import requests
from obstore.store import LocalStore

from s3server import S3Server
from serverprocess import ServerProcess
from streamclient import Stream, table_rows

COLUMNS: list[dict[str, Any]] = [
    {"type": "path", "name": "id", "path": "id", "primaryKey": True},
    {"type": "path", "name": "v", "path": "v"},
]


def _objects(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _send_in_turns(stream: Stream, rounds: int) -> None:
    """Each round writes every key again with the round number, over fresh
    connections (so the requests spread over the worker processes)."""
    for r in range(rounds):
        for key in range(5):
            response = requests.post(
                stream.url,
                data=json.dumps({"id": key, "v": r}),
                headers={"Connection": "close", "Content-Type": "application/json"},
                timeout=30,
            )
            assert response.status_code == 200, response.text


def _wait_rows(server: ServerProcess, table: str, expected: list[tuple[str, ...]]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            rows = sorted(table_rows(server.data_dir, table))
        except Exception:
            rows = []
        if rows == expected:
            return
        assert time.monotonic() < deadline, (rows, server.log()[-3000:])
        time.sleep(0.2)


def test_file_staging_imports_from_the_shared_directory(tmp_path: Path, server_factory: Any) -> None:
    shared = tmp_path / "shared-staging"
    server = server_factory(args=("--staging", f"file://{shared}", "--workers", "2", "--node-name", "alpha"))
    stream = Stream(server).create()
    stream.sink("kv", COLUMNS, table_id="in.c-test.kv")
    _send_in_turns(stream, rounds=6)
    stream.flush("kv")
    # The last write of every key wins, whichever worker took it.
    _wait_rows(server, "in.c-test.kv", [(str(k), "5") for k in range(5)])
    objects = _objects(shared)
    assert objects, "nothing was staged in the shared directory"
    assert all(o.startswith("1/events/kv/") for o in objects), objects
    # Every part is one worker's: <file>/<slice>/<node>.csv.zst with its index next to it.
    parts = [o for o in objects if o.endswith(".csv.zst")]
    assert all(Path(o).name.startswith("alpha.") for o in parts), parts
    assert {o.removesuffix(".csv.zst") for o in parts} == {
        o.removesuffix(".idx") for o in objects if o.endswith(".idx")
    }
    # Nothing in the data dir's own staging folder; locally only the new (empty) writing slice.
    assert not list((server.data_dir / "staging").rglob("*.zst"))
    assert [p.stat().st_size for p in (server.data_dir / "local").rglob("*.csv")] in ([], [0], [0, 0])
    assert (server.data_dir / "node-name").exists() is False  # --node-name given: nothing kept


def test_s3_staging_with_two_workers(tmp_path: Path, server_factory: Any, s3_server: S3Server) -> None:
    server = server_factory(args=("--staging", "s3://pushstream/stage", "--workers", "2"), env=s3_server.environment)
    stream = Stream(server).create()
    stream.sink("kv", COLUMNS, table_id="in.c-test.kv")
    _send_in_turns(stream, rounds=6)
    stream.flush("kv")
    _wait_rows(server, "in.c-test.kv", [(str(k), "5") for k in range(5)])
    name = (server.data_dir / "node-name").read_text().strip()
    keys = _objects(s3_server.root / "pushstream")
    parts = [k for k in keys if k.endswith(".csv.zst")]
    assert parts and all(k.startswith("stage/1/events/kv/") for k in parts), keys
    assert all(Path(k).name.startswith(name + ".") for k in parts), (name, parts)
    # The statistics count the rows on the target level.
    assert stream.statistics("kv")["levels"]["target"]["recordsCount"] == 30


def test_bad_staging_urls_are_refused(tmp_path: Path) -> None:
    from pushstream.config import ServerConfig
    from pushstream.errors import ConfigError

    for url, message in [
        ("http://bucket/x", "must be an s3://bucket/prefix or file:///path URL"),
        ("s3:///prefix", "names no bucket"),
        ("file://relative/path", "must be an absolute path"),
    ]:
        with pytest.raises(ConfigError, match=message):
            ServerConfig(data_dir=tmp_path, staging=url)
    with pytest.raises(ConfigError, match="node_name must be"):
        ServerConfig(data_dir=tmp_path, node_name="a.b")


def test_local_store_roundtrip_of_a_part(tmp_path: Path) -> None:
    """The staging module on its own: put, read back, fetch and remove a part."""
    from pushstream.storage.layout import SinkKey
    from pushstream.storage.staging import SharedStaging, index_key, part_key
    from pushstream.storage.state import SliceRef

    staging = SharedStaging(f"file://{tmp_path / 'store'}")
    ref = SliceRef(SinkKey(1, "src", "snk"), "F1", "S1")
    packed = tmp_path / "part.csv.zst"
    packed.write_bytes(b"compressed bytes")
    assert staging.put_part(ref, "n1", packed, b"\x01" * 16) == 16
    store = LocalStore(tmp_path / "store")
    assert obstore.get(store, part_key(ref, "n1")).bytes().to_bytes() == b"compressed bytes"
    assert obstore.get(store, index_key(ref, "n1")).bytes().to_bytes() == b"\x01" * 16
    fetched, index = staging.get_part(ref, "n1", tmp_path)
    assert fetched.read_bytes() == b"compressed bytes" and index == b"\x01" * 16
    staging.delete_file(ref.sink, "F1")
    assert _objects(tmp_path / "store") == []


def test_nodes_of_a_single_node(server_factory: Any) -> None:
    """``GET /v1/nodes`` and ``pushstream nodes`` on one node: itself, live, coordinating."""
    import subprocess

    from serverprocess import PUSHSTREAM

    server = server_factory(args=("--node-name", "solo", "--workers", "2"))
    Stream(server).create()  # a change: the revision moves to 1
    deadline = time.monotonic() + 20
    while True:  # the coordinator process and both receivers start a moment after the server answers
        body = server.request("GET", "/v1/nodes").json()
        if body["nodes"][0]["coordinator"] and body["nodes"][0]["receivers"] == 2:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["configRevision"] == 1
    [node] = body["nodes"]
    assert {k: node[k] for k in ("name", "alive", "coordinator", "configRevision", "apiUrl")} == {
        "name": "solo",
        "alive": True,
        "coordinator": True,
        "configRevision": 1,
        "apiUrl": server.url,
    }
    assert server.request("GET", "/v1/nodes", headers={"X-StorageApi-Token": "wrong"}).status_code == 401
    listed = subprocess.run(
        [*PUSHSTREAM, "nodes", "--url", server.url, "--token", server.token],
        capture_output=True,
        text=True,
        check=True,
    )
    [header, row] = listed.stdout.splitlines()
    assert header.split()[:5] == ["NODE", "HOST", "STATE", "COORDINATOR", "REVISION"]
    assert row.split()[0] == "solo" and row.split()[2:5] == ["live", "yes", "1"]


def test_a_stopped_node_uploads_its_slices_first(tmp_path: Path, server_factory: Any) -> None:
    """A clean stop closes the slices the node wrote to and uploads its parts:
    nothing it acknowledged waits on its disk."""
    shared = tmp_path / "shared-staging"
    # Slices and files never close by themselves during the test.
    quiet = ("--setting", "storage.level.staging.upload.trigger.interval=30m")
    quiet += ("--setting", "storage.level.target.import.trigger.interval=30m")
    server = server_factory(args=("--staging", f"file://{shared}", "--node-name", "leaving", *quiet))
    stream = Stream(server).create()
    stream.sink("kv", COLUMNS, table_id="in.c-test.kv")
    _send_in_turns(stream, rounds=2)
    assert not [p for p in shared.rglob("*.csv.zst")]
    deadline = time.monotonic() + 20
    while not server.request("GET", "/v1/nodes").json()["nodes"][0]["coordinator"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.stop()
    parts = [str(p.relative_to(shared)) for p in shared.rglob("*.csv.zst")]
    assert len(parts) == 1 and Path(parts[0]).name.startswith("leaving."), parts
    assert [p.stat().st_size for p in (server.data_dir / "local").rglob("*.csv")] == []
    # Started again, it imports them.
    server.start()
    stream.flush("kv")
    _wait_rows(server, "in.c-test.kv", [(str(k), "1") for k in range(5)])
