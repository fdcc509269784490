"""What ``tail`` shows of a table, the same in every target: which columns in
which order (system columns first, like ``kamu tail``), typed values, and the
errors of a table without system columns or without an event-time column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pushstream.targets.base import SYSTEM_COLUMNS, TargetError

#: (column names, rows oldest first); values are ``str``, ``int``, ``float``,
#: ``bool`` or ``None`` (timestamps, dates and json as their canonical text).
TailRows = tuple[list[str], list[tuple[Any, ...]]]

#: The orders ``tail`` knows: import order, or by the table's event-time column.
TAIL_ORDERS = ("import", "event-time")


def no_system_columns(table_id: str) -> TargetError:
    return TargetError(
        f'table "{table_id}" has no system columns ({", ".join(SYSTEM_COLUMNS)}):'
        ' the sink writing it needs "systemColumns": true in its mapping'
    )


def no_event_time(table_id: str) -> TargetError:
    return TargetError(
        f'table "{table_id}" has no event-time column: the sink writing it needs "eventTimeColumn" in its mapping'
    )


def display_order(table_id: str, columns: Sequence[str], event_time: str | None, *, system: bool) -> list[str]:
    """The columns ``tail`` shows. ``system``: ``_offset``, ``_op``,
    ``_system_time``, the event-time column, then the rest (a table without system
    columns: :class:`TargetError`); otherwise the table's columns without the
    system columns."""
    has_system = all(c in columns for c in SYSTEM_COLUMNS)
    rest = [c for c in columns if not (has_system and c in SYSTEM_COLUMNS)]
    if not system:
        return rest
    if not has_system:
        raise no_system_columns(table_id)
    first = [event_time] if event_time is not None and event_time in rest else []
    return [*SYSTEM_COLUMNS, *first, *(c for c in rest if c not in first)]


def typed_value(value: Any, data_type: str) -> Any:
    """A value as ``tail`` returns it: numbers and booleans as such, text
    columns as text (a text column of a table made by hand may hold numbers)."""
    if value is None:
        return None
    if data_type == "integer":
        return int(value)
    if data_type == "number":
        return float(value)
    if data_type == "boolean":
        return bool(value)
    return str(value)
