"""Flush: close the writing files of a source (or sink) now and, optionally, wait
until the coordinator has imported them (or an import attempt failed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pushstream import wire
from pushstream.storage.base import StorageState
from pushstream.storage.state import FileState

_POLL = 0.05


def flush_handler(storage: StorageState, coordinator_running: Callable[[], bool]) -> Any:
    """The handler of ``POST .../flush`` (see :mod:`pushstream.api.operator`).
    Waiting only makes sense while a coordinator runs; without one it answers at once."""

    def handle(branch_id: int, source_id: str, sink_id: str | None, wait: float) -> wire.FlushResult:
        with storage.atomic() as tx:
            files = tx.flush(branch_id, source_id, sink_id)
            attempts = {f: s.retry_attempt for f, s in zip(files, tx.file_states(files), strict=True)}
        if not coordinator_running():
            wait = 0.0
        deadline = time.monotonic() + wait
        while True:
            states = storage.file_states(files)
            # Done when every file is imported or had a failed attempt since the flush.
            settled = all(
                s.state == FileState.IMPORTED or s.retry_attempt > attempts[f]
                for f, s in zip(files, states, strict=True)
            )
            if settled or time.monotonic() >= deadline:
                break
            time.sleep(_POLL)
        items = [
            wire.flushed_file(key.sink_id, file_id, s.state, s.retry_attempt, s.retry_reason or "")
            for (key, file_id), s in zip(files, states, strict=True)
        ]
        return wire.flush_result(branch_id, source_id, items)

    return handle
