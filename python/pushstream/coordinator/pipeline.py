"""The coordinator: moves data through the storage levels, once per installation.

Every tick (at least once a second):

1. **slice rotation** — a writing slice whose rows meet
   ``storage.level.staging.upload.trigger.{count,size,interval}`` is closed and a
   new one opened (receivers follow within ~100 ms);
2. **file rotation** — a writing file whose rows meet
   ``storage.level.target.import.trigger.{count,size,interval}`` is closed and a
   new one opened;
3. **upload** — a closing slice that every node has let go of (closed, or the node
   is gone) is compressed into staging;
4. **import** — a closing file whose slices are all uploaded is imported into its
   table through the target, with retries and backoff on failure.

Imports run on import threads of their own (at most
:attr:`CoordinatorOptions.import_concurrency` at once): the tick only hands them
the files that are ready, so a long import (a big file takes tens of seconds)
holds up neither the rotation and upload of any sink nor the imports into other
tables. One table takes one import at a time (two sinks writing one table do
not contend for its locks), and so does one sink: its files are imported in
order, also when a mapping change sent its newer file to another table (the
PostgreSQL target grants a sink's user its current table only).

State transitions are committed before the disk is cleaned up, and imports are
idempotent, so after a crash at any point the next tick resumes where it stopped.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from pushstream.catalog.base import Catalog
from pushstream.coordinator import upload as uploads
from pushstream.coordinator.shared import SharedStagingSteps
from pushstream.metrics import metrics
from pushstream.storage.base import StorageState
from pushstream.storage.layout import Layout, SinkKey
from pushstream.storage.rejected import count_rejected, write_rejected
from pushstream.storage.space import is_disk_full
from pushstream.storage.state import FileRef, SliceRef
from pushstream.targets.base import (
    EventRange,
    ImportRequest,
    RejectedRow,
    SinkIdentity,
    TableSpec,
    Target,
    default_merge_strategy,
)

log = logging.getLogger(__name__)

UPLOAD = "storage.level.staging.upload.trigger."
IMPORT = "storage.level.target.import.trigger."

SECOND = 1_000_000_000


@dataclass(frozen=True)
class CoordinatorOptions:
    #: Seconds between ticks.
    tick: float = 1.0
    #: First retry delay of a failed import (then ×4 per attempt, capped).
    retry_base: float = 120.0
    retry_max: float = 3 * 3600.0
    #: Staging files of imported files kept per sink for inspection.
    keep_imported: int = 3
    #: Files that could not be imported for this long are dropped.
    max_file_age: float = 7 * 24 * 3600.0
    #: Retry delay of an import that failed because a disk was full: short, so
    #: that imports resume soon after space is freed, without a restart.
    disk_full_retry: float = 5.0
    #: Imports at once (into different tables); ``None``: by the target's kind
    #: (see :func:`default_import_concurrency`).
    import_concurrency: int | None = None
    #: Seconds a stopping coordinator waits for the imports under way; one cut
    #: short is imported again by the next coordinator (imports are idempotent).
    #: With the upload of this node's slices before it (``drain``, at most 20 s)
    #: that is the 30 s the supervisor gives a stopping coordinator.
    import_stop_wait: float = 10.0


#: Imports at once into a PostgreSQL target. Each holds a connection (as its sink
#: user) and keeps a server backend busy with COPY and the merge while its thread
#: parses the next batches; with a few of them one long import no longer delays
#: the others, and more would mostly compete for the database's CPU and disk
#: that the control plane and readers share. ``bench/bench_concurrent_imports.py``
#: on 2 cores shared with the database: a one-row file waited 0.14 s instead of
#: 6.5 s behind a 1M-row import, and four 300k-row keyed files into four tables
#: took 6.5 s at 4 against 7.5 s one after another (so 4 costs nothing even where
#: CPUs are few).
POSTGRESQL_IMPORT_CONCURRENCY = 4


def default_import_concurrency(target_kind: str) -> int:
    """Imports at once by default into a target of ``target_kind``: one into the
    embedded SQLite target, whose imports take the database's single write lock
    (``BEGIN IMMEDIATE``) for their whole transaction, so a second one would only
    wait for it (and fail, to be retried minutes later, once a big import holds the
    lock past the busy timeout); :data:`POSTGRESQL_IMPORT_CONCURRENCY` into
    PostgreSQL, which writes different tables in parallel."""
    return 1 if target_kind == "sqlite" else POSTGRESQL_IMPORT_CONCURRENCY


def retry_delay(attempt: int, options: CoordinatorOptions, rnd: Callable[[], float] = random.random) -> float:
    """Backoff of the ``attempt``-th failure: base × 4^(attempt−1), capped, ±10 % jitter."""
    delay: float = min(options.retry_base * 4 ** (attempt - 1), options.retry_max)
    return delay * (0.9 + 0.2 * rnd())


def table_spec(table_id: str, columns_json: str) -> TableSpec:
    """The :class:`TableSpec` of a sink from what its storage file recorded: the
    sink's whole ``table.mapping`` object as JSON (``{"columns": [...],
    "mergeStrategy": ..., "eventTimeColumn": ..., "systemColumns": ...}``), or the
    plain columns array that files written by older versions hold.

    The one place a mapping becomes a spec: ``dataType`` (default ``string``) and
    ``nullable`` (default true) per column, ``mergeStrategy`` (default ``upsert``
    with a key, else ``append``), ``eventTimeColumn``, ``systemColumns``."""
    mapping = orjson.loads(columns_json)
    if isinstance(mapping, list):
        mapping = {"columns": mapping}
    columns = mapping.get("columns", [])
    primary_key = tuple(c["name"] for c in columns if c.get("primaryKey"))
    return TableSpec(
        table_id=table_id,
        columns=tuple(c["name"] for c in columns),
        primary_key=primary_key,
        column_types=tuple(c.get("dataType") or "string" for c in columns),
        nullable=tuple(bool(c.get("nullable", True)) for c in columns),
        merge_strategy=mapping.get("mergeStrategy") or default_merge_strategy(primary_key),
        event_time_column=mapping.get("eventTimeColumn") or None,
        system_columns=bool(mapping.get("systemColumns", False)),
    )


class Lease(Protocol):
    """The right to rotate and import for the whole installation: held by one
    coordinator at a time (in a cluster, elected through the control plane)."""

    def held(self) -> bool:
        """Whether this coordinator holds the lease now (taking it when it is free)."""
        ...

    def release(self) -> None: ...


class SoleLease:
    """The lease of a single node: its coordinator holds the data dir's lock
    (see :mod:`pushstream.coordinator.lock`), so it always leads."""

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class Coordinator:
    """Drives files and slices of every sink through the levels.

    Every node's coordinator uploads that node's slices; only the one holding
    the ``lease`` rotates and imports (one per installation). ``shared``: the
    steps of shared staging, when the slices of every node go to one store.

    The tick runs in one thread (:meth:`run`); imports run in import threads
    (see the module docstring), which share the storage state, the layout and
    the target with it (all safe to use from several threads)."""

    def __init__(
        self,
        catalog: Catalog,
        storage: StorageState,
        layout: Layout,
        target: Target,
        options: CoordinatorOptions | None = None,
        *,
        shared: SharedStagingSteps | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.layout = layout
        self.target = target
        self.options = options or CoordinatorOptions()
        self.shared = shared
        self.lease: Lease = lease or SoleLease()
        self._leading = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: When an upload failure of a slice was last logged (once a minute while it lasts).
        self._upload_failures: dict[SliceRef, float] = {}
        concurrency = self.options.import_concurrency
        self.import_concurrency = concurrency if concurrency is not None else default_import_concurrency(target.kind)
        if self.import_concurrency < 1:
            raise ValueError(f"import_concurrency must be at least 1, found {self.import_concurrency}")
        #: The imports under way: file → its table (in ``ready.table_id`` spelling).
        self._importing: dict[FileRef, str] = {}
        #: When an import whose outcome could not be recorded was last logged.
        self._import_failures: dict[FileRef, float] = {}
        #: Guards ``_importing`` and ``_import_failures``; notified when an import ends.
        self._imports_changed = threading.Condition()

    # The loop.

    def tick(self) -> None:
        """One pass over every level (safe to call at any time, also after a crash).
        The imports it starts run on after it returns (see :meth:`wait_for_imports`)."""
        now = time.time_ns()
        leading = self.lease.held()
        if leading != self._leading:
            self._leading = leading
            if not isinstance(self.lease, SoleLease):
                log.info("this node %s the cluster's imports", "coordinates" if leading else "no longer coordinates")
        if leading:
            self._rotate(now)
        if self.shared is not None:
            self.shared.upload_parts()
        else:
            self._upload()
        if leading:
            self._import(now)

    def run(self) -> None:
        """Ticks until :meth:`stop`; errors are logged and retried on the next tick.
        Imports under way go on after it returns (see :meth:`finish_imports`)."""
        last_failure = ("", 0.0)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:
                # The same failure on every tick (a full disk) is logged once a minute.
                failure = (f"{type(exc).__name__}: {exc}", time.monotonic())
                if failure[0] != last_failure[0] or failure[1] - last_failure[1] >= 60:
                    log.exception("coordinator tick failed%s", " (the disk is full)" if is_disk_full(exc) else "")
                    last_failure = failure
            # While slices are closing, look again soon: nodes let go of them within ~100 ms.
            self._wake.wait(self.options.tick if not self._closing_slices() else min(self.options.tick, 0.1))
            self._wake.clear()

    def drain(self, timeout: float = 20.0) -> bool:
        """Before this node leaves (a clean stop, its receivers closed): with
        shared staging, closes the slices it wrote to and uploads its parts, so
        that nothing it acknowledged waits on its disk. Whether it all went."""
        if self.shared is None:
            return True
        for writing in self.storage.writing_slices():
            if uploads.node_parts(self.layout, writing.slice):
                with self.storage.atomic() as tx:
                    tx.rotate_slice(writing.slice.sink)
        deadline = time.monotonic() + timeout
        while True:
            self.shared.upload_parts()
            left = next(self.layout.local_dir.rglob("slice-*.csv"), None) if self.layout.local_dir.is_dir() else None
            if left is None:
                return True
            if time.monotonic() >= deadline:
                log.warning(
                    "this node stops with slices not uploaded (e.g. %s); they are uploaded when it is back", left
                )
                return False
            time.sleep(0.2)

    def finish_imports(self) -> bool:
        """After :meth:`run` returned: waits for the imports under way, at most
        ``import_stop_wait`` seconds; whether they all ended. One cut short when
        the process exits is imported again by the next coordinator."""
        if self.wait_for_imports(self.options.import_stop_wait):
            return True
        log.warning("stopping with imports under way; they are imported again when a coordinator runs")
        return False

    def wait_for_imports(self, timeout: float | None = None) -> bool:
        """Waits until the imports under way have ended (imported, or failed and
        scheduled for a retry), at most ``timeout`` seconds; whether they did."""
        with self._imports_changed:
            return self._imports_changed.wait_for(lambda: not self._importing, timeout)

    def _closing_slices(self) -> bool:
        try:
            return self.storage.has_closing_slices()
        except Exception:
            return False  # the tick logs what is wrong (a control plane that is away)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="coordinator", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Runs the next tick now (after a flush request)."""
        self._wake.set()

    def stop_soon(self) -> None:
        """Asks :meth:`run` to return after the current tick (safe in signal handlers)."""
        self._stop.set()
        self._wake.set()

    def stop(self) -> None:
        """Stops :meth:`run` after its current tick and waits for it, then for the
        imports under way (:meth:`finish_imports`)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.finish_imports()

    # 1 + 2: rotation.

    def _rotate(self, now: int) -> None:
        for writing in self.storage.writing_slices():
            ref = writing.slice
            key = ref.sink
            settings = self.catalog.effective_settings(key.branch_id, key.source_id, key.sink_id)
            file_records, file_size = writing.file_records, writing.file_size
            if file_records and _triggered(settings, IMPORT, file_records, file_size, now - writing.file_opened_ns):
                with self.storage.atomic() as tx:
                    tx.rotate_file(key)
                log.info("sink %s: file %s closed for import (%d records)", key, ref.file_id, file_records)
            elif writing.records and _triggered(
                settings, UPLOAD, writing.records, writing.size, now - writing.slice_opened_ns
            ):
                with self.storage.atomic() as tx:
                    tx.rotate_slice(key)

    # 3: upload.

    def _upload(self) -> None:
        closing = self.storage.closing_slices()
        if not closing:
            self._clean_uploaded_leftovers()
            return
        live = self.storage.live_nodes()
        for ref in closing:
            if not self._released(ref, live):
                continue
            try:
                result = uploads.upload(self.layout, ref)
            except OSError as exc:
                # One slice that cannot be uploaded now (a full disk) holds up
                # neither the other slices nor the imports of this tick.
                if time.monotonic() - self._upload_failures.get(ref, -60.0) >= 60:
                    self._upload_failures[ref] = time.monotonic()
                    log.warning("slice %s/%s/%s: upload failed, retried: %s", ref.sink, ref.file_id, ref.slice_id, exc)
                continue
            self._upload_failures.pop(ref, None)
            if result.truncated:
                log.warning(
                    "slice %s/%s/%s: cut %d bytes of a torn row", ref.sink, ref.file_id, ref.slice_id, result.truncated
                )
            # Recorded after the staging file is durable, before the local parts are removed.
            with self.storage.atomic() as tx:
                tx.mark_uploaded(ref, result.records, result.uncompressed_size, result.compressed_size)
            uploads.remove_local(self.layout, ref)

    def _released(self, ref: SliceRef, live: set[str]) -> bool:
        """Whether every node that may write to the slice has closed it (or is gone)."""
        nodes = self.storage.slice_nodes(ref)
        # A node may have opened the part file but not reported it yet.
        open_nodes = set(nodes.open) | set(uploads.node_parts(self.layout, ref))
        return all(node in nodes.closed or node not in live for node in open_nodes)

    def _clean_uploaded_leftovers(self) -> None:
        """Local parts of uploaded slices whose removal a crash interrupted."""
        if not self.layout.local_dir.is_dir():
            return
        for ref in self.storage.recently_uploaded_slices(time.time_ns() - 3600 * SECOND):
            if self.layout.slice_dir(ref.sink, ref.file_id, ref.slice_id).exists():
                uploads.remove_local(self.layout, ref)

    # 4: import.

    def _import(self, now: int) -> None:
        """Hands the files that are ready to free import threads, up to the
        concurrency: a file whose table and sink have no import under way."""
        # Files whose last slice was empty (nothing to upload) become ready here too.
        for file in self.storage.closing_files():
            with self.storage.atomic() as tx:
                tx.ready_if_uploaded(file)
        # Read before the ready files: an import that ends in between has committed
        # its outcome already, so the query below no longer offers its file.
        with self._imports_changed:
            importing = dict(self._importing)
        busy_tables = {_table_key(table_id) for table_id in importing.values()}
        busy_sinks = {file.sink for file in importing}
        for ready in self.storage.files_to_import(now):
            if len(importing) >= self.import_concurrency:
                break
            file, table = ready.file, _table_key(ready.table_id)
            if file.sink in busy_sinks or table in busy_tables:
                continue
            spec = table_spec(ready.table_id, ready.columns_json)
            importing[file] = ready.table_id
            busy_tables.add(table)
            busy_sinks.add(file.sink)
            with self._imports_changed:
                self._importing[file] = ready.table_id
            thread = threading.Thread(
                target=self._import_thread,
                args=(file, spec, ready.retry_attempt, ready.closing_ns),
                name=f"import {file.sink}/{file.file_id}",
                # A stop does not wait for it beyond import_stop_wait (see finish_imports).
                daemon=True,
            )
            try:
                thread.start()
            except BaseException:
                self._import_ended(file, wake=False)
                raise

    def _import_thread(self, file: FileRef, spec: TableSpec, attempt: int, closing_ns: int | None) -> None:
        try:
            self._import_file(file.sink, file.file_id, spec, attempt, closing_ns)
        except Exception as exc:
            # The outcome could not be recorded (the control plane is away): the
            # file is still ready and is imported again, idempotently, by a later
            # tick. The same failure is logged once a minute while it lasts.
            with self._imports_changed:
                last = self._import_failures.get(file, -60.0)
                if time.monotonic() - last >= 60:
                    self._import_failures[file] = time.monotonic()
                    log.warning(
                        "sink %s: import of file %s not finished, tried again: %s%s",
                        file.sink,
                        file.file_id,
                        f"{type(exc).__name__}: {exc}",
                        " (the disk is full)" if is_disk_full(exc) else "",
                    )
            self._import_ended(file, wake=False)
            return
        with self._imports_changed:
            self._import_failures.pop(file, None)
        self._import_ended(file)

    def _import_ended(self, file: FileRef, *, wake: bool = True) -> None:
        with self._imports_changed:
            self._importing.pop(file, None)
            self._imports_changed.notify_all()
        if wake:
            # The next file of its table may be ready: the tick looks now, not in a second.
            self._wake.set()

    def _import_file(self, key: SinkKey, file_id: str, spec: TableSpec, attempt: int, closing_ns: int | None) -> None:
        file = FileRef(key, file_id)
        if self.shared is None:
            paths = [
                self.layout.staging_path(key, file_id, slice_id)
                for slice_id in self.storage.uploaded_slices_with_rows(file)
            ]
            self._import_paths(key, file_id, spec, attempt, closing_ns, paths=paths)
            return
        try:
            fetched, paths = self.shared.fetch(file)
        except Exception as exc:
            # The store is away: the file waits for its next attempt, as after a failed import.
            outcome = self._failed(key, file_id, attempt + 1, str(exc) or type(exc).__name__, closing_ns)
            metrics().observe_import(key.source_id, key.sink_id, outcome, 0, 0.0)
            return
        try:
            self._import_paths(key, file_id, spec, attempt, closing_ns, paths=paths)
        finally:
            _remove_tree(fetched)

    def _import_paths(
        self, key: SinkKey, file_id: str, spec: TableSpec, attempt: int, closing_ns: int | None, *, paths: list[Path]
    ) -> None:
        file = FileRef(key, file_id)
        rejected_path = self.layout.rejected_path(key, file_id)

        def reject(rows: Sequence[RejectedRow]) -> None:
            write_rejected(rejected_path, file_id, spec.columns, rows)

        rejected = 0
        events: EventRange | None = None
        rows_read = 0
        started = time.perf_counter()
        try:
            if paths:
                self.target.ensure_table(spec)
                request = ImportRequest(
                    spec=spec,
                    import_id=f"{key}/{file_id}",
                    paths=paths,
                    sink=SinkIdentity(key.branch_id, key.source_id, key.sink_id),
                    reject=reject,
                )
                result = self.target.import_files(request)
                # Imported before a crash: its rejected rows were written before that commit.
                rejected = count_rejected(rejected_path) if result.already_imported else result.rejected
                events = result.event_range
                rows_read = result.rows_read
                log.info(
                    "sink %s: file %s imported into %s (%d rows%s)",
                    key,
                    file_id,
                    spec.table_id,
                    result.rows_read,
                    ", already imported" if result.already_imported else "",
                )
                if result.rejected:
                    log.warning(
                        "sink %s: file %s: %d rows refused by the target are kept in %s",
                        key,
                        file_id,
                        result.rejected,
                        rejected_path,
                    )
        except Exception as exc:
            outcome = self._failed(
                key, file_id, attempt + 1, str(exc) or type(exc).__name__, closing_ns, disk_full=is_disk_full(exc)
            )
            metrics().observe_import(key.source_id, key.sink_id, outcome, 0, time.perf_counter() - started)
            return
        # Recorded after the target committed (a crash in between imports again, idempotently).
        with self.storage.atomic() as tx:
            if events is None:
                tx.mark_imported(file, rejected)
            else:
                tx.mark_imported(file, rejected, events.first_us * 1000, events.last_us * 1000)
        metrics().observe_import(key.source_id, key.sink_id, "imported", rows_read, time.perf_counter() - started)
        self._prune_staging(key)

    def _failed(
        self, key: SinkKey, file_id: str, attempt: int, reason: str, closing_ns: int | None, *, disk_full: bool = False
    ) -> str:
        """Drops the file or schedules a retry; returns which (``dropped``, ``failed``)."""
        now = time.time_ns()
        if closing_ns is not None and now - closing_ns > self.options.max_file_age * SECOND:
            log.error("sink %s: file %s dropped, it could not be imported for 7 days: %s", key, file_id, reason)
            with self.storage.atomic() as tx:
                tx.drop_file(FileRef(key, file_id))
            self._remove_staged(key, file_id)
            return "dropped"
        delay = self.options.disk_full_retry if disk_full else retry_delay(attempt, self.options)
        log.warning(
            "sink %s: import of file %s failed (attempt %d), retry in %.0f s: %s", key, file_id, attempt, delay, reason
        )
        with self.storage.atomic() as tx:
            tx.retry_later(FileRef(key, file_id), attempt, reason, now + int(delay * SECOND))
        return "failed"

    def _prune_staging(self, key: SinkKey) -> None:
        """Removes staging files of imported files, except the newest few."""
        imported = self.storage.imported_files(key)[self.options.keep_imported :]
        if self.shared is not None:
            # A request per file: only those that fell out of the kept ones lately.
            imported = imported[:3]
        for file_id in imported:
            self._remove_staged(key, file_id)

    def _remove_staged(self, key: SinkKey, file_id: str) -> None:
        if self.shared is None:
            _remove_tree(self.layout.staging_dir.joinpath(*key.parts(), file_id))
            return
        try:
            self.shared.remove_file(key, file_id)
        except Exception as exc:
            log.warning("sink %s: staging of file %s not removed: %s", key, file_id, exc)


def _table_key(table_id: str) -> str:
    """What makes two table ids one table for the import threads: the SQLite
    target's table names ignore case, so ids differing in case only are one
    table there (in PostgreSQL they are two, which then merely take turns)."""
    return table_id.casefold()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _triggered(settings: dict[str, Any], trigger: str, records: int, size: int, age_ns: int) -> bool:
    """Whether the ``count``, ``size`` or ``interval`` condition under the settings
    prefix ``trigger`` is met."""
    return bool(
        records >= settings[trigger + "count"]
        or size >= settings[trigger + "size"]
        or age_ns >= settings[trigger + "interval"] * SECOND
    )
