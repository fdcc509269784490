"""Typed columns (``dataType``, ``nullable``) through :class:`pushstream.Mapping`: the exact
CSV bytes of every type for valid, null, missing and unconvertible values, the checks made
when a mapping is compiled, and that untyped columns keep their bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushstream import ConfigError, Mapping, MappingError, Record, _core

JSON = {"Content-Type": "application/json"}
AT_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def record(body: str | bytes, headers: dict[str, str] | None = None) -> Record:
    return Record(body.encode() if isinstance(body, str) else body, JSON if headers is None else headers, "", AT_NS)


def typed(data_type: str, **options: Any) -> Mapping:
    return Mapping([{"type": "path", "name": "v", "path": "v", "dataType": data_type, **options}])


def encode(data_type: str, value: Any, **options: Any) -> bytes:
    """The CSV row of ``{"v": value}`` in a one-column sink of ``data_type``."""
    return typed(data_type, **options).encode(record(json.dumps({"v": value})))


def failure(data_type: str, body: str, **options: Any) -> MappingError:
    with pytest.raises(MappingError) as error:
        typed(data_type, **options).encode(record(body))
    return error.value


def test_data_types_are_exported() -> None:
    assert _core.DATA_TYPES == ("string", "integer", "number", "boolean", "timestamp", "date", "json")


class TestCanonicalText:
    @pytest.mark.parametrize(
        ("data_type", "value", "row"),
        [
            ("integer", 42, b'"42"\n'),
            ("integer", "-17", b'"-17"\n'),
            ("integer", "007", b'"7"\n'),
            ("integer", 9223372036854775807, b'"9223372036854775807"\n'),
            ("integer", -9223372036854775808, b'"-9223372036854775808"\n'),
            ("number", 49.28, b'"49.28"\n'),
            ("number", "49.28", b'"49.28"\n'),
            ("number", 5, b'"5.0"\n'),
            ("number", -0.5, b'"-0.5"\n'),
            ("number", 1e300, b'"1e+300"\n'),
            ("number", "1e-7", b'"1e-7"\n'),
            ("boolean", True, b'"true"\n'),
            ("boolean", "false", b'"false"\n'),
            ("timestamp", "2024-05-01T12:00:00Z", b'"2024-05-01T12:00:00.000000Z"\n'),
            ("timestamp", "2024-05-01 14:00:00.123+02:00", b'"2024-05-01T12:00:00.123000Z"\n'),
            ("timestamp", "2024-05-01T12:00:00.1234567891", b'"2024-05-01T12:00:00.123456Z"\n'),
            ("timestamp", "2024-02-29", b'"2024-02-29T00:00:00.000000Z"\n'),
            ("timestamp", 1714564800, b'"2024-05-01T12:00:00.000000Z"\n'),
            ("timestamp", 1714564800.25, b'"2024-05-01T12:00:00.250000Z"\n'),
            ("timestamp", -1.5, b'"1969-12-31T23:59:58.500000Z"\n'),
            ("date", "2024-02-29", b'"2024-02-29"\n'),
            ("json", {"b": [1, 2.5], "a": 'q"'}, b'"{""b"":[1,2.5],""a"":""q\\""""}"\n'),
            ("json", "text", b'"""text"""\n'),
            ("json", 0, b'"0"\n'),
            ("string", 42, b'"42"\n'),
            ("string", "x", b'"""x"""\n'),
        ],
    )
    def test_valid_values(self, data_type: str, value: Any, row: bytes) -> None:
        assert encode(data_type, value) == row

    @pytest.mark.parametrize("data_type", ["integer", "number", "boolean", "timestamp", "date", "json"])
    def test_null_and_missing_are_the_empty_field(self, data_type: str) -> None:
        assert encode(data_type, None) == b'""\n'
        assert typed(data_type).encode(record("{}")) == b'""\n'
        assert typed(data_type).map(record("{}")) == [""]

    @pytest.mark.parametrize("data_type", ["integer", "number", "boolean", "timestamp", "date", "json"])
    @pytest.mark.parametrize("body", ['{"v": null}', "{}"])
    def test_not_nullable(self, data_type: str, body: str) -> None:
        error = failure(data_type, body, nullable=False)
        assert (error.kind, error.column, str(error)) == (
            "missing_value",
            "v",
            'column "v": no value, the column is not nullable',
        )

    @pytest.mark.parametrize(
        ("data_type", "body", "shown"),
        [
            ("integer", '{"v": "abc"}', '"abc"'),
            ("integer", '{"v": 1.5}', "1.5"),
            ("integer", '{"v": 1.0}', "1.0"),
            ("integer", '{"v": 1e3}', "1e3"),
            ("integer", '{"v": 9223372036854775808}', "9223372036854775808"),
            ("integer", '{"v": true}', "true"),
            ("number", '{"v": "NaN"}', '"NaN"'),
            ("number", '{"v": 1e400}', "1e400"),
            ("number", '{"v": [1]}', "[1]"),
            ("boolean", '{"v": 1}', "1"),
            ("boolean", '{"v": "TRUE"}', '"TRUE"'),
            ("timestamp", '{"v": "2023-02-29T00:00:00Z"}', '"2023-02-29T00:00:00Z"'),
            ("timestamp", '{"v": "yesterday"}', '"yesterday"'),
            ("timestamp", '{"v": "1714564800"}', '"1714564800"'),
            ("timestamp", '{"v": 1e300}', "1e300"),
            ("date", '{"v": "2023-02-29"}', '"2023-02-29"'),
            ("date", '{"v": "2024-05-01T00:00:00Z"}', '"2024-05-01T00:00:00Z"'),
            ("date", '{"v": {"y": 2024}}', '{"y":2024}'),
        ],
    )
    def test_unconvertible_values(self, data_type: str, body: str, shown: str) -> None:
        error = failure(data_type, body)
        assert (error.kind, error.column, error.reason) == (
            "invalid_value",
            "v",
            f"cannot convert {shown} to {data_type}",
        )
        assert str(error) == f'column "v": cannot convert {shown} to {data_type}'

    def test_long_values_are_cut_in_the_message(self) -> None:
        error = failure("integer", json.dumps({"v": "x" * 500}))
        assert error.reason == 'cannot convert "' + "x" * 99 + "... to integer"

    def test_a_default_value_is_converted_like_a_value(self) -> None:
        mapping = typed("integer", defaultValue="12")
        assert mapping.encode(record("{}")) == b'"12"\n'
        assert mapping.encode(record('{"v": null}')) == b'""\n'
        assert typed("json", defaultValue="none").encode(record("{}")) == b'"""none"""\n'


