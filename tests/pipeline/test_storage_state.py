"""The lifecycle of files and slices (pushstream.storage.state) on a real
``state.sqlite`` and on the PostgreSQL control plane of ``serve --cluster``: every
transition the coordinator and the hooks make, the queries they rely on, and a
clear error for every transition the lifecycle does not allow (the transaction
then changes nothing)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushstream.catalog import STATE_FILE
from pushstream.errors import IllegalTransitionError, PushstreamError
from pushstream.storage.base import StorageState
from pushstream.storage.layout import SinkKey
from pushstream.storage.revision import revision_file
from pushstream.storage.sqlite_state import SqliteStorageState
from pushstream.storage.state import (
    FILE_TRANSITIONS,
    FORGET_NODE_AFTER_NS,
    SLICE_TRANSITIONS,
    FileRef,
    FileState,
    FileStatus,
    ImportableFile,
    LevelCounts,
    NodeSliceStats,
    SliceNodes,
    SliceRef,
    SliceState,
    WritingSliceTotals,
    check_file,
    check_slice,
)
from statebackends import StateBackend

SINK = SinkKey(1, "s", "k")
COLUMNS = '[{"type":"body","name":"b"}]'


@pytest.fixture
def storage(state_backend: StateBackend) -> Iterator[StorageState]:
    state = state_backend.storage()
    yield state
    state.close()


def _illegal(message: str) -> pytest.RaisesExc[IllegalTransitionError]:
    return pytest.raises(IllegalTransitionError, match=f"^{re.escape(message)}$")


def _slice_state(backend: StateBackend, ref: SliceRef) -> str:
    ((state,),) = backend.query(
        "SELECT state FROM storage_slices WHERE file_id = ? AND slice_id = ?", (ref.file_id, ref.slice_id)
    )
    return str(state)


def _closed_file(storage: StorageState) -> tuple[FileRef, list[SliceRef]]:
    """A file of two slices, closed: its slices wait for upload."""
    with storage.atomic() as tx:
        first = tx.open_file(SINK, "in.c-t.k", COLUMNS)
        second = tx.rotate_slice(SINK)
        assert second is not None
        assert tx.close_file(SINK) == first.file_id
    file = FileRef(SINK, first.file_id)
    return file, [SliceRef(SINK, first.file_id, first.slice_id), SliceRef(SINK, first.file_id, second.slice_id)]


@pytest.mark.parametrize("current", list(SliceState))
@pytest.mark.parametrize("new", list(SliceState))
def test_a_slice_moves_only_to_its_next_state(current: SliceState, new: SliceState) -> None:
    order = list(SliceState)
    if order.index(new) == order.index(current) + 1:
        check_slice("1/s/k/F/S", current, new)
        assert SLICE_TRANSITIONS[current] == {new}
        return
    message = (
        f"slice 1/s/k/F/S: cannot move from {current.value} to {new.value}"
        " (a slice goes writing → closing → uploaded → imported)"
    )
    with _illegal(message):
        check_slice("1/s/k/F/S", current, new)


@pytest.mark.parametrize("current", list(FileState))
@pytest.mark.parametrize("new", list(FileState))
def test_a_file_moves_only_to_its_next_state(current: FileState, new: FileState) -> None:
    order = list(FileState)
    if order.index(new) == order.index(current) + 1:
        check_file("1/s/k/F", current, new)
        assert FILE_TRANSITIONS[current] == {new}
        return
    message = (
        f"file 1/s/k/F: cannot move from {current.value} to {new.value}"
        " (a file goes writing → closing → importing → imported)"
    )
    with _illegal(message):
        check_file("1/s/k/F", current, new)


def test_a_missing_file_or_slice_cannot_move() -> None:
    with _illegal("slice 1/s/k/F/S: cannot move to uploaded, it does not exist"):
        check_slice("1/s/k/F/S", None, SliceState.UPLOADED)
    with _illegal("file 1/s/k/F: cannot move to imported, it does not exist"):
        check_file("1/s/k/F", None, FileState.IMPORTED)
    assert issubclass(IllegalTransitionError, PushstreamError)


def test_the_whole_lifecycle(state_backend: StateBackend, storage: StorageState) -> None:
    file, (first, second) = _closed_file(storage)
    assert storage.writing_slice(SINK) is None
    assert storage.closing_slices() == [first, second]
    assert storage.closing_files() == [file]
    storage.report("n1", [NodeSliceStats(first, True, 2, 20, 100, 200), NodeSliceStats(second, True, 1, 10, 300, 300)])

    with storage.atomic() as tx:
        tx.mark_uploaded(first, 2, 20, 9)
    assert [_slice_state(state_backend, first), _slice_state(state_backend, second)] == ["uploaded", "closing"]
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("closing", 0, None)]
    assert storage.files_to_import(2**62) == []

    with storage.atomic() as tx:
        tx.mark_uploaded(second, 1, 10, 7)  # the last slice: the file is ready
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("importing", 0, None)]
    (ready,) = storage.files_to_import(2**62)
    assert (ready.file, ready.table_id, ready.columns_json, ready.retry_attempt) == (file, "in.c-t.k", COLUMNS, 0)
    assert storage.uploaded_slices_with_rows(file) == [first.slice_id, second.slice_id]
    assert storage.level_counts(SINK)["staging"] == LevelCounts(3, 16, 30, 100, 300)

    with storage.atomic() as tx:
        tx.retry_later(file, 1, "target away", 5_000)
    assert storage.files_to_import(4_999) == []
    assert [f.file for f in storage.files_to_import(5_000)] == [file]
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("importing", 1, "target away")]

    with storage.atomic() as tx:
        tx.mark_imported(file, 1)
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("imported", 1, "target away")]
    assert [_slice_state(state_backend, first), _slice_state(state_backend, second)] == ["imported", "imported"]
    assert storage.imported_files(SINK) == [file.file_id]
    assert storage.level_counts(SINK)["target"] == LevelCounts(3, 16, 30, 100, 300)
    assert storage.rejected_records(SINK) == 1

    with storage.atomic() as tx:
        tx.forget_imported(SINK)
    assert storage.imported_files(SINK) == []
    # A forgotten file counts as imported (only imported files are forgotten).
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("imported", 0, None)]


def test_illegal_transitions_raise_and_change_nothing(state_backend: StateBackend, storage: StorageState) -> None:
    with storage.atomic() as tx:
        writing = tx.open_file(SINK, "in.c-t.k", COLUMNS)
    file = FileRef(SINK, writing.file_id)
    ref = SliceRef(SINK, writing.file_id, writing.slice_id)
    revision = storage.revision()

    opened = f"sink 1/s/k: cannot open a file, file {file.file_id} is still writing (close it first)"
    with _illegal(opened), storage.atomic() as tx:
        tx.open_file(SINK, "in.c-t.other", COLUMNS)
    with (
        _illegal(
            f"slice {ref}: cannot move from writing to uploaded (a slice goes writing → closing → uploaded → imported)"
        ),
        storage.atomic() as tx,
    ):
        tx.mark_uploaded(ref, 1, 1, 1)
    with (
        _illegal(
            f"file {file}: cannot move from writing to imported (a file goes writing → closing → importing → imported)"
        ),
        storage.atomic() as tx,
    ):
        tx.mark_imported(file, 0)
    retried = f"file {file}: cannot retry the import of a writing file (only importing)"
    with _illegal(retried), storage.atomic() as tx:
        tx.retry_later(file, 1, "no", 0)
    with _illegal(f"file {file}: cannot drop a writing file (only importing)"), storage.atomic() as tx:
        tx.drop_file(file)
    missing = FileRef(SINK, "20260101T000000.000000Z")
    with _illegal(f"file {missing}: cannot drop, it does not exist"), storage.atomic() as tx:
        tx.drop_file(missing)

    # A transition that raises rolls back what its transaction did before.
    with pytest.raises(IllegalTransitionError), storage.atomic() as tx:
        tx.rotate_slice(SINK)
        tx.mark_uploaded(ref, 1, 1, 1)  # closing → uploaded is fine, but:
        tx.mark_imported(file, 0)  # the file is still writing
    assert storage.writing_slice(SINK) == writing
    assert _slice_state(state_backend, ref) == "writing"
    assert storage.revision() == revision


def test_an_uploaded_slice_cannot_be_uploaded_again_nor_imported_before_its_file(storage: StorageState) -> None:
    file, (first, second) = _closed_file(storage)
    with storage.atomic() as tx:
        tx.mark_uploaded(first, 0, 0, 0)
    with (
        _illegal(
            f"slice {first}: cannot move from uploaded to uploaded"
            " (a slice goes writing → closing → uploaded → imported)"
        ),
        storage.atomic() as tx,
    ):
        tx.mark_uploaded(first, 0, 0, 0)
    with (
        _illegal(
            f"file {file}: cannot move from closing to imported (a file goes writing → closing → importing → imported)"
        ),
        storage.atomic() as tx,
    ):
        tx.mark_imported(file, 0)
    # Not every slice is uploaded: the file stays closing.
    with storage.atomic() as tx:
        assert tx.ready_if_uploaded(file) is False
    with storage.atomic() as tx:
        tx.mark_uploaded(second, 0, 0, 0)
    with storage.atomic() as tx:
        assert tx.ready_if_uploaded(file) is False  # mark_uploaded moved it on already
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("importing", 0, None)]
    with storage.atomic() as tx:
        tx.drop_file(file)
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("imported", 0, None)]
    assert storage.closing_slices() == []


def test_writing_follows_the_table_and_columns(storage: StorageState) -> None:
    with storage.atomic() as tx:
        first = tx.ensure_writing(SINK, "in.c-t.k", COLUMNS)
        assert tx.ensure_writing(SINK, "in.c-t.k", COLUMNS) == first
        moved = tx.ensure_writing(SINK, "in.c-t.moved", COLUMNS)
    assert moved.file_id > first.file_id
    assert storage.writing_slice(SINK) == moved
    # The file of the old table is imported with the table it was written for.
    assert storage.file_states([(SINK, first.file_id)]) == [FileStatus("closing", 0, None)]


def test_flush_closes_writing_files_and_ends_backoff(storage: StorageState) -> None:
    file, slices = _closed_file(storage)
    with storage.atomic() as tx:
        for ref in slices:
            tx.mark_uploaded(ref, 0, 0, 0)
        tx.retry_later(file, 2, "target away", 2**62)
        writing = tx.open_file(SINK, "in.c-t.k", COLUMNS)
    assert storage.files_to_import(10) == []
    with storage.atomic() as tx:
        pending = tx.flush(1, "s")
    assert sorted(pending, key=lambda p: p[1]) == [(SINK, file.file_id), (SINK, writing.file_id)]
    assert [f.file for f in storage.files_to_import(10)] == [file]
    assert storage.file_states([(SINK, writing.file_id)]) == [FileStatus("closing", 0, None)]
    after = storage.writing_slice(SINK)
    assert after is not None and after.file_id > writing.file_id


def test_what_the_coordinator_and_the_statistics_read(storage: StorageState) -> None:
    """Every query of the coordinator and the statistics, with exact values, through
    the steps of one file: two nodes write its first slice, one its second."""
    other = SinkKey(1, "s", "other")
    with storage.atomic() as tx:
        first = tx.open_file(SINK, "in.c-t.k", COLUMNS)
        tx.open_file(other, "in.c-t.o", COLUMNS)
    file = FileRef(SINK, first.file_id)
    one = SliceRef(SINK, first.file_id, first.slice_id)
    storage.report("n1", [NodeSliceStats(one, False, 3, 30, 100, 300)])
    storage.report("n2", [NodeSliceStats(one, False, 2, 20, 50, 200)])
    (other_totals, totals) = sorted(storage.writing_slices(), key=lambda w: w.slice.sink.sink_id != "other")
    assert totals == WritingSliceTotals(one, first.opened_ns, first.opened_ns, 5, 50, 5, 50)
    assert (other_totals.records, other_totals.file_records) == (0, 0)
    assert storage.level_counts(SINK)["local"] == LevelCounts(5, 0, 50, 50, 300)
    assert not storage.has_closing_slices()

    with storage.atomic() as tx:
        second = tx.rotate_slice(SINK)
    assert second is not None
    two = SliceRef(SINK, first.file_id, second.slice_id)
    storage.report("n1", [NodeSliceStats(one, True, 3, 30, 100, 300), NodeSliceStats(two, False, 4, 40, 400, 500)])
    assert storage.has_closing_slices() and storage.closing_slices() == [one]
    assert storage.slice_nodes(one) == SliceNodes(open=frozenset({"n2"}), closed=frozenset({"n1"}))
    writing = {w.slice: w for w in storage.writing_slices()}[two]
    # The file so far: the writing slice (4 rows) and the closing one as its nodes report it (5 rows).
    assert (writing.records, writing.size, writing.file_records, writing.file_size) == (4, 40, 9, 90)

    with storage.atomic() as tx:
        tx.mark_uploaded(one, 5, 50, 17)
        assert tx.close_file(SINK) == file.file_id
    assert storage.closing_files() == [file]
    assert storage.recently_uploaded_slices(0) == [one]
    assert storage.level_counts(SINK, file.file_id)["staging"] == LevelCounts(5, 17, 50, 50, 300)
    with storage.atomic() as tx:
        tx.mark_uploaded(two, 0, 0, 0)
    assert storage.closing_files() == []
    (importable,) = storage.files_to_import(2**62)
    assert importable == ImportableFile(file, "in.c-t.k", COLUMNS, 0, importable.closing_ns)
    assert importable.closing_ns is not None
    assert storage.uploaded_slices_with_rows(file) == [one.slice_id]  # the empty one is skipped

    with storage.atomic() as tx:
        tx.retry_later(file, 1, "target away", 2**62)
    assert storage.files_to_import(2**61) == []
    (failed,) = storage.file_records(SINK, failed_only=True, limit=10)
    assert (failed.file_id, failed.state, failed.retry_attempt, failed.retry_reason) == (
        file.file_id,
        "importing",
        1,
        "target away",
    )
    with storage.atomic() as tx:
        tx.mark_imported(file, 2, 7_000, 8_000)
    assert storage.imported_files(SINK) == [file.file_id]
    assert storage.rejected_records(SINK) == 2 and storage.rejected_records(SINK, file.file_id) == 2
    assert storage.level_counts(SINK)["target"] == LevelCounts(5, 17, 50, 50, 300, 7_000, 8_000)
    assert sorted(storage.sinks_with_files(1, "s")) == ["k", "other"]
    with storage.atomic() as tx:
        tx.forget_imported(SINK)
    assert storage.imported_files(SINK) == [] and storage.level_counts(SINK)["target"].records == 0
    assert storage.file_states([(SINK, file.file_id)]) == [FileStatus("imported", 0, None)]


def test_every_change_of_where_receivers_write_is_announced(tmp_path: Path, storage: StorageState) -> None:
    revisions = revision_file(tmp_path)
    with storage.atomic() as tx:
        tx.open_file(SINK, "in.c-t.k", COLUMNS)
    assert storage.revision() == 1 and revisions.read()[1] == 1
    with storage.atomic() as tx:
        tx.rotate_slice(SINK)
        tx.rotate_file(SINK)  # closes (a bump) and opens (another)
    assert storage.revision() == 4 and revisions.read()[1] == 4


def test_the_storage_of_a_catalog_transaction_commits_and_rolls_back_with_it(
    state_backend: StateBackend, storage: StorageState
) -> None:
    catalog = state_backend.catalog()
    try:
        with pytest.raises(RuntimeError), catalog.transaction() as tx:
            tx.storage().open_file(SINK, "in.c-t.k", COLUMNS)
            assert tx.storage().writing_slice(SINK) is not None  # seen inside the transaction
            raise RuntimeError("the config change failed")
        assert storage.writing_slice(SINK) is None
        with catalog.transaction() as tx:
            opened = tx.storage().open_file(SINK, "in.c-t.k", COLUMNS)
        assert storage.writing_slice(SINK) == opened
    finally:
        catalog.close()


def test_live_nodes(storage: StorageState) -> None:
    storage.register_node("a")
    storage.register_node("b")
    storage.report("b", [], stopped=True)
    assert storage.live_nodes() == {"a"}


def test_nodes_not_heard_from_for_a_day_are_forgotten_unless_they_wrote_a_tracked_slice(
    state_backend: StateBackend, storage: StorageState
) -> None:
    with storage.atomic() as tx:
        writing = tx.open_file(SINK, "in.c-t.k", COLUMNS)
    for node in ("old-idle", "old-writer", "recent"):
        storage.register_node(node)
    storage.report(
        "old-writer", [NodeSliceStats(SliceRef(SINK, writing.file_id, writing.slice_id), False, 1, 10, 1, 1)]
    )
    storage.report("recent", [], stopped=True)
    day_and_a_second = FORGET_NODE_AFTER_NS + 1_000_000_000
    state_backend.query(
        "UPDATE storage_nodes SET heartbeat_ns = heartbeat_ns - ? WHERE node_id IN ('old-idle', 'old-writer')",
        (day_and_a_second,),
    )
    storage.register_node("new")
    assert sorted(r[0] for r in state_backend.query("SELECT node_id FROM storage_nodes")) == [
        "new",
        "old-writer",
        "recent",
    ]
    assert storage.live_nodes() == {"new"}


def _imported_file(storage: StorageState, events: tuple[int, int] | None) -> FileRef:
    """A file of one slice (one row), imported with the event-time range ``events``."""
    with storage.atomic() as tx:
        writing = tx.open_file(SINK, "in.c-t.k", COLUMNS)
        tx.close_file(SINK)
    ref = SliceRef(SINK, writing.file_id, writing.slice_id)
    storage.report("n1", [NodeSliceStats(ref, True, 1, 10, 100, 100)])
    with storage.atomic() as tx:
        tx.mark_uploaded(ref, 1, 10, 7)
        if events is None:
            tx.mark_imported(ref.file, 0)
        else:
            tx.mark_imported(ref.file, 0, *events)
    return ref.file


def test_imported_files_keep_their_event_time_range(storage: StorageState) -> None:
    older = _imported_file(storage, (5_000, 9_000))
    without = _imported_file(storage, None)
    newer = _imported_file(storage, (1_000, 6_000))
    assert storage.level_counts(SINK)["target"] == LevelCounts(3, 21, 30, 100, 100, 1_000, 9_000)
    assert storage.level_counts(SINK, without.file_id)["target"] == LevelCounts(1, 7, 10, 100, 100)
    assert storage.level_counts(SINK, newer.file_id)["target"] == LevelCounts(1, 7, 10, 100, 100, 1_000, 6_000)

    def ids(**order: bool) -> list[str]:
        return [f.file_id for f in storage.file_records(SINK, failed_only=False, limit=10, **order)]

    assert ids() == [newer.file_id, without.file_id, older.file_id]
    # By last event time, latest first; a file without one follows.
    assert ids(by_event_time=True) == [older.file_id, newer.file_id, without.file_id]
    (record,) = [f for f in storage.file_records(SINK, failed_only=False, limit=10) if f.file_id == older.file_id]
    assert (record.first_event_ns, record.last_event_ns) == (5_000, 9_000)


def test_a_state_file_from_before_event_times_gets_their_columns(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    SqliteStorageState(path).close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE storage_files DROP COLUMN first_event_ns")
        db.execute("ALTER TABLE storage_files DROP COLUMN last_event_ns")
    storage = SqliteStorageState(path)
    try:
        columns = [row[1] for row in storage.db().execute("PRAGMA table_info(storage_files)")]
        assert columns[-2:] == ["first_event_ns", "last_event_ns"]
        file = _imported_file(storage, (1_000, 2_000))
        assert storage.level_counts(SINK, file.file_id)["target"] == LevelCounts(1, 7, 10, 100, 100, 1_000, 2_000)
    finally:
        storage.close()


def test_the_parts_of_a_slice_in_shared_staging_on_postgresql(pg_admin_url: str, tmp_path: Path) -> None:
    """The PostgreSQL twin of the shared staging steps: a slice is uploaded once the
    part of every node that wrote to it is."""
    from pushstream.storage.pg_state import PgStorageState

    storage = StateBackend("postgresql", tmp_path, pg_admin_url).storage()
    assert isinstance(storage, PgStorageState)
    try:
        with storage.atomic() as tx:
            writing = tx.open_file(SINK, "in.c-t.k", COLUMNS)
            tx.close_file(SINK)
        ref = SliceRef(SINK, writing.file_id, writing.slice_id)
        storage.report("n1", [NodeSliceStats(ref, True, 3, 30, 100, 200)])
        storage.report("n2", [NodeSliceStats(ref, True, 2, 20, 150, 300)])
        with storage.atomic() as tx:
            assert not tx.mark_part_uploaded(ref, "n1", 3, 30, 10)
            assert not tx.mark_part_uploaded(ref, "n3", 0, 0, 0)  # never reported: now a writer of the slice
        assert storage.slice_parts(ref) == {"n1": 3, "n3": 0}
        with storage.atomic() as tx:
            assert tx.mark_part_uploaded(ref, "n2", 2, 20, 8)
        assert storage.level_counts(SINK)["staging"] == LevelCounts(5, 18, 50, 100, 300)
        assert storage.file_states([(SINK, writing.file_id)]) == [FileStatus("importing", 0, None)]
        with (
            storage.atomic() as tx,
            _illegal(
                f"slice {ref}: cannot move from uploaded to uploaded"
                " (a slice goes writing → closing → uploaded → imported)"
            ),
        ):
            tx.mark_part_uploaded(ref, "n2", 2, 20, 8)
    finally:
        storage.close()


def test_the_state_summary_of_the_metrics(storage: StorageState) -> None:
    """Files and slices per state of every sink, the oldest file waiting for its
    import and the retries pending, on both backends."""
    assert storage.state_summary() == []
    file, (first, second) = _closed_file(storage)
    with storage.atomic() as tx:
        tx.open_file(SINK, "in.c-t.k", COLUMNS)
    (summary,) = storage.state_summary()
    assert (summary.sink, summary.files, summary.slices) == (
        SINK,
        {"closing": 1, "writing": 1},
        {"closing": 2, "writing": 1},
    )
    closed = summary.oldest_unimported_closed_ns
    assert closed is not None and summary.retries_pending == 0
    storage.report("n1", [NodeSliceStats(first, True, 1, 10, 1, 1), NodeSliceStats(second, True, 1, 10, 2, 2)])
    with storage.atomic() as tx:
        tx.mark_uploaded(first, 1, 10, 5)
        tx.mark_uploaded(second, 1, 10, 5)
        tx.retry_later(file, 1, "target away", 5_000)
    (summary,) = storage.state_summary()
    assert (summary.files, summary.slices) == ({"importing": 1, "writing": 1}, {"uploaded": 2, "writing": 1})
    assert (summary.oldest_unimported_closed_ns, summary.retries_pending) == (closed, 1)
