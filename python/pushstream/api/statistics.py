"""Statistics of sinks and sources, served by a provider registered on the app.

Until the storage pipeline registers its own provider (with
:func:`set_statistics_provider`), :class:`ZeroStatistics` answers: no records on
any level and no files.

Shapes (Keboola's): a *level* is ``{"firstRecordAt"?, "lastRecordAt"?,
"recordsCount", "compressedSize", "uncompressedSize"}``; totals are
``{"total": level, "levels": {"local"?: level, "staging"?: level, "target"?: level},
"rejected"?: {"recordsCount"}}`` (``rejected``, beyond Keboola: rows the target
refused, present only when there are any; also beyond Keboola, a level may end
with ``"firstEventAt"?, "lastEventAt"?``: the event-time range of imported rows
of a sink with an event-time column);
a file is ``{"state", "openedAt", "closingAt"?, "importingAt"?, "importedAt"?,
"retryAttempt"?, "retryReason"?, "retryAfter"?, "statistics": totals}``.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
from flask import Flask

from pushstream import wire

_EXTENSION_KEY = "pushstream.statistics"


def empty_level() -> dict[str, Any]:
    """A level without records."""
    level: dict[str, Any] = wire.to_builtins(wire.level(0, 0, 0))
    return level


class StatisticsProvider(Protocol):
    """What the API asks the storage pipeline about statistics (bodies of :mod:`pushstream.wire`)."""

    def sink_totals(self, branch_id: int, source_id: str, sink_id: str) -> wire.SinkStatisticsTotalResult:
        """``{"total": level, "levels": {...}, "rejected"?}`` of one sink."""
        ...

    def sink_files(
        self, branch_id: int, source_id: str, sink_id: str, *, failed_only: bool, by_event_time: bool = False
    ) -> list[wire.SinkFile]:
        """Recent files of one sink, newest first (only those not imported, with
        ``failed_only``; ``by_event_time``: latest last event time first)."""
        ...

    def clear_sink(self, branch_id: int, source_id: str, sink_id: str) -> None:
        """Forgets the statistics of one sink."""
        ...

    def clear_source(self, branch_id: int, source_id: str) -> None:
        """Forgets the statistics of every sink of a source."""
        ...


class ZeroStatistics:
    """The provider used until the storage pipeline registers one: everything is zero."""

    def sink_totals(self, branch_id: int, source_id: str, sink_id: str) -> wire.SinkStatisticsTotalResult:
        return wire.empty_totals()

    def sink_files(
        self, branch_id: int, source_id: str, sink_id: str, *, failed_only: bool, by_event_time: bool = False
    ) -> list[wire.SinkFile]:
        return []

    def clear_sink(self, branch_id: int, source_id: str, sink_id: str) -> None:
        return None

    def clear_source(self, branch_id: int, source_id: str) -> None:
        return None


def set_statistics_provider(app: Flask, provider: StatisticsProvider) -> None:
    """Makes ``provider`` answer the statistics endpoints of ``app``."""
    app.extensions[_EXTENSION_KEY] = provider


def get_statistics_provider(app: Flask) -> StatisticsProvider:
    """The provider of ``app`` (:class:`ZeroStatistics` when none was set)."""
    provider: StatisticsProvider | None = app.extensions.get(_EXTENSION_KEY)
    if provider is None:
        provider = ZeroStatistics()
        app.extensions[_EXTENSION_KEY] = provider
    return provider


def sink_statistics(app: Flask, branch_id: int, source_id: str, sink_id: str) -> wire.AggregatedStatistics:
    """The ``statistics`` block of a sink in the aggregation endpoint: totals plus files."""
    provider = get_statistics_provider(app)
    totals = msgspec.convert(provider.sink_totals(branch_id, source_id, sink_id), wire.SinkStatisticsTotalResult)
    files = msgspec.convert(provider.sink_files(branch_id, source_id, sink_id, failed_only=False), list[wire.SinkFile])
    return wire.aggregated_statistics(totals, files)
