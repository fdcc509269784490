"""kill -9 of the whole server under load, then a restart: every acknowledged event
reaches its table exactly once and no torn row is imported."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
from typing import Any

import psutil
import pytest

from serverprocess import ServerProcess
from streamclient import Stream, load, table_rows

COLUMNS = [{"type": "path", "name": "n", "path": "n"}, {"type": "body", "name": "body"}]


def kill_tree(server: ServerProcess) -> None:
    """SIGKILL the server and every process it started, at once."""
    assert server.process is not None
    root = psutil.Process(server.process.pid)
    processes = [root, *root.children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)
    server.process.wait()
    server.process = None


@pytest.mark.parametrize("run", range(3))
def test_kill_9_under_load_loses_no_acknowledged_event(server_factory: Any, run: int) -> None:
    # Slices rotate every second, so the kill also hits rotations and uploads.
    server: ServerProcess = server_factory(args=("--workers", "2"))
    stream = Stream(server).create()
    stream.sink("crash", COLUMNS, **{"storage.level.staging.upload.trigger.interval": "1s"})
    stop = threading.Event()
    acknowledged: list[int] = []
    threads = load(stream, stop, acknowledged)
    time.sleep(random.Random(run).uniform(1.0, 2.5))
    kill_tree(server)
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) > 50

    server.start()
    result = stream.flush(wait=60)
    assert result["imported"], result
    rows = table_rows(server.data_dir, "in.c-test.crash")
    numbers = [int(r[0]) for r in rows]
    assert len(numbers) == len(set(numbers)), "an event was imported twice"
    assert set(acknowledged) <= set(numbers), "an acknowledged event is missing"
    for n, body in rows:
        assert json.loads(body) == {
            "n": int(n),
            "pad": "x" * random.Random(int(n)).randrange(2000),
            "quote": 'a "b"\nc',
        }


def _workers(server: ServerProcess) -> list[psutil.Process]:
    """The request worker processes of a server (not its coordinator)."""
    assert server.process is not None
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [p for p in children if "pushstream.coordinator" not in " ".join(p.cmdline())]


def test_a_killed_worker_is_started_again_and_loses_nothing(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--workers", "2"))
    stream = Stream(server).create()
    stream.sink("crash", COLUMNS, **{"storage.level.staging.upload.trigger.interval": "1s"})
    workers = _workers(server)
    assert len(workers) == 2
    stop = threading.Event()
    acknowledged: list[int] = []
    threads = load(stream, stop, acknowledged, keep_going=True)
    time.sleep(1.5)
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(10)
    killed_at = len(acknowledged)
    deadline = time.monotonic() + 30
    while len(_workers(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    # The server went on (the other worker, then both) and has two workers again.
    assert server.process is not None and server.process.poll() is None
    assert len(acknowledged) > killed_at + 50
    assert workers[0].pid not in {p.pid for p in _workers(server)} and len(_workers(server)) == 2

    result = stream.flush(wait=60)
    assert result["imported"], result
    numbers = [int(r[0]) for r in table_rows(server.data_dir, "in.c-test.crash")]
    assert len(numbers) == len(set(numbers)), "an event was imported twice"
    assert set(acknowledged) <= set(numbers), "an acknowledged event is missing"
