"""A full disk under a running server (a small tmpfs as its data dir): clients get
``503 stream.in.serviceUnavailable`` with ``Retry-After`` and no internal paths
while it is full, and once space is back the sink recovers by itself — new writes
succeed, slices rotate, upload and import — and every acknowledged row is
imported exactly once, without a restart."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from serverprocess import ServerProcess
from streamclient import Stream, table_rows

TABLE = "in.c-test.events"


def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False, capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    _mount(path, size)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs, unmounted after the test."""
    with _tmpfs(tmp_path / "disk", "48m") as path:
        yield path


@pytest.fixture
def small_target_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs for the target database, unmounted after the test."""
    with _tmpfs(tmp_path / "target-disk", "4m") as path:
        yield path


def _fill(path: Path) -> None:
    """Writes ``path`` until the file system is full (down to the last byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    break
    finally:
        os.close(fd)


def _post(stream: Stream, n: int) -> requests.Response:
    body = json.dumps({"n": n, "pad": "x" * 2000})
    return stream.post(body)


def _check_refusal(response: requests.Response, data_dir: Path) -> None:
    assert response.status_code == 503, response.text
    assert response.headers.get("Retry-After", "").isdigit(), response.headers
    assert str(data_dir) not in response.text
    assert "/local/" not in response.text and "slice" not in response.text
    document = response.json()
    assert document["statusCode"] == 503
    if "sources" in document:
        sinks = [sink for source in document["sources"] for sink in source["sinks"]]
        assert [sink["error"] for sink in sinks] == ["stream.in.serviceUnavailable"]
    else:  # the full disk was met opening a new slice, before any sink was written
        assert document["error"] == "stream.in.serviceUnavailable"


@pytest.mark.parametrize("workers", ["1", "2"], ids=lambda w: f"workers-{w}")
def test_full_disk_refuses_with_503_and_recovers_without_restart(
    small_disk: Path, server_factory: Any, workers: str
) -> None:
    data_dir = small_disk  # the server's log is written next to it, outside the small disk
    server: ServerProcess = server_factory(data_dir, args=("--workers", workers))
    stream = Stream(server).create()
    columns = [
        {"type": "uuid", "name": "id"},
        {"type": "path", "name": "n", "path": "n"},
        {"type": "body", "name": "body"},
    ]
    # Short upload interval: the sink rotates slices while the disk is full.
    stream.sink("events", columns, TABLE, storage__level__staging__upload__trigger__interval="1s")
    acknowledged: list[int] = []
    n = 0
    for _ in range(50):
        assert _post(stream, n).status_code == 200
        acknowledged.append(n)
        n += 1

    ballast = small_disk / "ballast"
    _fill(ballast)
    refused = 0
    deadline = time.monotonic() + 30
    # Until the writer has hit the full disk; then a few more to see the answer stays the same.
    while time.monotonic() < deadline and refused < 20:
        response = _post(stream, n)
        if response.status_code == 200:
            acknowledged.append(n)
        else:
            _check_refusal(response, data_dir)
            refused += 1
        n += 1
    assert refused == 20, "the full disk never refused a write"
    # The API too: a change (written to the config store) is taken or refused with a 503, never a 500.
    response = server.request("POST", "/v1/branches/default/sources", json={"name": "While full", "type": "http"})
    assert response.status_code in (202, 503), response.text
    if response.status_code == 503:
        assert response.json()["error"] == "stream.api.serviceUnavailable"
        assert response.headers["Retry-After"].isdigit()
        assert str(data_dir) not in response.text
    # The coordinator meets the full disk too (rotation, upload) while it lasts.
    time.sleep(2)
    ballast.unlink()

    # Space is back: clients that retry after Retry-After get their rows in.
    for _ in range(50):
        deadline = time.monotonic() + 30
        while True:
            response = _post(stream, n)
            if response.status_code == 200:
                acknowledged.append(n)
                break
            _check_refusal(response, data_dir)
            assert time.monotonic() < deadline, "the sink did not recover"
            time.sleep(0.1)
        n += 1

    result = stream.flush(wait=60)
    assert result["imported"], result
    imported = sorted(int(row[1]) for row in table_rows(data_dir, TABLE))
    assert imported == sorted(acknowledged)
    assert "Traceback" not in server.log() or "No space left" in server.log()


def test_imports_resume_soon_after_the_targets_disk_has_space_again(
    small_target_disk: Path, server_factory: Any
) -> None:
    database = small_target_disk / "tables.sqlite"
    server: ServerProcess = server_factory(args=("--target", f"sqlite:///{database}"))
    stream = Stream(server).create()
    stream.sink("events", [{"type": "path", "name": "n", "path": "n"}, {"type": "body", "name": "body"}], TABLE)
    for n in range(50):
        assert _post(stream, n).status_code == 200
    ballast = small_target_disk / "ballast"
    _fill(ballast)
    result = stream.flush(wait=30)
    assert not result["imported"], result
    assert "full" in result["files"][0]["retryReason"], result
    ballast.unlink()
    # No flush: the failed import is retried within seconds (not after the
    # backoff of other failures, 2 minutes and more).
    deadline = time.monotonic() + 30
    while len(_rows(database)) < 50:
        assert time.monotonic() < deadline, stream.statistics("events")
        time.sleep(0.2)
    assert sorted(int(row[0]) for row in _rows(database)) == list(range(50))


def _rows(database: Path) -> list[tuple[str, ...]]:
    db = sqlite3.connect(database)
    try:
        return [tuple(r) for r in db.execute(f'SELECT * FROM "{TABLE}" ORDER BY rowid')]
    except sqlite3.OperationalError:  # no table yet
        return []
    finally:
        db.close()