class TestOtherColumnTypes:
    def test_receive_time_as_timestamp_has_microseconds(self) -> None:
        mapping = Mapping(
            [{"type": "datetime", "name": "t", "dataType": "timestamp"}, {"type": "datetime", "name": "s"}]
        )
        assert mapping.encode(record("{}")) == b'"2023-11-14T22:13:20.123456Z","2023-11-14T22:13:20.123Z"\n'

    def test_headers_as_json_are_todays_bytes(self) -> None:
        untyped = Mapping([{"type": "headers", "name": "h"}])
        as_json = Mapping([{"type": "headers", "name": "h", "dataType": "json"}])
        assert (
            as_json.encode(record("{}"))
            == untyped.encode(record("{}"))
            == b'"{""Content-Type"":""application/json""}"\n'
        )

    def test_templates_convert_their_result(self) -> None:
        def template(content: str, data_type: str) -> Mapping:
            return Mapping(
                [
                    {
                        "type": "template",
                        "name": "t",
                        "dataType": data_type,
                        "template": {"language": "jsonnet", "content": content},
                    }
                ]
            )

        body = record('{"qty": 3, "price": 49.28, "at": "2024-05-01T12:00:00+02:00"}')
        assert template('Body("qty") * Body("price")', "number").encode(body) == b'"147.84"\n'
        assert template('Body("qty") * 2', "integer").encode(body) == b'"6"\n'
        assert template('Body("at")', "timestamp").encode(body) == b'"2024-05-01T10:00:00.000000Z"\n'
        assert template('{b: Body("qty"), a: null}', "json").encode(body) == b'"{""a"":null,""b"":3}"\n'
        assert template("null", "json").encode(body) == b'""\n'
        with pytest.raises(MappingError) as error:
            template('Body("price")', "integer").encode(body)
        assert (error.value.kind, str(error.value)) == ("invalid_value", 'column "t": cannot convert 49.28 to integer')

    def test_column_properties(self) -> None:
        mapping = Mapping(
            [
                {"type": "uuid", "name": "id"},
                {"type": "path", "name": "q", "path": "q", "dataType": "integer", "nullable": False},
                {"type": "path", "name": "s", "path": "s", "dataType": "string"},
                {"type": "datetime", "name": "t", "dataType": "timestamp", "nullable": True},
            ]
        )
        assert mapping.data_types == ["string", "integer", "string", "timestamp"]
        assert mapping.nullable == [True, False, True, True]


