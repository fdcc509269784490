"""kill -9 of the coordinator at random moments of rotation, upload and import
while events keep coming: after it is restarted (the server supervises it),
every acknowledged event is in its table exactly once, with and without a key."""

from __future__ import annotations

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

KEYED = [
    {"type": "path", "name": "n", "path": "n", "primaryKey": True},
    {"type": "body", "name": "body"},
]
APPENDED = [{"type": "path", "name": "n", "path": "n"}]
FAST = {
    "storage.level.staging.upload.trigger.interval": "1s",
    "storage.level.target.import.trigger.count": 200,
}


def coordinator_pid(server: ServerProcess) -> int | None:
    assert server.process is not None
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "pushstream.coordinator.process" in " ".join(child.cmdline()):
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.mark.parametrize("seed", range(2))
def test_coordinator_killed_during_imports(server_factory: Any, seed: int) -> None:
    rnd = random.Random(seed)
    server: ServerProcess = server_factory()
    stream = Stream(server).create()
    stream.sink("keyed", KEYED, **FAST)
    stream.sink("appended", APPENDED, **FAST)
    stop = threading.Event()
    acknowledged: list[int] = []
    threads = load(stream, stop, acknowledged, clients=4)
    kills = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        time.sleep(rnd.uniform(0.3, 1.2))
        pid = coordinator_pid(server)
        if pid is not None:
            psutil.Process(pid).send_signal(signal.SIGKILL)
            kills += 1
    stop.set()
    for t in threads:
        t.join()
    assert kills >= 4 and len(acknowledged) > 100

    # The supervisor restarts the coordinator; flush imports what is left.
    time.sleep(1.5)
    result = stream.flush(wait=60)
    assert result["imported"], result
    keyed = [int(r[0]) for r in table_rows(server.data_dir, "in.c-test.keyed")]
    appended = [int(r[0]) for r in table_rows(server.data_dir, "in.c-test.appended")]
    for numbers in (keyed, appended):
        assert len(numbers) == len(set(numbers)), "a row was imported twice"
        assert set(acknowledged) <= set(numbers), "an acknowledged event is missing"
    for n, body in table_rows(server.data_dir, "in.c-test.keyed"):
        assert json.loads(body)["n"] == int(n)
    assert "restarting it" in server.log()


def _api_has_merge_strategies() -> bool:
    from pushstream import wire

    return "merge_strategy" in wire.TableMapping.__struct_fields__ and "data_type" in wire.TableColumn.__struct_fields__


TYPED_KEY = [
    {"type": "path", "name": "n", "path": "n", "primaryKey": True, "dataType": "integer", "nullable": False},
    {"type": "body", "name": "body"},
]
TYPED = [{"type": "path", "name": "n", "path": "n", "dataType": "integer"}]


@pytest.mark.skipif(not _api_has_merge_strategies(), reason="the Stream API of this build has no mergeStrategy")
@pytest.mark.parametrize(("columns", "strategy"), [(TYPED, "append"), (TYPED_KEY, "upsert"), (TYPED_KEY, "ledger")])
def test_coordinator_killed_during_imports_with_merge_strategies(
    server_factory: Any, columns: list[dict[str, Any]], strategy: str
) -> None:
    """The same with typed columns, each merge strategy and system columns: every
    acknowledged event once, numbered by offsets that a killed import never used."""
    rnd = random.Random(strategy)
    server: ServerProcess = server_factory()
    stream = Stream(server).create()
    stream.sink("typed", columns, mapping={"mergeStrategy": strategy, "systemColumns": True}, **FAST)
    stop = threading.Event()
    acknowledged: list[int] = []
    threads = load(stream, stop, acknowledged, clients=4)
    kills = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        time.sleep(rnd.uniform(0.3, 1.2))
        pid = coordinator_pid(server)
        if pid is not None:
            psutil.Process(pid).send_signal(signal.SIGKILL)
            kills += 1
    stop.set()
    for t in threads:
        t.join()
    assert kills >= 3 and len(acknowledged) > 100
    time.sleep(1.5)
    assert stream.flush(wait=60)["imported"]
    rows = table_rows(server.data_dir, "in.c-test.typed")
    numbers = [r[0] for r in rows]
    assert all(isinstance(n, int) for n in numbers)  # a native INTEGER column
    assert len(numbers) == len(set(numbers)), "a row was imported twice"
    assert set(acknowledged) <= set(numbers), "an acknowledged event is missing"
    offsets = sorted(r[-3] for r in rows)
    assert offsets == list(range(len(rows))), "offsets are not 0, 1, 2, ... (a killed import used some)"
