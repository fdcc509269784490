"""Statistics of sinks from the storage state, in Keboola's shapes.

Levels: ``local`` — rows in slices nodes are writing or closing (uncompressed
only); ``staging`` — rows in uploaded slices of files not imported yet;
``target`` — rows of imported files. ``total`` sums the levels. Beyond Keboola,
``rejected`` (only when there are any) counts rows of imported files that the
target refused (see :mod:`pushstream.storage.rejected`). Node statistics
are reported at least once a second, so ``local`` trails by up to a second.
"""

from __future__ import annotations

from typing import Any

from pushstream import wire
from pushstream.catalog.models import format_time
from pushstream.storage.layout import SinkKey
from pushstream.storage.state import StorageState

#: Files listed by ``statistics/files`` (most recent first).
MAX_FILES = 100


_Counts = tuple[int, int, int, int | None, int | None]


def _level(records: int, compressed: int, uncompressed: int, first: int | None, last: int | None) -> wire.Level:
    return wire.level(
        records,
        compressed,
        uncompressed,
        None if first is None else format_time(first),
        None if last is None else format_time(last),
    )


def _sum(levels: list[_Counts]) -> wire.Level:
    firsts = [lv[3] for lv in levels if lv[0] and lv[3] is not None]
    lasts = [lv[4] for lv in levels if lv[0] and lv[4] is not None]
    return _level(
        sum(lv[0] for lv in levels),
        sum(lv[1] for lv in levels),
        sum(lv[2] for lv in levels),
        min(firsts) if firsts else None,
        max(lasts) if lasts else None,
    )


def _time(ns: int | None) -> str | None:
    return None if ns is None else format_time(ns)


class StorageStatistics:
    """The API's :class:`~pushstream.api.statistics.StatisticsProvider` over the storage state
    (its bodies are made by :mod:`pushstream.wire`)."""

    def __init__(self, storage: StorageState) -> None:
        self.storage = storage

    def _levels(self, key: SinkKey, file_id: str | None = None) -> dict[str, _Counts]:
        file_filter = " AND s.file_id = ?" if file_id else ""
        params: tuple[Any, ...] = (*key.parts(), file_id) if file_id else key.parts()
        with self.storage.snapshot() as db:
            local = db.execute(
                "SELECT coalesce(sum(n.records), 0), 0, coalesce(sum(n.bytes), 0), min(n.first_record_ns),"
                " max(n.last_record_ns) FROM storage_slices s"
                " JOIN storage_slice_nodes n USING (branch_id, source_id, sink_id, file_id, slice_id)"
                " WHERE s.branch_id = ? AND s.source_id = ? AND s.sink_id = ? AND s.state IN ('writing', 'closing')"
                + file_filter,
                params,
            ).fetchone()
            staging = db.execute(
                "SELECT coalesce(sum(records), 0), coalesce(sum(compressed_size), 0),"
                " coalesce(sum(uncompressed_size), 0), min(first_record_ns), max(last_record_ns)"
                " FROM storage_slices s WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'uploaded'"
                + file_filter,
                params,
            ).fetchone()
            target = db.execute(
                "SELECT coalesce(sum(records), 0), coalesce(sum(compressed_size), 0),"
                " coalesce(sum(uncompressed_size), 0), min(first_record_ns), max(last_record_ns)"
                " FROM storage_slices s WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'imported'"
                + file_filter,
                params,
            ).fetchone()
        return {"local": tuple(local), "staging": tuple(staging), "target": tuple(target)}

    def _totals(self, key: SinkKey, file_id: str | None = None) -> wire.SinkStatisticsTotalResult:
        levels = self._levels(key, file_id)
        present = {name: _level(*values) for name, values in levels.items() if values[0]}
        return wire.totals(_sum(list(levels.values())), present, self._rejected(key, file_id))

    def _rejected(self, key: SinkKey, file_id: str | None) -> int:
        """Rows of imported files the target refused (beyond Keboola; they are
        counted in ``target`` too, as rows of imported files)."""
        file_filter = " AND file_id = ?" if file_id else ""
        params: tuple[Any, ...] = (*key.parts(), file_id) if file_id else key.parts()
        row = (
            self.storage.db()
            .execute(
                "SELECT coalesce(sum(rejected_records), 0) FROM storage_files"
                " WHERE branch_id = ? AND source_id = ? AND sink_id = ?" + file_filter,
                params,
            )
            .fetchone()
        )
        return int(row[0])

    def sink_totals(self, branch_id: int, source_id: str, sink_id: str) -> wire.SinkStatisticsTotalResult:
        return self._totals(SinkKey(branch_id, source_id, sink_id))

    def sink_files(self, branch_id: int, source_id: str, sink_id: str, *, failed_only: bool) -> list[wire.SinkFile]:
        key = SinkKey(branch_id, source_id, sink_id)
        condition = " AND state != 'imported' AND retry_attempt > 0" if failed_only else ""
        rows = (
            self.storage.db()
            .execute(
                "SELECT file_id, state, opened_ns, closing_ns, importing_ns, imported_ns, retry_attempt, retry_reason,"
                " retry_after_ns FROM storage_files WHERE branch_id = ? AND source_id = ? AND sink_id = ?"
                + condition
                + " ORDER BY file_id DESC LIMIT ?",
                (*key.parts(), MAX_FILES),
            )
            .fetchall()
        )
        return [
            wire.sink_file(
                state,
                format_time(opened),
                self._totals(key, file_id),
                closing_at=_time(closing),
                importing_at=_time(importing),
                imported_at=_time(imported),
                retry_attempt=attempt,
                retry_reason=reason or "",
                retry_after=_time(retry_after),
            )
            for file_id, state, opened, closing, importing, imported, attempt, reason, retry_after in rows
        ]

    def clear_sink(self, branch_id: int, source_id: str, sink_id: str) -> None:
        """Forgets imported files (the target level); data not yet imported is kept."""
        key = SinkKey(branch_id, source_id, sink_id)
        with self.storage.transaction() as db:
            db.execute(
                "DELETE FROM storage_slice_nodes WHERE (branch_id, source_id, sink_id, file_id) IN"
                " (SELECT branch_id, source_id, sink_id, file_id FROM storage_files"
                "  WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'imported')",
                key.parts(),
            )
            db.execute(
                "DELETE FROM storage_slices"
                " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'imported'",
                key.parts(),
            )
            db.execute(
                "DELETE FROM storage_files"
                " WHERE branch_id = ? AND source_id = ? AND sink_id = ? AND state = 'imported'",
                key.parts(),
            )

    def clear_source(self, branch_id: int, source_id: str) -> None:
        sinks = [
            row[0]
            for row in self.storage.db().execute(
                "SELECT DISTINCT sink_id FROM storage_files WHERE branch_id = ? AND source_id = ?",
                (branch_id, source_id),
            )
        ]
        for sink_id in sinks:
            self.clear_sink(branch_id, source_id, sink_id)
