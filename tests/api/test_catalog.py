"""The config store's interfaces for the data plane, and SQLite use from several processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import orjson
import pytest
from apitest import BASE, Api

from pushstream import Mapping
from pushstream.catalog import STATE_FILE, SqliteCatalog
from pushstream.catalog.models import IngestSink, IngestSource
from pushstream.errors import CatalogError


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


def test_catalog_reopens_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    catalog = SqliteCatalog(path)
    catalog.ensure_branch(1, 1, default=True)
    with catalog.transaction() as tx:
        tx.bump_revision()
    token, secret = catalog.create_token("t", "guest")
    catalog.close()
    with pytest.raises(CatalogError, match="closed"):
        catalog.revision()
    again = SqliteCatalog(path)
    assert again.revision() == 1
    assert again.default_branch_id() == 1
    assert again.authenticate(secret) == token
    again.ensure_branch(1, 7, default=True)
    assert again.default_branch_id() == 7 and again.branch_exists(1)
    again.close()


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / STATE_FILE)
    with pytest.raises(RuntimeError), catalog.transaction() as tx:
        tx.bump_revision()
        raise RuntimeError("abort")
    assert catalog.revision() == 0
    with catalog.transaction(), pytest.raises(CatalogError, match="nested"), catalog.transaction():
        pass
    catalog.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / STATE_FILE)
    catalog._db().execute("UPDATE meta SET value = 99 WHERE key = 'schema'")  # type: ignore[attr-defined]
    catalog.close()
    with pytest.raises(CatalogError, match="newer pushstream"):
        SqliteCatalog(tmp_path / STATE_FILE)


def _bump(path: str, count: int) -> None:
    catalog = SqliteCatalog(path)
    for _ in range(count):
        with catalog.transaction() as tx:
            tx.bump_revision()
    catalog.close()


def test_several_processes_share_the_catalog(tmp_path: Path) -> None:
    path = str(tmp_path / STATE_FILE)
    SqliteCatalog(path).close()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_bump, args=(path, 50)) for _ in range(3)]
    for process in processes:
        process.start()
    _bump(path, 50)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    catalog = SqliteCatalog(path)
    assert catalog.revision() == 200
    assert catalog._db().execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # type: ignore[attr-defined]
    catalog.close()


def test_token_roles(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / STATE_FILE)
    with pytest.raises(CatalogError, match="unknown role"):
        catalog.create_token("x", "root")  # type: ignore[arg-type]
    admin, _ = catalog.create_token("a", "admin")
    guest, _ = catalog.create_token("g", "guest")
    assert (admin.token_id, guest.token_id) == ("1", "2")
    assert admin.can_write and not guest.can_write
    assert [t.description for t in catalog.list_tokens()] == ["a", "g"]
    catalog.close()


def test_revision_listeners_run_inside_the_transaction(tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / STATE_FILE)
    seen: list[tuple[int, bool]] = []
    catalog.add_revision_listener(lambda connection, revision: seen.append((revision, connection.in_transaction)))
    with catalog.transaction() as tx:
        assert tx.connection.in_transaction
        tx.bump_revision()
    assert seen == [(1, True)]

    def refuse(connection: object, revision: int) -> None:
        raise RuntimeError("no")

    catalog.add_revision_listener(refuse)
    with pytest.raises(RuntimeError), catalog.transaction() as tx:
        tx.bump_revision()
    assert catalog.revision() == 1
    catalog.close()
