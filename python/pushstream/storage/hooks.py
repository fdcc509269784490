"""Keeps storage in step with configuration: hooks on the change events of
:mod:`pushstream.catalog.events` that run inside the task of a config change (same
transaction), so that when the task reports success the sink already has the
slice its new configuration writes to. :func:`pushstream.wiring.register_change_hooks`
installs them, with the target's table check after them.

- a sink is created, undeleted or enabled → it gets a writing file and slice;
- its table or columns change → the writing file is closed (its rows are
  imported with the columns they were written with) and a new one opened;
- its settings change (its own or inherited from the source) → the writing file
  is closed and a new one opened: new sync settings apply to new slices, and
  changed import conditions import what waits at once;
- it is disabled or deleted → the writing file is closed and imported.
"""

from __future__ import annotations

from collections.abc import Callable

from pushstream.catalog.events import Hooks, SinkChange
from pushstream.catalog.models import Sink
from pushstream.storage.layout import SinkKey


def columns_json(sink: Sink) -> str:
    """What a storage file records about the sink it is opened for: the sink's
    whole ``table.mapping`` object as JSON (columns with their data types, merge
    strategy, event-time column, system columns), read back by
    :func:`pushstream.coordinator.pipeline.table_spec`. Same text as
    :attr:`~pushstream.catalog.models.Sink.mapping_json`, which the receiver compares."""
    return sink.mapping_json


SinkHook = Callable[[SinkChange], object]


def on_sink_change(change: SinkChange) -> None:
    """Opens, rotates or closes the sink's writing file as the change requires, in
    the storage state bound to the change's transaction (they commit together)."""
    sink = change.sink
    key = SinkKey(sink.branch_id, sink.source_id, sink.sink_id)
    storage = change.tx.storage()
    active = change.new is not None and change.new.enabled and not change.new.is_deleted
    if change.kind in ("disabled", "deleted") or not active:
        storage.close_file(key)
    elif change.kind == "settings_changed":
        if storage.rotate_file(key) is None:
            storage.ensure_writing(key, sink.table_id, columns_json(sink))
    else:
        storage.ensure_writing(key, sink.table_id, columns_json(sink))


def register(hooks: Hooks, *, extra: SinkHook | None = None) -> None:
    """Installs the storage hooks (and ``extra``, e.g. a target's table check, after them)."""
    hooks.on_sink_change(on_sink_change)
    if extra is not None:
        hooks.on_sink_change(extra)
