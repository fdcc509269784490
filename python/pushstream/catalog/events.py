"""Change events: what a configuration change reports to the components that
take part in it, and the registry (:class:`Hooks`) they register their callbacks in.

Every mutating API call runs as a task. Inside the task, the change is written in
one catalog transaction; before it commits, the hooks registered for the change run
in the same thread with the :class:`Transaction <pushstream.catalog.base.Transaction>`
at hand (``change.tx``). A hook that raises fails the task — ``status: "error"``,
``result`` and ``error`` = the exception's message — and the change is rolled back.
Only when every hook passed is the change committed, the config revision bumped
and the task marked ``success`` (all in the same commit).

Hooks run while the catalog's write lock is held: keep them short, and write to the
catalog only through ``change.tx`` (another connection would wait for the lock).
``after_commit`` callbacks run after the commit; their exceptions are logged only.

The events live next to the catalog (not in the API that raises them) so that the
data plane (:mod:`pushstream.storage.hooks`) can subscribe without depending on
the API. Example (the storage components creating destination tables)::

    hooks = api_services(app).hooks

    @hooks.on_sink_change
    def ensure_table(change: SinkChange) -> None:
        if change.kind in ("created", "updated", "undeleted") and change.new is not None:
            targets.ensure_table(change.new.table_id, change.new.columns)  # raises → task fails
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pushstream.catalog.base import Transaction
from pushstream.catalog.models import Sink, Source

log = logging.getLogger(__name__)

ChangeKind = Literal["created", "updated", "enabled", "disabled", "deleted", "undeleted", "settings_changed"]


@dataclass(frozen=True)
class SourceChange:
    """A change of a source. ``old`` is ``None`` for ``created``; ``new`` is ``None``
    when the source is hard-deleted (``purge``, ``DELETE ...?cascade=true``).
    A rollback is reported as ``updated``."""

    kind: ChangeKind
    old: Source | None
    new: Source | None
    tx: Transaction
    task_id: str
    purge: bool = False


@dataclass(frozen=True)
class SinkChange:
    """A change of a sink. ``cause`` is ``"source"`` when the sink changes because
    its source did (deleted or undeleted with it, settings inherited from it), else
    ``"sink"``. For inherited settings ``old`` and ``new`` are the same sink: read
    the new effective settings with ``change.tx.effective_settings(...)``."""

    kind: ChangeKind
    old: Sink | None
    new: Sink | None
    tx: Transaction
    task_id: str
    purge: bool = False
    cause: Literal["sink", "source"] = "sink"

    @property
    def sink(self) -> Sink:
        """The sink as it is after the change, or as it was when it is gone."""
        sink = self.new or self.old
        assert sink is not None
        return sink


Change = SourceChange | SinkChange
F = TypeVar("F", bound=Callable[..., object])


class Hooks:
    """The registry of hooks of one application (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._source: list[Callable[[SourceChange], object]] = []
        self._sink: list[Callable[[SinkChange], object]] = []
        self._after: list[Callable[[Sequence[Change], int], object]] = []

    def on_source_change(self, fn: Callable[[SourceChange], object]) -> Callable[[SourceChange], object]:
        """Registers ``fn(change)`` for every change of a source (usable as a decorator)."""
        with self._lock:
            self._source.append(fn)
        return fn

    def on_sink_change(self, fn: Callable[[SinkChange], object]) -> Callable[[SinkChange], object]:
        """Registers ``fn(change)`` for every change of a sink (usable as a decorator)."""
        with self._lock:
            self._sink.append(fn)
        return fn

    def after_commit(self, fn: Callable[[Sequence[Change], int], object]) -> Callable[[Sequence[Change], int], object]:
        """Registers ``fn(changes, revision)``, called after a change is committed."""
        with self._lock:
            self._after.append(fn)
        return fn

    def run(self, changes: Sequence[Change]) -> None:
        """Runs the hooks of ``changes`` in order; the first exception propagates."""
        with self._lock:
            source_hooks, sink_hooks = list(self._source), list(self._sink)
        for change in changes:
            if isinstance(change, SourceChange):
                for source_hook in source_hooks:
                    source_hook(change)
            else:
                for sink_hook in sink_hooks:
                    sink_hook(change)

    def run_after_commit(self, changes: Sequence[Change], revision: int) -> None:
        with self._lock:
            after = list(self._after)
        for fn in after:
            try:
                fn(changes, revision)
            except Exception:
                log.exception("an after-commit hook failed")