class TestBatches:
    def test_a_bad_record_leaves_no_row(self) -> None:
        mapping = Mapping(
            [
                {"type": "path", "name": "id", "path": "id", "dataType": "integer"},
                {"type": "path", "name": "qty", "path": "qty", "dataType": "number"},
            ]
        )
        batch = mapping.encode_batch([record('{"id": 1, "qty": "2.5"}'), record('{"id": 2, "qty": "abc"}')])
        assert (batch.csv, batch.rows) == (b'"1","2.5"\n', 1)
        ((index, error),) = batch.errors
        assert (index, error.kind, str(error)) == (1, "invalid_value", 'column "qty": cannot convert "abc" to number')


class TestUntypedColumnsKeepTheirBytes:
    BODY = '{"a": "x\\"y", "n": 1.50, "z": null, "o": {"k": [1, true]}}'

    def test_string_is_the_default(self) -> None:
        columns = [
            {"type": "path", "name": "a", "path": "a"},
            {"type": "path", "name": "r", "path": "a", "rawString": True},
            {"type": "path", "name": "n", "path": "n"},
            {"type": "path", "name": "z", "path": "z"},
            {"type": "path", "name": "o", "path": "o"},
            {"type": "path", "name": "d", "path": "missing", "defaultValue": "dflt"},
            {"type": "datetime", "name": "t"},
            {"type": "headers", "name": "h"},
        ]
        expected = (
            b'"""x\\""y""","x""y","1.5","null","{""k"":[1,true]}","""dflt""",'
            b'"2023-11-14T22:13:20.123Z","{""Content-Type"":""application/json""}"\n'
        )
        assert Mapping(columns).encode(record(self.BODY)) == expected
        explicit = [{**column, "dataType": "string", "nullable": False} for column in columns]
        assert Mapping(explicit).encode(record(self.BODY)) == expected


class TestCompileChecks:
    def error(self, column: dict[str, Any]) -> tuple[str | None, str]:
        with pytest.raises(ConfigError) as error:
            Mapping([{"name": "qty", **column}])
        return error.value.column, error.value.message

    def test_unknown_data_type(self) -> None:
        assert self.error({"type": "path", "path": "q", "dataType": "int"}) == (
            "qty",
            'unknown dataType "int", expected one of string, integer, number, boolean, timestamp, date, json',
        )

    @pytest.mark.parametrize(
        ("column_type", "allowed"),
        [
            ("uuid", ("string",)),
            ("id", ("string",)),
            ("ip", ("string",)),
            ("body", ("string",)),
            ("datetime", ("string", "timestamp")),
            ("headers", ("string", "json")),
            ("path", _core.DATA_TYPES),
            ("template", _core.DATA_TYPES),
        ],
    )
    def test_data_types_per_column_type(self, column_type: str, allowed: tuple[str, ...]) -> None:
        extra: dict[str, Any] = {
            "path": {"path": "a"},
            "template": {"template": {"language": "jsonnet", "content": "1"}},
        }.get(column_type, {})
        for data_type in _core.DATA_TYPES:
            column = {"type": column_type, "dataType": data_type, **extra}
            if data_type in allowed:
                assert Mapping([{"name": "qty", **column}]).data_types == [data_type]
            else:
                assert self.error(column) == (
                    "qty",
                    f'dataType "{data_type}" is not allowed for a column of type "{column_type}", '
                    f"expected {' or '.join(allowed)}",
                )

    def test_raw_string_only_for_strings(self) -> None:
        assert self.error({"type": "path", "path": "q", "dataType": "number", "rawString": True}) == (
            "qty",
            '"rawString" is not allowed for a column of dataType "number"',
        )

    def test_default_value_must_convert(self) -> None:
        assert self.error({"type": "path", "path": "q", "dataType": "date", "defaultValue": "soon"}) == (
            "qty",
            '"defaultValue": cannot convert "soon" to date',
        )
