"""A receiver node: the compiled routes of one process, its open slice writers,
and the background thread that follows configuration changes and reports
statistics.

Routes (source → branches → enabled sinks → compiled mapping + open slice
writer) are built from the stores once and swapped as a whole when the config or
storage revision changes. A request only reads the announced revisions (one
``mmap`` read) to know whether its routes are current.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pushstream import ConfigError, Mapping, SinkSet, SliceWriter, SyncSettings, WriterError
from pushstream.catalog.base import Catalog
from pushstream.catalog.models import IngestSink, takes_signal
from pushstream.errors import StoreUnavailableError
from pushstream.storage.base import StorageState
from pushstream.storage.layout import Layout, SinkKey
from pushstream.storage.revision import RevisionFile
from pushstream.storage.state import NodeSliceStats, SliceRef
from pushstream.wire import SIGNALS

log = logging.getLogger(__name__)

#: How often the background thread looks for configuration changes.
POLL_INTERVAL = 0.1
#: How often statistics and the heartbeat are written (at least once a second).
REPORT_INTERVAL = 1.0
#: Seconds requests route by the routes they have after a reload failed because
#: the control plane was away (the background thread retries every poll).
RELOAD_RETRY = 1.0

SYNC = "storage.level.local.encoding.sync."


def sync_settings(settings: dict[str, Any]) -> SyncSettings:
    """The writer settings of a sink from its effective settings (typed form)."""
    return SyncSettings(
        mode=settings[SYNC + "mode"],
        wait=settings[SYNC + "wait"],
        check_interval=settings[SYNC + "checkInterval"],
        count_trigger=settings[SYNC + "countTrigger"],
        bytes_trigger=settings[SYNC + "uncompressedBytesTrigger"],
        interval_trigger=settings[SYNC + "intervalTrigger"],
    )


def _moved(announced: tuple[int, int], loaded: tuple[int, int]) -> bool:
    return announced[0] > loaded[0] or announced[1] > loaded[1]


@dataclass(frozen=True)
class SinkRoute:
    sink_id: str
    key: SinkKey
    slice: SliceRef
    mapping: Mapping
    writer: SliceWriter
    #: The OTLP signals the sink takes (all when empty).
    allowed_signals: tuple[str, ...] = ()


@dataclass(frozen=True)
class BranchRoute:
    """One branch's source with this id: its secret, state and enabled sinks."""

    project_id: int
    branch_id: int
    source_id: str
    secret: str
    state: str  # enabled | disabled | deleted
    sinks: tuple[SinkRoute, ...]
    sink_set: SinkSet
    #: Whether a sink maps request headers; if not, the core needs only the Content-Type
    #: (cheaper to hand over than the whole WSGI environ, and it is done holding the GIL).
    needs_headers: bool = True
    #: ``http`` or ``otlp``: the endpoint the source answers on.
    source_type: str = "http"
    #: Of an OTLP source: per signal, the sinks that take it (``allowedSignals``).
    signal_sets: dict[str, SinkSet] = field(default_factory=dict)

    def subset(self, sink_ids: set[str]) -> SinkSet:
        """A sink set of some of the sinks (to retry them after a rotation)."""
        return SinkSet([(s.sink_id, s.mapping, s.writer) for s in self.sinks if s.sink_id in sink_ids])


@dataclass
class _OpenWriter:
    writer: SliceWriter
    slice: SliceRef
    reported: tuple[int, int] = (-1, -1)
    closed: bool = False


@dataclass
class _Routes:
    revisions: tuple[int, int]
    sources: dict[tuple[int, str], tuple[BranchRoute, ...]] = field(default_factory=dict)


