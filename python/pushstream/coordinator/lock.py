"""The coordinator lock: an exclusive ``flock`` on ``<data dir>/coordinator.lock``
held for the lifetime of the coordinator (released by the kernel when its
process dies, also on ``kill -9``), so exactly one runs per data dir."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

FILE_NAME = "coordinator.lock"


def lock_data_dir(data_dir: Path) -> int | None:
    """Takes the lock; returns its file descriptor, or ``None`` when another holds it."""
    fd = os.open(data_dir / FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def coordinator_running(data_dir: Path) -> bool:
    """Whether some process (this one included) holds the coordinator lock."""
    fd = lock_data_dir(data_dir)
    if fd is None:
        return True
    os.close(fd)  # closing releases the probe's lock
    return False
