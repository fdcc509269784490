"""Statistics of sinks from the storage state, in Keboola's shapes.

Levels: ``local`` — rows in slices nodes are writing or closing (uncompressed
only); ``staging`` — rows in uploaded slices of files not imported yet;
``target`` — rows of imported files. ``total`` sums the levels. Beyond Keboola,
``rejected`` (only when there are any) counts rows of imported files that the
target refused (see :mod:`pushstream.storage.rejected`), and a sink with an
event-time column gets ``firstEventAt``/``lastEventAt`` on ``target`` and in
``total``: the range of the event times of its imported rows, which each import
reports (see :class:`pushstream.targets.base.ImportResult`). Node statistics
are reported at least once a second, so ``local`` trails by up to a second.
"""

from __future__ import annotations

from pushstream import wire
from pushstream.catalog.models import format_time
from pushstream.storage.base import StorageState
from pushstream.storage.layout import SinkKey
from pushstream.storage.state import LevelCounts

#: Files listed by ``statistics/files`` (most recent first, or latest event time first).
MAX_FILES = 100


def _level(counts: LevelCounts) -> wire.Level:
    return wire.level(
        counts.records,
        counts.compressed_size,
        counts.uncompressed_size,
        _time(counts.first_record_ns),
        _time(counts.last_record_ns),
        first_event=_time(counts.first_event_ns),
        last_event=_time(counts.last_event_ns),
    )


def _sum(levels: list[LevelCounts]) -> wire.Level:
    firsts = [lv.first_record_ns for lv in levels if lv.records and lv.first_record_ns is not None]
    lasts = [lv.last_record_ns for lv in levels if lv.records and lv.last_record_ns is not None]
    # Only imported rows have known event times (the target level): the total shows theirs.
    first_events = [lv.first_event_ns for lv in levels if lv.records and lv.first_event_ns is not None]
    last_events = [lv.last_event_ns for lv in levels if lv.records and lv.last_event_ns is not None]
    return _level(
        LevelCounts(
            sum(lv.records for lv in levels),
            sum(lv.compressed_size for lv in levels),
            sum(lv.uncompressed_size for lv in levels),
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
            min(first_events) if first_events else None,
            max(last_events) if last_events else None,
        )
    )


def _time(ns: int | None) -> str | None:
    return None if ns is None else format_time(ns)


class StorageStatistics:
    """The API's :class:`~pushstream.api.statistics.StatisticsProvider` over the storage state
    (its bodies are made by :mod:`pushstream.wire`)."""

    def __init__(self, storage: StorageState) -> None:
        self.storage = storage

    def _totals(self, key: SinkKey, file_id: str | None = None) -> wire.SinkStatisticsTotalResult:
        levels = self.storage.level_counts(key, file_id)
        present = {name: _level(counts) for name, counts in levels.items() if counts.records}
        # Rows the target refused are beyond Keboola; they count in ``target`` too, as rows of imported files.
        rejected = self.storage.rejected_records(key, file_id)
        return wire.totals(_sum(list(levels.values())), present, rejected)

    def sink_totals(self, branch_id: int, source_id: str, sink_id: str) -> wire.SinkStatisticsTotalResult:
        return self._totals(SinkKey(branch_id, source_id, sink_id))

    def sink_files(
        self, branch_id: int, source_id: str, sink_id: str, *, failed_only: bool, by_event_time: bool = False
    ) -> list[wire.SinkFile]:
        key = SinkKey(branch_id, source_id, sink_id)
        files = self.storage.file_records(key, failed_only=failed_only, limit=MAX_FILES, by_event_time=by_event_time)
        return [
            wire.sink_file(
                f.state,
                format_time(f.opened_ns),
                self._totals(key, f.file_id),
                closing_at=_time(f.closing_ns),
                importing_at=_time(f.importing_ns),
                imported_at=_time(f.imported_ns),
                retry_attempt=f.retry_attempt,
                retry_reason=f.retry_reason or "",
                retry_after=_time(f.retry_after_ns),
            )
            for f in files
        ]

    def clear_sink(self, branch_id: int, source_id: str, sink_id: str) -> None:
        """Forgets imported files (the target level); data not yet imported is kept."""
        with self.storage.atomic() as tx:
            tx.forget_imported(SinkKey(branch_id, source_id, sink_id))

    def clear_source(self, branch_id: int, source_id: str) -> None:
        for sink_id in self.storage.sinks_with_files(branch_id, source_id):
            self.clear_sink(branch_id, source_id, sink_id)