class ReceiverNode:
    """The data plane of one process. Thread-safe."""

    def __init__(
        self,
        catalog: Catalog,
        storage: StorageState,
        layout: Layout,
        revision_file: RevisionFile,
        *,
        node_id: str | None = None,
        announce_parts: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.layout = layout
        self.revision_file = revision_file
        self.node_id = node_id or f"{os.getpid()}-{secrets.token_hex(2)}"
        #: Records this process as a writer of a slice before its first row (shared
        #: staging: the slice then waits for this node's part even if it dies at once).
        self.announce_parts = announce_parts
        self._clock = clock
        self._lock = threading.Lock()
        self._routes = _Routes((-1, -1))
        self._mappings: dict[str, Mapping] = {}
        self._writers: dict[tuple[SliceRef, str], _OpenWriter] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: When a request may try to reload the routes again after the control plane was away.
        self._retry_reload_at = 0.0
        self._warned_at = -60.0
        storage.register_node(self.node_id)

    def config_revision(self) -> int:
        """The configuration revision the current routes were built from (-1 before the first request)."""
        return self._routes.revisions[0]

    # Routing.

    def routes(self, project_id: int, source_id: str) -> tuple[BranchRoute, ...]:
        """The branches of a source, current as of the last committed change."""
        routes = self._routes
        if _moved(self.revision_file.read(), routes.revisions) and self._clock() >= self._retry_reload_at:
            try:
                routes = self.reload()
            except StoreUnavailableError as exc:
                # The control plane of a cluster is away: the routes this node knows
                # keep taking events (a slice closed meanwhile is uploaded only once
                # this node lets go of it); the background thread tries again.
                self._retry_reload_at = self._clock() + RELOAD_RETRY
                if routes.revisions == (-1, -1):
                    raise
                if self._clock() - self._warned_at >= 60:
                    self._warned_at = self._clock()
                    log.warning("node %s routes by its last known configuration: %s", self.node_id, exc)
        found = routes.sources.get((project_id, source_id))
        if found is None:
            with self._lock:
                routes = self._routes
                found = routes.sources.get((project_id, source_id))
                if found is None:
                    found = self._build_source(project_id, source_id)
                    routes.sources[(project_id, source_id)] = found
        return found

    def reload(self, *, force: bool = False) -> _Routes:
        """Rebuilds the routes of every known source when a revision moved."""
        with self._lock:
            current = self._routes
            if not force and not _moved(self.revision_file.read(), current.revisions):
                return current
            revisions = (self.catalog.revision(), self.storage.revision())
            routes = _Routes(revisions)
            for project_id, source_id in current.sources:
                routes.sources[(project_id, source_id)] = self._build_source(project_id, source_id)
            self._routes = routes
            in_use = {
                (s.slice, repr(s.writer.settings))
                for branches in routes.sources.values()
                for branch in branches
                for s in branch.sinks
            }
            retired = [w for key, w in self._writers.items() if key not in in_use and not w.closed]
        for open_writer in retired:
            # In-flight requests that still hold the writer get WriterClosedError and retry on the new routes.
            _close(open_writer)
        if retired:
            log.info("node %s closed %d slice writer(s) after a change", self.node_id, len(retired))
            # The coordinator waits for this to move the slices on: tell it now, not at the next report.
            self.report()
        return routes

    def _build_source(self, project_id: int, source_id: str) -> tuple[BranchRoute, ...]:
        branches = []
        for source in self.catalog.get_sources_for_ingest(project_id, source_id):
            sinks: list[SinkRoute] = []
            if source.state == "enabled":
                for sink in self.catalog.list_sinks(source.branch_id, source_id, enabled_only=True):
                    route = self._sink_route(sink)
                    if route is not None:
                        sinks.append(route)
            signal_sets = {}
            if source.type == "otlp":
                for signal in SIGNALS:
                    chosen = [s for s in sinks if takes_signal(s.allowed_signals, signal)]
                    signal_sets[signal] = SinkSet([(s.sink_id, s.mapping, s.writer) for s in chosen])
            branches.append(
                BranchRoute(
                    project_id=project_id,
                    branch_id=source.branch_id,
                    source_id=source_id,
                    secret=source.secret,
                    state=source.state,
                    sinks=tuple(sinks),
                    sink_set=SinkSet([(s.sink_id, s.mapping, s.writer) for s in sinks]),
                    needs_headers=any(s.mapping.needs_headers for s in sinks),
                    source_type=source.type,
                    signal_sets=signal_sets,
                )
            )
        return tuple(branches)

    def _sink_route(self, sink: IngestSink) -> SinkRoute | None:
        key = SinkKey(sink.branch_id, sink.source_id, sink.sink_id)
        sink_id, table_id, columns_json, settings = sink.sink_id, sink.table_id, sink.columns_json, sink.settings
        mapping = self._mappings.get(columns_json)
        if mapping is None:
            try:
                mapping = Mapping(columns_json)
            except ConfigError as exc:
                log.error("sink %s has a mapping the core rejects, it receives nothing: %s", key, exc)
                return None
            self._mappings[columns_json] = mapping
        current = self.storage.writing_slice(key)
        # Storage files record the whole mapping (storage.hooks.columns_json).
        recorded = sink.mapping_json or columns_json
        if current is None or current.columns_json != recorded or current.table_id != table_id:
            # The storage hooks open slices with every change; this covers a state from before them.
            with self.storage.atomic() as tx:
                current = tx.ensure_writing(key, table_id, recorded)
        slice_ref = SliceRef(key, current.file_id, current.slice_id)
        sync = sync_settings(settings)
        writer_key = (slice_ref, repr(sync))
        open_writer = self._writers.get(writer_key)
        # A writer that failed (a full disk) is replaced by a new one of the same
        # slice, which works again once there is space.
        if open_writer is None or open_writer.closed or open_writer.writer.closed:
            if open_writer is not None and not open_writer.closed:
                # Its threads are joined before another writer appends to the file.
                _close(open_writer)
            if open_writer is None and self.announce_parts:
                self.storage.report(self.node_id, [NodeSliceStats(slice_ref, False, 0, 0, None, None)])
            path = self.layout.slice_path(key, slice_ref.file_id, slice_ref.slice_id, self.node_id)
            open_writer = _OpenWriter(SliceWriter(path, sync), slice_ref)
            self._writers[writer_key] = open_writer
        return SinkRoute(sink_id, key, slice_ref, mapping, open_writer.writer, sink.allowed_signals)

    # Statistics and lifecycle.

    def report(self, *, stopped: bool = False) -> None:
        """Writes what changed in the node's slices since the last report, plus a heartbeat."""
        with self._lock:
            writers = list(self._writers.items())
        changes = []
        markers: list[tuple[_OpenWriter, tuple[int, int]]] = []
        forget = []
        for key, open_writer in writers:
            stats = open_writer.writer.stats
            # Only a writer the node let go of: one that failed is replaced by a new
            # writer of the same slice, so the slice is not released by the failure.
            closed = open_writer.closed
            marker = (stats.rows, int(closed))
            if marker == open_writer.reported:
                if closed:
                    forget.append(key)
                continue
            changes.append(
                NodeSliceStats(
                    open_writer.slice, closed, stats.rows, stats.bytes, stats.first_record_ns, stats.last_record_ns
                )
            )
            markers.append((open_writer, marker))
        self.storage.report(self.node_id, changes, stopped=stopped)
        # Only once stored: a report that failed (the control plane away) is sent again.
        for open_writer, marker in markers:
            open_writer.reported = marker
        if forget:
            with self._lock:
                for key in forget:
                    if self._writers.get(key) is not None and self._writers[key].closed:
                        del self._writers[key]

    def start(self) -> None:
        """Starts the background thread (config changes, statistics, heartbeat)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"receiver-node-{self.node_id}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        next_report = self._clock()
        last_failure = ("", 0.0)
        while not self._stop.wait(POLL_INTERVAL):
            try:
                self.reload(force=self._has_failed_writer())
                if self._clock() >= next_report:
                    self.report()
                    next_report = self._clock() + REPORT_INTERVAL
            except Exception as exc:
                # The same failure every poll (a full disk) is logged once a minute.
                failure = (f"{type(exc).__name__}: {exc}", self._clock())
                if failure[0] != last_failure[0] or failure[1] - last_failure[1] >= 60:
                    log.exception("receiver node %s: background work failed", self.node_id)
                    last_failure = failure

    def _has_failed_writer(self) -> bool:
        """Whether a writer the routes use has stopped (only a failure closes one
        that is still routed to); reloading replaces it."""
        routes = self._routes
        return any(s.writer.closed for branches in routes.sources.values() for b in branches for s in b.sinks)

    def close(self) -> None:
        """Syncs and closes every slice writer and reports the node stopped (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            writers = [w for w in self._writers.values() if not w.closed]
        for open_writer in writers:
            _close(open_writer)
        self.report(stopped=True)


def _close(open_writer: _OpenWriter) -> None:
    """Closes a writer; one that failed earlier (its clients were told) is only logged."""
    try:
        open_writer.writer.close()
    except WriterError as exc:
        log.warning("slice %s: closed after a failure: %s", open_writer.slice.slice_id, exc)
    open_writer.closed = True
