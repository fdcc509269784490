"""Runs the coordinator as a child process of ``pushstream serve`` and restarts it
when it dies unexpectedly (the data it was moving is picked up again: every
step is restartable).

The configuration, with its secrets (the admin token, the target URL with its
password), goes to the child on its standard input, never on its command line,
which every user of the machine can read."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

from pushstream.coordinator.process import PARENT_PID_VARIABLE

log = logging.getLogger(__name__)

#: Seconds between a crash of the coordinator and its restart.
RESTART_DELAY = 1.0


class CoordinatorSupervisor:
    """Keeps one coordinator process running until :meth:`stop`."""

    def __init__(self, config_json: str) -> None:
        self._command = [sys.executable, "-m", "pushstream.coordinator.process"]
        self._config_json = config_json
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._watch, name="coordinator-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return None if self._process is None else self._process.pid

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            env = {**os.environ, PARENT_PID_VARIABLE: str(os.getpid())}
            self._process = subprocess.Popen(self._command, stdin=subprocess.PIPE, env=env)
            assert self._process.stdin is not None
            try:
                self._process.stdin.write(self._config_json.encode())
                self._process.stdin.close()
            except BrokenPipeError:
                log.error("the coordinator exited before it read its configuration")

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            assert process is not None
            code = process.wait()
            if self._stopping.is_set():
                return
            log.error("the coordinator exited with %s; restarting it in %.0f s", code, RESTART_DELAY)
            if self._stopping.wait(RESTART_DELAY):
                return
            self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        """Asks the coordinator to finish its tick and waits for it (then kills it)."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
