"""The coordinator as a process of its own (what ``pushstream serve`` starts).

Exactly one coordinator runs per data dir: it holds an exclusive ``flock`` on
``<data dir>/coordinator.lock`` for its lifetime (released by the kernel when the
process dies, also on ``kill -9``). It stops on SIGTERM/SIGINT, and the kernel
kills it when the server process that started it dies. It reads its
configuration (JSON) from standard input and builds its components with
:mod:`pushstream.wiring`, as the server's workers do (without Flask or the API).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from pushstream import logs
from pushstream.config import ServerConfig
from pushstream.coordinator.lock import lock_data_dir
from pushstream.errors import StoreUnavailableError

if TYPE_CHECKING:
    from pushstream.coordinator.pipeline import Coordinator

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: The pid of the `serve` process that started the coordinator (see :func:`main`).
PARENT_PID_VARIABLE = "PUSHSTREAM_SERVE_PID"


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Asks the kernel to send ``sig`` to this process when its parent dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) is not available")


def main(config_json: str) -> int:
    # A stop asked for while the coordinator is being built still lets it upload
    # this node's slices (see Coordinator.drain) instead of killing it half-way.
    stopping = threading.Event()
    coordinator: Coordinator | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if coordinator is not None:
            coordinator.stop_soon()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from pushstream.wiring import new_coordinator, node_agent, open_catalog, open_data_plane

    # Killed outright when `serve` dies abruptly (it is crash-safe at any moment): a
    # SIGTERM would wait for the current tick, which may block on the catalog or a target.
    die_with_parent(signal.SIGKILL)
    expected_parent = os.environ.get(PARENT_PID_VARIABLE)
    if expected_parent and int(expected_parent) != os.getppid():
        return 1  # `serve` died before the request above took effect
    logs.configure("info")
    config = ServerConfig.from_json(config_json)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if lock_data_dir(config.data_dir) is None:
        log.error("another coordinator runs for %s; this one exits", config.data_dir)
        return 1
    while True:
        try:
            catalog = open_catalog(config)
            plane = open_data_plane(config)
            break
        except StoreUnavailableError as exc:
            # The control plane of a cluster is away: wait for it here rather than
            # exit and be restarted every second.
            log.warning("waiting for the control plane: %s", exc)
            if stopping.wait(5.0):
                return 0
    coordinator = new_coordinator(config, catalog, plane)
    agent = node_agent(config, catalog, plane)
    if agent is not None:
        agent.start()
    if stopping.is_set():
        coordinator.stop_soon()
    log.info("coordinator started for %s", config.data_dir.resolve())
    coordinator.run()
    # Imports under way go on meanwhile: the slices on this disk go first.
    try:
        coordinator.drain()
    except Exception:
        log.exception("uploading this node's slices before it stops failed; they are uploaded when it is back")
    coordinator.finish_imports()
    if agent is not None:
        agent.stop()
    coordinator.lease.release()
    plane.close()
    catalog.close()
    log.info("coordinator stopped")
    return 0


if __name__ == "__main__":
    # The configuration comes on standard input: it holds secrets (see supervisor.py).
    sys.exit(main(sys.stdin.read()))
