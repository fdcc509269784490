"""Prometheus metrics of a pushstream server (``GET /metrics``), with the official
``prometheus_client``.

``pushstream serve`` runs several processes (granian's workers and the
coordinator); :func:`use_multiprocess_dir` (called by :mod:`pushstream.serving`
before any of them starts) turns on ``prometheus_client``'s multiprocess mode, in
which every process writes its values to files of :func:`metrics_dir` (in
``/dev/shm``, not on the data disk) and
a scrape adds them up. A process that embeds the app (tests, a library user)
keeps its values in memory.

What is counted where:

- per ingest request, in the worker (:meth:`Metrics.observe_ingest`): the request
  by source and status, its events by source, sink and outcome, its latency —
  counted in plain dicts and added to the metrics with the core's counters;
- by the Rust core, per process (:func:`pushstream._core.writer_totals`: rows and
  bytes written, group-commit rounds, ``fdatasync`` latencies), copied into the
  metrics by :class:`CoreMirror` every second and at each scrape — never a
  crossing per event;
- per import, in the coordinator (:meth:`Metrics.observe_import`);
- at scrape time from the storage state (:class:`StorageCollector`): files and
  slices by state, the oldest file waiting for its import, imports waiting for a
  retry — so the figures are right whichever process answers the scrape.

``docs/operations.md`` lists every metric with its labels.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from pushstream.storage.base import StorageState

log = logging.getLogger(__name__)

#: The environment variable of ``prometheus_client``'s multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds between two copies of the core's counters into the metrics.
MIRROR_INTERVAL = 1.0
#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Buckets (seconds) of the ingest request latency: from a cached write (~100 µs)
#: to a request waiting seconds for a slow disk.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Buckets (seconds) of the import duration.
IMPORT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def metrics_dir(data_dir: Path) -> Path:
    """Where the processes of the ``serve`` of ``data_dir`` keep their values:
    ``/dev/shm/pushstream-metrics-<hash of the data dir>`` (the temporary
    directory where there is no ``/dev/shm``).

    Not under the data dir: prometheus_client writes through memory maps, and a
    memory-mapped write to a file on a full disk kills the process (SIGBUS) —
    a full data disk must give 503s, not crashed workers. One name per data dir,
    so that a ``serve`` that was killed leaves nothing behind for long: the next
    one of the same data dir (there is one at a time) empties it."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"pushstream-metrics-{digest}"


