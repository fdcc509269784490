"""Flush: close the writing files of a source (or sink) now and, optionally, wait
until the coordinator has imported them (or an import attempt failed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pushstream import wire
from pushstream.storage.state import StorageState, file_states, flush

_POLL = 0.05


def flush_handler(storage: StorageState, coordinator_running: Callable[[], bool]) -> Any:
    """The handler of ``POST .../flush`` (see :mod:`pushstream.api.operator`).
    Waiting only makes sense while a coordinator runs; without one it answers at once."""

    def handle(branch_id: int, source_id: str, sink_id: str | None, wait: float) -> wire.FlushResult:
        with storage.transaction() as db:
            files = flush(db, branch_id, source_id, sink_id)
            attempts = {f: a for f, (_, a, _) in zip(files, file_states(db, files), strict=True)}
        if not coordinator_running():
            wait = 0.0
        deadline = time.monotonic() + wait
        while True:
            states = file_states(storage.db(), files)
            # Done when every file is imported or had a failed attempt since the flush.
            settled = all(s == "imported" or a > attempts[f] for f, (s, a, _) in zip(files, states, strict=True))
            if settled or time.monotonic() >= deadline:
                break
            time.sleep(_POLL)
        items = [
            wire.flushed_file(key.sink_id, file_id, state, attempt, reason or "")
            for (key, file_id), (state, attempt, reason) in zip(files, states, strict=True)
        ]
        return wire.flush_result(branch_id, source_id, items)

    return handle
