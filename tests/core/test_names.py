"""The names and limits the core exports, checked against what the core does and
against the type stubs (as pydantic-core checks its error types)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, get_args

import pytest

import pushstream
from pushstream import BatchError, ConfigError, Mapping, SinkSet, SliceWriter, SyncSettings, _core
from pushstream.config import ServerConfig
from pushstream.receiver import wsgi

STUB = Path(pushstream.__file__).with_name("_core.pyi")
JSON = {"Content-Type": "application/json"}


def stub_literal(name: str) -> tuple[str, ...]:
    """The strings of ``name: TypeAlias = Literal[...]`` in ``_core.pyi``."""
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            assert isinstance(node.value, ast.Subscript)
            assert isinstance(node.value.value, ast.Name) and node.value.value.id == "Literal"
            elements = node.value.slice.elts if isinstance(node.value.slice, ast.Tuple) else [node.value.slice]
            return tuple(ast.literal_eval(element) for element in elements)
    raise AssertionError(f"{name} is not in {STUB}")


def column(column_type: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "path": {"path": "a"},
        "template": {"template": {"language": "jsonnet", "content": "Ip()"}},
    }.get(column_type, {})
    return {"type": column_type, "name": "c", **extra}


class TestColumnTypes:
    def test_every_type_compiles(self) -> None:
        assert _core.COLUMN_TYPES == ("uuid", "id", "datetime", "ip", "body", "headers", "path", "template")
        for column_type in _core.COLUMN_TYPES:
            (_, compiled), *_ = Mapping([column(column_type)]).column_types
            assert compiled == ("uuid" if column_type == "id" else column_type)

    def test_the_core_names_them_when_refusing_another(self) -> None:
        with pytest.raises(ConfigError) as error:
            Mapping([{"type": "uuid7", "name": "c"}])
        expected = ", ".join(t for t in _core.COLUMN_TYPES if t != "id")
        assert str(error.value) == f'unknown column type "uuid7", expected one of {expected}'

    @pytest.mark.parametrize(
        ("column_type", "needs_headers"),
        [
            ("uuid", False),
            ("id", False),
            ("datetime", False),
            ("ip", False),
            ("body", False),
            ("headers", True),
            ("path", False),
            ("template", True),
        ],
    )
    def test_needs_headers(self, column_type: str, needs_headers: bool) -> None:
        assert Mapping([column(column_type)]).needs_headers is needs_headers
        assert Mapping([column("body"), {**column(column_type), "name": "d"}]).needs_headers is needs_headers


class TestSinkOutcomes:
    def test_the_stub_types_every_outcome_the_core_returns(self) -> None:
        # A kind added to the core without its place in `SinkOutcome` fails here.
        assert stub_literal("SinkOutcome") == _core.SINK_OUTCOMES
        # The alias exists at runtime too, as a union of one-value literals.
        assert tuple(get_args(member)[0] for member in get_args(_core.SinkOutcome)) == _core.SINK_OUTCOMES

    def test_the_receiver_answers_every_failure(self) -> None:
        failures = set(_core.SINK_OUTCOMES) - {"processed", "accepted"}
        assert set(wsgi._SINK_ERRORS) == failures

    def test_outcomes_of_real_writes_are_listed(self, tmp_path: Path) -> None:
        cache = SyncSettings(mode="cache", wait=False)
        sinks = [
            ("synced", Mapping([column("body")]), SliceWriter(tmp_path / "a.csv")),
            ("accepted", Mapping([column("body")]), SliceWriter(tmp_path / "b.csv", cache)),
            ("missing", Mapping([{"type": "path", "name": "p", "path": "nope"}]), SliceWriter(tmp_path / "c.csv")),
            ("closed", Mapping([column("body")]), SliceWriter(tmp_path / "d.csv")),
        ]
        sinks[3][2].close()
        _, outcomes = SinkSet(sinks).ingest(b'{"a": 1}', headers=JSON)
        kinds = [(sink_id, kind) for sink_id, kind, _, _ in outcomes]
        assert kinds == [
            ("synced", "processed"),
            ("accepted", "accepted"),
            ("missing", "missing_value"),
            ("closed", "writer_closed"),
        ]
        assert {kind for _, kind in kinds} <= set(_core.SINK_OUTCOMES)
        for _, _, writer in sinks:
            writer.close()


class TestBatchContentTypes:
    @pytest.mark.parametrize(
        "content_type",
        [
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
            "application/x-jsonlines",
            "text/csv",
            "Text/CSV; charset=utf-8",
            "  application/x-ndjson ;",
        ],
    )
    def test_batches(self, content_type: str, tmp_path: Path) -> None:
        assert _core.is_batch_content_type(content_type)
        # The core splits it as a batch: line 2 is neither JSON nor a CSV row like the header.
        with SliceWriter(tmp_path / "s.csv") as writer, pytest.raises(BatchError, match=r"^line 2: "):
            SinkSet([("s", Mapping([column("body")]), writer)]).ingest(
                b'{"a": 1}\n1,2\n', headers={"Content-Type": content_type}
            )

    @pytest.mark.parametrize(
        "content_type",
        [None, "", "application/json", "text/plain", "text/csvx", "x; text/csv", "application/x-www-form-urlencoded"],
    )
    def test_single_records(self, content_type: str | None) -> None:
        assert not _core.is_batch_content_type(content_type)


def test_limits_are_the_cores() -> None:
    assert (_core.DEFAULT_MAX_RECORD_BYTES, _core.MAX_RECORD_BYTES_LIMIT) == (1 << 20, 4 << 20)
    assert (_core.DEFAULT_MAX_BATCH_BYTES, _core.DEFAULT_MAX_ROW_BYTES) == (16 << 20, 8 << 20)
    config = ServerConfig()
    assert (config.max_record_size, config.max_batch_size) == (1 << 20, 16 << 20)
    options = wsgi.ReceiverOptions(project_id=1)
    assert (options.max_record_bytes, options.max_batch_bytes) == (1 << 20, 16 << 20)
    ServerConfig(max_record_size=_core.MAX_RECORD_BYTES_LIMIT, max_batch_size=_core.MAX_RECORD_BYTES_LIMIT)
    with pytest.raises(pushstream.ConfigError, match="at most 4MB"):
        ServerConfig(max_record_size=_core.MAX_RECORD_BYTES_LIMIT + 1, max_batch_size=16 << 20)


def test_the_api_declares_the_cores_column_types() -> None:
    # The Stream API's enum is a Literal for msgspec and the OpenAPI document; it
    # must list exactly the column types the core compiles, in the core's order.
    from pushstream import wire

    assert get_args(wire.ColumnType) == tuple(_core.COLUMN_TYPES)
    assert tuple(_core.COLUMN_TYPES) == wire.COLUMN_TYPES