def use_multiprocess_dir(data_dir: Path) -> Path:
    """Empties :func:`metrics_dir` and points ``prometheus_client`` at it (by the
    environment, which the worker and coordinator processes inherit); called once
    by ``serve`` before its processes start."""
    path = metrics_dir(data_dir)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess_dir(path: Path) -> None:
    """Removes the values of a ``serve`` that stopped."""
    shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """Forgets the live gauges of a process that died (``serve`` calls it for a dead worker)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class Metrics:
    """The metrics this process updates; one instance per process (:func:`metrics`)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        from pushstream._core import writer_totals

        #: The metrics of this process when they are kept in memory (no multiprocess dir).
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        r = self.registry
        self.requests = Counter(
            "pushstream_ingest_requests",
            "Ingest requests (POST /stream/...) by source and HTTP status; source is empty when no source matched.",
            ["source", "status"],
            registry=r,
        )
        self.events = Counter(
            "pushstream_ingest_events",
            "Events (records) of ingest requests by source, sink and outcome (accepted, processed, or the error).",
            ["source", "sink", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "pushstream_ingest_request_duration_seconds",
            "Time to answer an ingest request, from its body received to its answer (including the sync).",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.rows_written = Counter("pushstream_slice_rows_written", "Rows written to local slice files.", registry=r)
        self.bytes_written = Counter(
            "pushstream_slice_bytes_written", "Bytes written to local slice files.", registry=r
        )
        self.rounds = Counter(
            "pushstream_group_commit_rounds",
            "Group-commit rounds of the slice writers (rows per round show the group commit at work).",
            registry=r,
        )
        totals = writer_totals()
        self.fsync_seconds = Histogram(
            "pushstream_fsync_duration_seconds",
            "Latency of the fdatasync calls of the slice writers.",
            buckets=[bound for bound, _ in totals.fsync_buckets],
            registry=r,
        )
        self.imports = Counter(
            "pushstream_imports",
            "Import attempts of files into their tables by source, sink and outcome (imported, failed, dropped).",
            ["source", "sink", "outcome"],
            registry=r,
        )
        self.imported_rows = Counter(
            "pushstream_imported_rows", "Rows read by imports into tables.", ["source", "sink"], registry=r
        )
        self.import_seconds = Histogram(
            "pushstream_import_duration_seconds",
            "Duration of an import attempt (successful or not).",
            buckets=IMPORT_BUCKETS,
            registry=r,
        )
        self.config_revision = Gauge(
            "pushstream_config_revision",
            "The configuration revision a receiver node routes requests with.",
            ["node"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self._mirror_lock = threading.Lock()
        self._mirrored = _zero_totals()
        #: Ingest counts not yet added to the metrics (see :meth:`observe_ingest`).
        self._pending_lock = threading.Lock()
        self._pending_requests: dict[tuple[str, int], int] = {}
        self._pending_events: dict[tuple[str, str, str], int] = {}
        self._latency_bounds = [*REQUEST_BUCKETS, float("inf")]
        self._pending_latency = [0] * len(self._latency_bounds)
        self._pending_latency_sum = 0.0

    def observe_ingest(
        self, source: str, status: int, outcomes: Iterable[tuple[str, str, int, str]], seconds: float
    ) -> None:
        """Counts one ingest request: its status, its events per sink outcome, its
        latency. Kept in plain dicts under a lock (about a microsecond) and added to
        the metrics by :meth:`flush_ingest`: a ``prometheus_client`` update in
        multiprocess mode costs several microseconds each (a lock and an mmap write)."""
        bucket = bisect.bisect_left(self._latency_bounds, seconds)
        with self._pending_lock:
            requests = self._pending_requests
            key = (source, status)
            requests[key] = requests.get(key, 0) + 1
            events = self._pending_events
            for sink_id, outcome, rows, _message in outcomes:
                # A failed sink wrote no row but refused at least one event.
                event_key = (source, sink_id, outcome)
                events[event_key] = events.get(event_key, 0) + (rows or 1)
            self._pending_latency[bucket] += 1
            self._pending_latency_sum += seconds

    def flush_ingest(self) -> None:
        """Adds the ingest counts kept since the last call to the metrics."""
        with self._pending_lock:
            requests, self._pending_requests = self._pending_requests, {}
            events, self._pending_events = self._pending_events, {}
            latency, self._pending_latency = self._pending_latency, [0] * len(self._latency_bounds)
            latency_sum, self._pending_latency_sum = self._pending_latency_sum, 0.0
        for (source, status), count in requests.items():
            self.requests.labels(source, str(status)).inc(count)
        for (source, sink_id, outcome), count in events.items():
            self.events.labels(source, sink_id, outcome).inc(count)
        if latency_sum or any(latency):
            histogram: Any = self.request_seconds
            histogram._sum.inc(latency_sum)
            for index, count in enumerate(latency):
                if count:
                    histogram._buckets[index].inc(count)

    def observe_import(self, source: str, sink: str, outcome: str, rows: int, seconds: float) -> None:
        """Counts one import attempt (``outcome``: imported, failed, dropped)."""
        self.imports.labels(source, sink, outcome).inc()
        if rows:
            self.imported_rows.labels(source, sink).inc(rows)
        self.import_seconds.observe(seconds)

    def mirror_core(self) -> None:
        """Adds what the core's slice writers did since the last call to the metrics."""
        from pushstream._core import writer_totals

        with self._mirror_lock:
            now = writer_totals()
            before = self._mirrored
            self._mirrored = _totals_tuple(now)
        rows, size, rounds, fsync_total, buckets = before
        if now.rows > rows:
            self.rows_written.inc(now.rows - rows)
        if now.bytes > size:
            self.bytes_written.inc(now.bytes - size)
        if now.rounds > rounds:
            self.rounds.inc(now.rounds - rounds)
        if now.fsync_seconds > fsync_total:
            # prometheus_client has no bulk observe: its buckets and sum are added to
            # directly (the attributes of the pinned version; tests/ops check the output).
            histogram: Any = self.fsync_seconds
            histogram._sum.inc(now.fsync_seconds - fsync_total)
            for index, ((_, count), previous) in enumerate(zip(now.fsync_buckets, buckets, strict=True)):
                if count > previous:
                    histogram._buckets[index].inc(count - previous)

    def exposition(self, storage: StorageState | None) -> bytes:
        """The text of a scrape: every process's metrics (as far as they were copied,
        see :class:`CoreMirror`) and the storage state's gauges."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess:
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(self.registry))
        if storage is not None:
            registry.register(StorageCollector(storage))
        data: bytes = generate_latest(registry)
        return data


_Totals = tuple[int, int, int, float, tuple[int, ...]]


def _zero_totals() -> _Totals:
    from pushstream._core import writer_totals

    return 0, 0, 0, 0.0, tuple(0 for _ in writer_totals().fsync_buckets)


def _totals_tuple(totals: Any) -> _Totals:
    return totals.rows, totals.bytes, totals.rounds, totals.fsync_seconds, tuple(c for _, c in totals.fsync_buckets)


class _Forward:
    """Collects another registry (the in-memory metrics of this process)."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


class StorageCollector:
    """Gauges computed at scrape time from the storage state (one query, see
    :meth:`pushstream.storage.base.StorageState.state_summary`)."""

    def __init__(self, storage: StorageState, clock: Callable[[], int] = time.time_ns) -> None:
        self.storage = storage
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["branch", "source", "sink", "state"]
        files = GaugeMetricFamily("pushstream_files", "Files of each sink by state.", labels=labels)
        slices = GaugeMetricFamily("pushstream_slices", "Slices of each sink by state.", labels=labels)
        sink_labels = ["branch", "source", "sink"]
        oldest = GaugeMetricFamily(
            "pushstream_oldest_unimported_file_age_seconds",
            "Seconds since the oldest closed file of the sink that is not imported yet was closed (0: none).",
            labels=sink_labels,
        )
        retries = GaugeMetricFamily(
            "pushstream_import_retries_pending",
            "Files of the sink whose import failed and waits for a retry.",
            labels=sink_labels,
        )
        now = self.clock()
        for summary in self.storage.state_summary():
            key = [str(summary.sink.branch_id), summary.sink.source_id, summary.sink.sink_id]
            for state, count in summary.files.items():
                files.add_metric([*key, state], count)
            for state, count in summary.slices.items():
                slices.add_metric([*key, state], count)
            closed = summary.oldest_unimported_closed_ns
            oldest.add_metric(key, max(0.0, (now - closed) / 1e9) if closed is not None else 0.0)
            retries.add_metric(key, summary.retries_pending)
        yield from (files, slices, oldest, retries)


class CoreMirror:
    """A thread adding the ingest counts and the core's counters to the metrics
    every :data:`MIRROR_INTERVAL` seconds, and setting the node's config revision;
    the process answering a scrape adds its own at that moment, the others' are at
    most that old."""

    def __init__(self, metrics: Metrics, node_id: str, revision: Callable[[], int]) -> None:
        self.metrics = metrics
        self.node_id = node_id
        self.revision = revision
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-mirror", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.tick()

    def tick(self) -> None:
        self.metrics.flush_ingest()
        self.metrics.mirror_core()
        self.metrics.config_revision.labels(self.node_id).set(self.revision())

    def _run(self) -> None:
        while not self._stop.wait(MIRROR_INTERVAL):
            try:
                self.tick()
            except Exception:
                log.exception("copying the core's counters into the metrics failed")


_metrics: Metrics | None = None
_metrics_lock = threading.Lock()


def metrics() -> Metrics:
    """This process's metrics (created on first use, after ``serve`` set the multiprocess dir)."""
    global _metrics  # noqa: PLW0603 - one set of metrics per process, as prometheus_client keeps them
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics
