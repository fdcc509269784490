"""What ``pushstream serve`` does around granian: it refuses a port or a data dir
that is in use (:func:`prepare_serve`), runs the worker processes and the
coordinator process (:func:`run_server`), and keeps the workers running whatever
happens to them. Both kinds of process build their components from the same
configuration with :mod:`pushstream.wiring`.

granian's own respawn gives up after two crashes of a worker within a few
seconds ("Worker crash loop detected") and then stops the whole server; here a
crashed worker is always started again, after a delay that grows while it keeps
crashing, and the crash is logged with the requests it was processing (from the
worker's in-flight board, see :class:`pushstream.receiver.front.InFlightBoard`).
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.mp import MPServer

from pushstream import logs
from pushstream.cluster.identity import node_name
from pushstream.config import ServerConfig
from pushstream.coordinator.supervisor import CoordinatorSupervisor
from pushstream.errors import CatalogError, PushstreamError, StoreUnavailableError
from pushstream.metrics import mark_process_dead, remove_multiprocess_dir, use_multiprocess_dir
from pushstream.receiver.front import InFlightBoard, board_path
from pushstream.receiver.wsgi import HTTP_BUFFER_BYTES
from pushstream.targets.base import TargetError
from pushstream.wiring import prepare_data_dir

log = logging.getLogger("pushstream.serve")

LOCK_FILE = "serve.lock"
#: A worker that dies sooner than this after its start counts as crashing again.
STABLE_AFTER = 10.0
#: Delays before starting a crashing worker again: first, and at most (doubling in between).
FIRST_RESPAWN_DELAY = 0.5
MAX_RESPAWN_DELAY = 10.0


class ServeError(PushstreamError):
    """The server cannot start (port or data dir in use)."""


def ensure_port_free(host: str, port: int) -> None:
    """Raises :class:`ServeError` when something listens on ``host:port`` already.

    granian binds with ``SO_REUSEPORT``, so a second server on the same port would
    start silently and share the port; a probe socket without it fails instead."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {host}:{port}: {exc.strerror} (another server runs on this port?)"
            ) from None


