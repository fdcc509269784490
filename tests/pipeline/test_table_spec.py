"""The coordinator's one place that turns what a storage file recorded about its
sink into a :class:`TableSpec`: the whole ``table.mapping`` object, or the plain
columns array of files written by older versions."""

from __future__ import annotations

import orjson

from pushstream.catalog.models import Sink
from pushstream.coordinator.pipeline import table_spec
from pushstream.storage.hooks import columns_json
from pushstream.targets.base import TableSpec

COLUMNS = [
    {"type": "path", "name": "id", "path": "id", "primaryKey": True},
    {"type": "path", "name": "qty", "path": "qty", "dataType": "integer", "nullable": False},
    {"type": "path", "name": "at", "path": "at", "dataType": "timestamp"},
    {"type": "body", "name": "body"},
]


def test_legacy_columns_array_is_todays_table() -> None:
    legacy = [{"type": "path", "name": "id", "path": "id", "primaryKey": True}, {"type": "body", "name": "body"}]
    assert table_spec("in.c-b.t", orjson.dumps(legacy).decode()) == TableSpec(
        "in.c-b.t",
        ("id", "body"),
        ("id",),
        column_types=("string", "string"),
        nullable=(True, True),
        merge_strategy="upsert",
    )
    assert table_spec("in.c-b.t", '[{"type": "body", "name": "b"}]').merge_strategy == "append"


def test_whole_mapping() -> None:
    mapping = {"columns": COLUMNS, "mergeStrategy": "ledger", "eventTimeColumn": "at", "systemColumns": True}
    assert table_spec("in.c-b.t", orjson.dumps(mapping).decode()) == TableSpec(
        "in.c-b.t",
        ("id", "qty", "at", "body"),
        ("id",),
        column_types=("string", "integer", "timestamp", "string"),
        nullable=(True, False, True, True),
        merge_strategy="ledger",
        event_time_column="at",
        system_columns=True,
    )
    # The default strategy follows the key.
    assert table_spec("in.c-b.t", orjson.dumps({"columns": COLUMNS}).decode()).merge_strategy == "upsert"
    assert table_spec("in.c-b.t", orjson.dumps({"columns": COLUMNS[1:]}).decode()).merge_strategy == "append"


def test_storage_files_record_the_whole_mapping() -> None:
    from pushstream.wire import By, Event, Version

    mapping = {"columns": COLUMNS, "mergeStrategy": "snapshot"}
    at = "2026-12-01T00:00:00.000Z"
    sink = Sink(
        project_id=1,
        branch_id=1,
        source_id="s",
        sink_id="k",
        name="k",
        table={"type": "keboola", "tableId": "in.c-b.t", "mapping": mapping},
        version=Version(number=1, hash="0" * 16, description="", at=at, by=By()),
        created=Event(at=at, by=By()),
    )
    recorded = columns_json(sink)
    assert orjson.loads(recorded) == mapping
    assert recorded == sink.mapping_json
    assert table_spec("in.c-b.t", recorded).merge_strategy == "snapshot"
