"""The task runner: every mutating API call answers 202 with a task and the change
is made in the background by a small thread pool of the process that took the call.

A task is stored (``processing``) before the call answers. Its change runs in one
catalog transaction: the change is written, the hooks run, the config revision is
bumped and the task is marked ``success`` — one commit. If anything raises, the
transaction rolls back and the task is marked ``error`` with the message. Tasks
whose process died are failed by :meth:`Catalog.fail_orphaned_tasks`. Finished
tasks are kept for :data:`TASK_RETENTION_SECONDS`.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pushstream.catalog.base import Catalog, Propagation, Transaction
from pushstream.catalog.events import Change, Hooks
from pushstream.catalog.models import Task, now
from pushstream.errors import ApiError

log = logging.getLogger(__name__)

#: Tasks are kept at least this long (and purged after it).
TASK_RETENTION_SECONDS = 24 * 3600
_PURGE_EVERY_SECONDS = 600
_SUFFIX_CHARS = string.ascii_lowercase + string.digits


@dataclass
class Outcome:
    """What a task's change did: the changes (for hooks; none means nothing was
    written and the revision stays) and the task's result message."""

    result: str
    changes: Sequence[Change] = field(default_factory=list)


Apply = Callable[[Transaction, str], Outcome]


def new_task_id(task_type: str, *key: object) -> str:
    """``<type>/<key...>/<time>_<random>``, e.g. ``api.create.source/1/my-source/2024-..._ab12c``
    (the type, Keboola's, is the id's prefix)."""
    suffix = f"{now()}_{''.join(secrets.choice(_SUFFIX_CHARS) for _ in range(5))}"
    return "/".join([task_type, *(str(k) for k in key), suffix])


class TaskRunner:
    """Runs task changes on a thread pool; see the module docstring.

    With ``propagation`` (a cluster), a task's change commits first and the task
    reports success once every live node follows it (read-your-writes across the
    nodes); a node that does not follow in time is logged, not waited for."""

    def __init__(
        self, catalog: Catalog, hooks: Hooks, *, workers: int = 2, propagation: Propagation | None = None
    ) -> None:
        self._catalog = catalog
        self._hooks = hooks
        self._propagation = propagation
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pushstream-task")
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self._last_purge = 0.0

    def start(
        self,
        task_type: str,
        key: Sequence[object],
        outputs: dict[str, Any],
        apply: Apply,
        *,
        reserve: Callable[[Transaction], object] | None = None,
    ) -> Task:
        """Stores a new ``processing`` task and schedules ``apply(tx, task_id)``; returns the task as created.

        ``reserve(tx)`` runs in the transaction that stores the task: what it raises
        (e.g. a 409 because a task creating the same id is still running) is the
        call's answer and no task is made. Two concurrent calls cannot both pass it."""
        task = Task(
            task_id=new_task_id(task_type, *key),
            type=task_type,
            status="processing",
            created_at=now(),
            outputs=outputs,
        )
        with self._catalog.transaction() as tx:
            if reserve is not None:
                reserve(tx)
            tx.create_task(task)
        self._maybe_purge()
        future = self._executor.submit(self._run, task.task_id, apply)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return task

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def run_now(self, task_id: str, apply: Apply) -> None:
        """Runs a change in the calling thread (what the pool does for each task)."""
        self._run(task_id, apply)

    def _run(self, task_id: str, apply: Apply) -> None:
        try:
            with self._catalog.transaction() as tx:
                outcome = apply(tx, task_id)
                self._hooks.run(outcome.changes)
                revision = tx.bump_revision() if outcome.changes else tx.revision()
                if self._propagation is None or not outcome.changes:
                    tx.finish_task(task_id, "success", result=outcome.result)
        except ApiError as exc:
            self._fail(task_id, exc.message)
            return
        except Exception as exc:
            log.exception("task %s failed", task_id)
            self._fail(task_id, str(exc) or type(exc).__name__)
            return
        if outcome.changes:
            self._hooks.run_after_commit(outcome.changes, revision)
            if self._propagation is not None:
                self._finish_when_followed(task_id, revision, outcome.result)

    def _finish_when_followed(self, task_id: str, revision: int, result: str) -> None:
        lagging = self._propagation.wait(revision) if self._propagation is not None else []
        if lagging:
            log.warning(
                "task %s: config revision %d is not followed yet by node(s) %s", task_id, revision, ", ".join(lagging)
            )
        try:
            self._catalog.finish_task(task_id, "success", result=result)
        except Exception:
            log.exception("could not record the success of task %s", task_id)

    def _fail(self, task_id: str, message: str) -> None:
        try:
            self._catalog.finish_task(task_id, "error", result=message, error=message)
        except Exception:
            log.exception("could not record the failure of task %s", task_id)

    def _maybe_purge(self) -> None:
        current = time.monotonic()
        if current - self._last_purge < _PURGE_EVERY_SECONDS:
            return
        self._last_purge = current
        try:
            self._catalog.purge_tasks(TASK_RETENTION_SECONDS)
        except Exception:
            log.exception("purging old tasks failed")

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Waits until no task is pending; returns False on timeout (used by tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for future in pending:
                try:
                    future.result(timeout=remaining)
                except Exception:
                    log.debug("a task future raised", exc_info=True)
                break

    def shutdown(self, wait: bool = True) -> None:
        """Stops taking tasks; with ``wait`` finishes the pending ones first."""
        self._executor.shutdown(wait=wait)