def lock_data_dir_for_serve(data_dir: Path) -> int:
    """Takes ``<data dir>/serve.lock`` for the life of this process (and its workers);
    raises :class:`ServeError` when another ``pushstream serve`` holds it."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ServeError(
            f"the data dir {data_dir} is in use by another pushstream serve (pid {holder}); "
            "stop it or choose another --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def clear_boards(data_dir: Path) -> None:
    """Removes in-flight boards left by workers of an earlier server."""
    for path in (data_dir / "run").glob("inflight-*"):
        path.unlink(missing_ok=True)


def prepare_serve(config: ServerConfig) -> ServerConfig:
    """Takes the data dir for this process, checks the port is free and creates the
    catalog and an embedded target database; returns ``config`` with what is decided
    once for every process of the server (the node's name). Raises :class:`ServeError`."""
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # Held until this process and its workers are gone: one server per data dir.
        lock_data_dir_for_serve(config.data_dir)
        ensure_port_free(config.host, config.port)
    except OSError as exc:
        raise ServeError(str(exc)) from None
    # Created once, before the workers and the coordinator open them at the same moment.
    try:
        prepare_data_dir(config)
    except StoreUnavailableError as exc:
        raise ServeError(
            f"cannot reach the cluster's control plane (--cluster): {exc}; "
            "check the URL and that PostgreSQL is running, then start the node again"
        ) from None
    except TargetError as exc:
        raise ServeError(f"cannot open the target database (--target): {exc}") from None
    except (OSError, CatalogError) as exc:
        raise ServeError(f"cannot open the data dir {config.data_dir}: {exc}") from None
    clear_boards(config.data_dir)
    # Decided here, before the workers and the coordinator start: they must agree on it.
    return replace(config, node_name=node_name(config.data_dir, config.node_name))


def run_server(config: ServerConfig, log_level: str) -> None:
    """Runs the coordinator process and the worker processes until SIGTERM or Ctrl+C."""
    from pushstream.app import load_app, load_front

    # Before any process starts: workers and the coordinator share the metrics through it.
    metrics_path = use_multiprocess_dir(config.data_dir)
    coordinator = CoordinatorSupervisor(config.to_json())
    coordinator.start()
    direct = config.front == "direct"
    server = Server(
        "pushstream.app:load_app" if direct else "pushstream.app:load_front",
        data_dir=config.data_dir,
        address=config.host,
        port=config.port,
        # guarded: the front (pushstream.receiver.front) receives bodies on the event
        # loop and runs the WSGI app on thread pools of its own (--threads ingest threads);
        # direct: granian's threads call the WSGI app and wait for the group commit.
        interface=Interfaces.WSGI if direct else Interfaces.ASGINL,
        blocking_threads=config.threads if direct else None,
        workers=config.workers,
        log_level=LogLevels(log_level),
        log_dictconfig=logs.dict_config(log_level),
        # Connections, not requests: room for the ingest requests of the gate plus API clients.
        backpressure=config.max_ingest_requests + 1024,
        # Headers over the receiver's limit must reach it to get a 413 (see HTTP_BUFFER_BYTES).
        http1_settings=HTTP1Settings(
            header_read_timeout=int(config.idle_timeout * 1000), max_buffer_size=HTTP_BUFFER_BYTES
        ),
        # A worker that dies (killed, out of memory, crashed) is started again under a
        # new node id; the coordinator recovers the slices of the dead one.
        respawn_failed_workers=True,
        # A worker that does not stop within this time after SIGTERM is killed.
        workers_kill_timeout=10,
    )
    try:
        loader = load_app if direct else load_front
        server.serve(target_loader=functools.partial(loader, config.to_json()), wrap_loader=False)
    finally:
        coordinator.stop()
        remove_multiprocess_dir(metrics_path)


class _ThreadWarningFilter(logging.Filter):
    """Drops granian's warning that more WSGI threads than 2 x cores "seems quite
    high": the threads of ``--front direct`` wait for the group commit with the GIL
    released (that wait is why there are ``--threads`` of them), so the number is
    chosen, not a mistake, and the default start must not warn about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Configuration allows spawning up to")


class Server(MPServer):
    """granian's multi-process server with workers that are always started again."""

    def __init__(self, *args: Any, data_dir: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_dir = data_dir
        self._crash_delays: dict[int, float] = {}
        logging.getLogger("_granian").addFilter(_ThreadWarningFilter())

    def _respawn_workers(self, workers: Any, spawn_target: Any, target_loader: Any, delay: float = 0) -> None:
        crashed = [idx for idx in workers if not self.wrks[idx].is_alive()]
        wait = 0.0
        for idx in crashed:
            wait = max(wait, self._note_crash(idx))
        if wait and self.main_loop_interrupt.wait(wait) and self.interrupt_signal:
            return  # stopping: the serve loop shuts down next
        super()._respawn_workers(workers, spawn_target, target_loader, delay)
        # granian's loop stops the server when a worker crashes twice within 5.5 s of
        # a respawn; forgetting the respawn times keeps it from ever doing that.
        for idx in workers:
            self.respawned_wrks.pop(idx, None)

    def _note_crash(self, idx: int) -> float:
        """Logs a worker's crash with what it was doing; returns the delay before its restart."""
        worker = self.wrks[idx]
        pid = worker.inner.pid
        code = worker.inner.exitcode
        cause = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        if pid:
            mark_process_dead(pid)
        path = board_path(self.data_dir, pid) if pid else None
        notes = InFlightBoard.read(path) if path else []
        if path is not None:
            path.unlink(missing_ok=True)
        in_flight = "; ".join(notes) if notes else "no ingest request in flight"
        lived = time.monotonic() - worker.birth
        if lived >= STABLE_AFTER:
            self._crash_delays.pop(idx, None)
            delay = 0.0
        else:
            previous = self._crash_delays.get(idx)
            delay = FIRST_RESPAWN_DELAY if previous is None else min(previous * 2, MAX_RESPAWN_DELAY)
            self._crash_delays[idx] = delay
        log.error(
            "worker-%d (pid %s) died after %.1f s (%s) while processing: %s; starting it again in %.1f s",
            idx + 1,
            pid,
            lived,
            cause,
            in_flight,
            delay,
        )
        return delay
