"""``pushstream serve`` and its processes: one server per port and per data dir,
no secret on a command line, every process stops with the server, and a worker
that crashes again and again is always started again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from serverprocess import ADMIN_TOKEN, PUSHSTREAM, ServerProcess, free_port
from streamclient import Stream, load


def _tree(server: ServerProcess) -> list[psutil.Process]:
    assert server.process is not None
    root = psutil.Process(server.process.pid)
    return [root, *root.children(recursive=True)]


def _workers(server: ServerProcess) -> list[psutil.Process]:
    """The living worker processes (not the coordinator, not a dead worker not yet reaped)."""
    workers = []
    for process in _tree(server)[1:]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if process.status() != psutil.STATUS_ZOMBIE and "pushstream.coordinator" not in " ".join(process.cmdline()):
                workers.append(process)
    return workers


def _wait(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def _serve(data_dir: Path, port: int, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """A second ``serve`` that is expected to refuse to start."""
    env = {**os.environ, "PUSHSTREAM_API_TOKEN": ADMIN_TOKEN}
    command = [*PUSHSTREAM, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the second serve did not refuse to start: {exc.stderr!r}")


def test_a_second_serve_on_a_port_in_use_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    result = _serve(tmp_path / "other", server.port)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
    # The first server still answers every request itself.
    for _ in range(20):
        assert requests.get(f"{server.url}/health-check", timeout=10).status_code == 200


def test_a_second_serve_on_a_data_dir_in_use_is_refused(server: ServerProcess) -> None:
    result = _serve(server.data_dir, free_port())
    assert result.returncode != 0
    assert "is in use by another pushstream serve" in result.stderr
    assert requests.get(f"{server.url}/health-check", timeout=10).status_code == 200


def test_no_secret_is_on_a_command_line(server_factory: Any, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path}/target-secret-c4f1.sqlite"
    server: ServerProcess = server_factory(args=("--workers", "2"), env={"PUSHSTREAM_TARGET": target})
    processes = _tree(server)
    assert len(processes) == 4  # serve, coordinator, two workers
    for process in processes:
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        assert ADMIN_TOKEN not in command_line, command_line
        assert "target-secret-c4f1" not in command_line, command_line


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_stopping_serve_stops_every_process_it_started(server_factory: Any, stop: str) -> None:
    server: ServerProcess = server_factory(args=("--workers", "2"))
    # A respawned worker must stop with the server too.
    first = _workers(server)[0]
    first.send_signal(signal.SIGKILL)
    assert _wait(lambda: len(_workers(server)) == 2 and first.pid not in {w.pid for w in _workers(server)})
    assert _wait(lambda: len(_tree(server)) == 4)
    processes = _tree(server)
    assert server.process is not None
    server.process.send_signal(getattr(signal, stop))
    _, alive = psutil.wait_procs(processes, timeout=40)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    assert not alive, f"still running after {stop} to serve: {[p.pid for p in alive]}"
    server.process.wait(10)
    server.process = None
    # The port is free again: nothing holds it.
    replacement = ServerProcess(server.data_dir)
    replacement.port, replacement.url = server.port, server.url
    try:
        replacement.start()
    finally:
        replacement.stop()


def test_a_worker_that_keeps_crashing_is_always_started_again(server_factory: Any) -> None:
    # granian alone gives up after two crashes within 5.5 s and stops the whole server.
    server: ServerProcess = server_factory()
    for crash in (signal.SIGKILL, signal.SIGSEGV, signal.SIGKILL, signal.SIGABRT, signal.SIGKILL):
        [worker] = _workers(server)
        worker.send_signal(crash)
        assert _wait(lambda w=worker: [p.pid for p in _workers(server)] not in ([], [w.pid]), timeout=60), server.log()
        assert server.process is not None and server.process.poll() is None, server.log()
        assert _wait(lambda: _healthy(server), timeout=60), server.log()
    log = server.log()
    assert "Worker crash loop detected" not in log
    assert "died after" in log and "signal SIGSEGV" in log and "starting it again" in log


def _healthy(server: ServerProcess) -> bool:
    try:
        return requests.get(f"{server.url}/health-check", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_a_crash_is_logged_with_the_requests_it_was_processing(server_factory: Any) -> None:
    server: ServerProcess = server_factory()
    stream = Stream(server).create()
    stream.sink("rows", [{"type": "body", "name": "body"}])
    # A template that runs until its time budget: every request is processed for a
    # quarter of a second or more, so under load one is always in flight.
    slow = {"language": "jsonnet", "content": "std.foldl(function(a, b) a + 1, std.range(1, 999999), 0)"}
    stream.sink("slow", [{"type": "template", "name": "n", "template": slow}])
    for _ in range(5):
        stop = threading.Event()
        threads = load(stream, stop, [], keep_going=True)
        time.sleep(1.0)
        [worker] = _workers(server)
        worker.send_signal(signal.SIGSTOP)  # frozen in the middle of its requests
        worker.send_signal(signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert _wait(lambda: _healthy(server), timeout=60), server.log()
        if "while processing: POST /stream/1/events/… from 127.0.0.1" in server.log():
            return
    pytest.fail(f"no crash was logged with its requests:\n{server.log()}")
