"""The config store's interfaces for the data plane, and its use from several processes:
on SQLite and on the PostgreSQL control plane of ``serve --cluster`` alike."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from apitest import BASE, Api

from pushstream import Mapping
from pushstream.catalog.models import IngestSink, IngestSource
from pushstream.errors import CatalogError, StoreUnavailableError
from statebackends import StateBackend, open_catalog


def test_ingest_reads(api: Api, source: dict[str, Any]) -> None:
    catalog = api.services.catalog
    secret = source["http"]["url"].rsplit("/", 1)[1]
    columns = [{"type": "body", "name": "b", "primaryKey": True}, {"type": "path", "name": "p", "path": "a"}]
    sink = api.create_sink("my-source", columns=columns)
    expected_source = IngestSource(1, 1, "my-source", secret, enabled=True, deleted=False, version=1)
    assert catalog.get_source_for_ingest(1, "my-source") == expected_source
    assert catalog.get_source_for_ingest(1, "my-source", 1) == expected_source
    assert catalog.get_sources_for_ingest(1, "my-source") == [expected_source]
    assert catalog.get_source_for_ingest(2, "my-source") is None
    assert catalog.get_sources_for_ingest(1, "other") == []
    (ingest_sink,) = catalog.list_sinks(1, "my-source")
    assert ingest_sink == IngestSink(
        project_id=1,
        branch_id=1,
        source_id="my-source",
        sink_id="my-sink",
        table_id="in.c-bucket.my-sink",
        columns_json=orjson.dumps(columns).decode(),
        enabled=True,
        version=sink["version"]["number"],
        settings=catalog.effective_settings(1, "my-source", "my-sink"),
        mapping_json=orjson.dumps({"columns": columns}).decode(),
    )
    assert Mapping(ingest_sink.columns_json).primary_key == ["b"]
    api.run("PUT", f"{BASE}/my-source/disable")
    disabled = catalog.get_source_for_ingest(1, "my-source")
    assert disabled is not None and disabled.state == "disabled" and disabled.version == 2
    api.run("DELETE", f"{BASE}/my-source")
    deleted = catalog.get_source_for_ingest(1, "my-source")
    assert deleted is not None and deleted.state == "deleted"
    assert catalog.list_sinks(1, "my-source", enabled_only=False) == []


def test_catalog_reopens_with_its_data(state_backend: StateBackend) -> None:
    catalog = state_backend.catalog()
    catalog.ensure_branch(1, 1, default=True)
    with catalog.transaction() as tx:
        tx.bump_revision()
    token, secret = catalog.create_token("t", "guest")
    catalog.close()
    with pytest.raises(CatalogError, match="closed"):
        catalog.revision()
    again = state_backend.catalog()
    assert again.revision() == 1
    assert again.default_branch_id() == 1
    assert again.authenticate(secret) == token
    again.ensure_branch(1, 7, default=True)
    assert again.default_branch_id() == 7 and again.branch_exists(1)
    again.close()


def test_transaction_rolls_back_on_error(state_backend: StateBackend) -> None:
    catalog = state_backend.catalog()
    with pytest.raises(RuntimeError), catalog.transaction() as tx:
        tx.bump_revision()
        raise RuntimeError("abort")
    assert catalog.revision() == 0
    with catalog.transaction(), pytest.raises(CatalogError, match="nested"), catalog.transaction():
        pass
    catalog.close()


def test_newer_schema_is_refused(state_backend: StateBackend) -> None:
    state_backend.catalog().close()
    state_backend.query("UPDATE meta SET value = 99 WHERE key = 'schema'")
    with pytest.raises(CatalogError, match="newer pushstream"):
        state_backend.catalog()


def _bump(kind: str, location: str, data_dir: str, count: int) -> None:
    catalog = open_catalog(kind, location, Path(data_dir))
    for _ in range(count):
        with catalog.transaction() as tx:
            tx.bump_revision()
    catalog.close()


def test_several_processes_share_the_catalog(state_backend: StateBackend) -> None:
    """Writers of several processes queue, none is lost; on PostgreSQL they also
    create the schema at the same moment (under its advisory lock)."""
    if not state_backend.is_postgresql:
        state_backend.catalog().close()
    context = multiprocessing.get_context("spawn")
    args = (state_backend.kind, state_backend.location, str(state_backend.data_dir), 50)
    processes = [context.Process(target=_bump, args=args) for _ in range(3)]
    for process in processes:
        process.start()
    _bump(*args)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    catalog = state_backend.catalog()
    assert catalog.revision() == 200
    if not state_backend.is_postgresql:
        assert state_backend.query("PRAGMA journal_mode") == [("wal",)]
    catalog.close()


def test_token_roles(state_backend: StateBackend) -> None:
    catalog = state_backend.catalog()
    with pytest.raises(CatalogError, match="unknown role"):
        catalog.create_token("x", "root")  # type: ignore[arg-type]
    admin, _ = catalog.create_token("a", "admin")
    guest, _ = catalog.create_token("g", "guest")
    assert (admin.token_id, guest.token_id) == ("1", "2")
    assert admin.can_write and not guest.can_write
    assert [t.description for t in catalog.list_tokens()] == ["a", "g"]
    catalog.close()


def test_revision_listeners_run_inside_the_transaction(state_backend: StateBackend) -> None:
    catalog = state_backend.catalog()
    seen: list[tuple[int, bool]] = []
    # SQLite passes the transaction's connection, PostgreSQL the transaction: both say whether it is open.
    catalog.add_revision_listener(  # type: ignore[attr-defined]
        lambda transaction, revision: seen.append((revision, transaction.in_transaction))
    )
    with catalog.transaction() as tx:
        tx.bump_revision()
    assert seen == [(1, True)]

    def refuse(transaction: object, revision: int) -> None:
        raise RuntimeError("no")

    catalog.add_revision_listener(refuse)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError), catalog.transaction() as tx:
        tx.bump_revision()
    assert catalog.revision() == 1
    catalog.close()


def test_pages_order_ids_as_bytes(state_backend: StateBackend) -> None:
    """Ids are compared byte by byte on both (PostgreSQL columns collate as "C"), so
    pages of sources are the same."""
    catalog = state_backend.catalog()
    catalog.ensure_branch(1, 1, default=True)
    ids = ["b", "B", "a-1", "a_1", "a1", "A"]
    with catalog.transaction() as tx:
        for source_id in ids:
            tx.put_source(_source(source_id))
    page, total = catalog.page_sources(1, limit=4)
    assert ([s.source_id for s in page], total) == (["A", "B", "a-1", "a1"], 6)
    rest, _ = catalog.page_sources(1, after_id="a1")
    assert [s.source_id for s in rest] == ["a_1", "b"]
    catalog.close()


def _source(source_id: str) -> Any:
    from pushstream.catalog.models import By, Event, Source, Version

    at = "2026-12-01T00:00:00.000Z"
    version = Version(number=1, hash="0123456789abcdef", description="", at=at, by=By())
    return Source(
        project_id=1,
        branch_id=1,
        source_id=source_id,
        name=source_id,
        secret="s" * 48,
        version=version,
        created=Event(at=at, by=By()),
    )


def test_every_config_revision_is_notified_at_commit(pg_admin_url: str, tmp_path: Path) -> None:
    """``NOTIFY pushstream_revision`` with both revisions, delivered when the change
    commits and not when it rolls back (what the nodes of a cluster listen to)."""
    backend = StateBackend("postgresql", tmp_path, pg_admin_url)
    catalog = backend.catalog()
    storage = backend.storage()
    with psycopg.connect(pg_admin_url, autocommit=True) as listener:
        listener.execute("LISTEN pushstream_revision")
        with catalog.transaction() as tx:
            tx.bump_revision()
            assert list(listener.notifies(timeout=0.2)) == []  # not before the commit
        with pytest.raises(RuntimeError), catalog.transaction() as tx:
            tx.bump_revision()
            raise RuntimeError("rolled back")
        with storage.atomic() as storage_tx:
            storage_tx.open_file(_sink_key(), "in.c-t.k", "[]")
        with catalog.transaction() as tx:
            tx.bump_revision()
        payloads = [orjson.loads(n.payload) for n in listener.notifies(timeout=1.0, stop_after=3)]
    # The schema: installations in other schemas of the database hear the channel too.
    assert payloads == [
        {"config": 1, "storage": 0, "schema": "pushstream"},
        {"config": 1, "storage": 1, "schema": "pushstream"},
        {"config": 2, "storage": 1, "schema": "pushstream"},
    ]
    storage.close()
    catalog.close()


def _sink_key() -> Any:
    from pushstream.storage.layout import SinkKey

    return SinkKey(1, "s", "k")


def test_a_task_of_another_machine_lives_while_its_process_sends_heartbeats(pg_admin_url: str, tmp_path: Path) -> None:
    """On PostgreSQL the process owning a task may run on another node: it is alive
    while a process registered there with its pid sends heartbeats."""
    from pushstream.catalog.models import Task, now
    from pushstream.storage.state import HOST, NODE_TIMEOUT_NS

    backend = StateBackend("postgresql", tmp_path, pg_admin_url)
    catalog = backend.catalog()
    storage = backend.storage()
    for task_id in ("task/elsewhere", "task/here-gone", "task/here-alive"):
        catalog.create_task(Task(task_id, "api.source.create", "processing", now()))
    backend.query("UPDATE tasks SET owner = 'elsewhere:4242' WHERE task_id = 'task/elsewhere'")
    backend.query("UPDATE tasks SET owner = ? WHERE task_id = 'task/here-gone'", (f"{HOST}:{2**22 + 7}",))
    storage.register_node("remote-worker")
    backend.query("UPDATE storage_nodes SET host = 'elsewhere', pid = 4242 WHERE node_id = 'remote-worker'")
    assert catalog.has_processing_task("task/elsewhere")  # its heartbeat is fresh
    assert catalog.has_processing_task("task/here-alive")  # this process
    assert not catalog.has_processing_task("task/here-gone")  # no such process on this host
    backend.query("UPDATE storage_nodes SET heartbeat_ns = heartbeat_ns - ?", (NODE_TIMEOUT_NS + 1,))
    assert not catalog.has_processing_task("task/elsewhere")
    assert catalog.fail_orphaned_tasks() == 2
    task = catalog.get_task("task/elsewhere")
    assert task is not None and task.status == "error"
    alive = catalog.get_task("task/here-alive")
    assert alive is not None and alive.status == "processing"
    storage.close()
    catalog.close()


def test_the_catalog_works_again_after_postgresql_restarts(pg_admin_url: str, pg_cluster: Any, tmp_path: Path) -> None:
    """Connections that a restart broke are dropped, every idle one with them: the
    first read and the first write after PostgreSQL is back succeed, without
    reopening the catalog; while it is away, a clear StoreUnavailableError (503)."""
    catalog = StateBackend("postgresql", tmp_path, pg_admin_url).catalog()

    def bump() -> None:
        with catalog.transaction() as tx:
            tx.bump_revision()
            time.sleep(0.2)  # the others wait for the writer lock, each on a connection of its own

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pg_cluster.stop("fast")
    try:
        with pytest.raises(StoreUnavailableError, match="PostgreSQL") as raised:
            catalog.revision()
        assert raised.value.status_code == 503
    finally:
        pg_cluster.start()
    assert catalog.revision() == 3
    with catalog.transaction() as tx:
        assert tx.bump_revision() == 4
    catalog.close()
