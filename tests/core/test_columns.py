"""Exact values of every column type, path edge cases, body formats and CSV quoting."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from pushstream import ConfigError, Mapping, MappingError, PushstreamError, Record, parse_csv

JSON = {"Content-Type": "application/json"}
AT_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def one(column: dict[str, Any], body: bytes | str, headers: dict[str, str] | None = None, ip: str = "10.0.0.1") -> str:
    body = body.encode() if isinstance(body, str) else body
    record = Record(body, JSON if headers is None else headers, ip, AT_NS)
    return Mapping([{"name": "c", **column}]).map(record)[0]


def path(p: str, body: str, **options: Any) -> str:
    return one({"type": "path", "path": p, **options}, body)


class TestStaticColumns:
    def test_datetime_is_receive_time_with_milliseconds(self) -> None:
        assert one({"type": "datetime"}, "{}") == "2023-11-14T22:13:20.123Z"
        record = Record(b"", {}, "", 0)
        assert Mapping([{"type": "datetime", "name": "d"}]).map(record) == ["1970-01-01T00:00:00.000Z"]

    def test_ip_body_headers(self) -> None:
        assert one({"type": "ip"}, "{}", ip="2001:db8::1") == "2001:db8::1"
        raw = '{ "a" : 1 ,\n "b": "x" }'
        assert one({"type": "body"}, raw) == raw
        headers = {"content-type": "application/json", "x-b": "2", "X-A": 'q"', "user-agent": "curl/8"}
        assert one({"type": "headers"}, "{}", headers) == (
            '{"Content-Type":"application/json","User-Agent":"curl/8","X-A":"q\\"","X-B":"2"}'
        )

    def test_repeated_headers_are_joined(self) -> None:
        record = Record(b"{}", [("Accept", "a"), ("accept", "b")], "", AT_NS)
        assert record.headers == [("Accept", "a, b")]

    @pytest.mark.parametrize("kind", ["uuid", "id"])
    def test_uuid_is_v7_with_receive_time(self, kind: str) -> None:
        values = {one({"type": kind}, "{}") for _ in range(50)}
        assert len(values) == 50
        for value in values:
            parsed = uuid.UUID(value)
            assert parsed.version == 7
            assert value == str(parsed)
            assert parsed.int >> 80 == AT_NS // 1_000_000

    def test_body_stored_for_any_content_type(self) -> None:
        assert one({"type": "body"}, b"plain \xc3\xa9 text", {"Content-Type": "text/plain"}) == "plain é text"


class TestPathColumns:
    BODY = json.dumps(
        {
            "s": 'say "hi"\n',
            "n": {"int": 42, "neg": -7, "float": 1.5, "big": 12345678901234567890, "t": True, "f": False, "z": None},
            "arr": [{"k": "v0"}, {"k": "v1", "deep": [[1, 2], [3, {"x": "y"}]]}],
            "user-id": "u-1",
            "_under": 1,
            "2024": "year",
            "název": "čeština",
            "emoji": "🎉",
            "obj": {"b": 1, "a": [1, "2", None]},
        },
        ensure_ascii=False,
    )

    @pytest.mark.parametrize(
        ("p", "expected"),
        [
            ("s", '"say \\"hi\\"\\n"'),
            ("n.int", "42"),
            ("n.neg", "-7"),
            ("n.float", "1.5"),
            ("n.big", "12345678901234567890"),
            ("n.t", "true"),
            ("n.f", "false"),
            ("n.z", "null"),
            ("arr[0]", '{"k":"v0"}'),
            ("arr[1].k", '"v1"'),
            ("arr[1].deep[1][1].x", '"y"'),
            ("arr[1].deep[0]", "[1,2]"),
            ("user-id", '"u-1"'),
            ("_under", "1"),
            ("2024", '"year"'),
            ("název", '"čeština"'),
            ("emoji", '"🎉"'),
            ("obj", '{"b":1,"a":[1,"2",null]}'),
        ],
    )
    def test_values_are_json_encoded(self, p: str, expected: str) -> None:
        assert path(p, self.BODY) == expected

    def test_raw_string_strips_quotes_of_strings_only(self) -> None:
        assert path("s", self.BODY, rawString=True) == 'say "hi"\n'
        assert path("n.int", self.BODY, rawString=True) == "42"
        assert path("obj", self.BODY, rawString=True) == '{"b":1,"a":[1,"2",null]}'
        assert path("n.z", self.BODY, rawString=True) == "null"

    def test_default_value(self) -> None:
        assert path("missing", self.BODY, defaultValue="x") == '"x"'
        assert path("missing", self.BODY, defaultValue="x", rawString=True) == "x"
        assert path("arr[5].k", self.BODY, defaultValue="") == '""'
        # A present null is not missing.
        assert path("n.z", self.BODY, defaultValue="x") == "null"

    @pytest.mark.parametrize("p", ["missing", "arr[2]", "s.x", "arr.k", "n.int[0]", "arr[0].k.z"])
    def test_missing_path_is_a_mapping_error(self, p: str) -> None:
        with pytest.raises(MappingError) as info:
            path(p, self.BODY)
        assert info.value.kind == "missing_value"
        assert info.value.column == "c"
        assert info.value.reason == f'path "{p}" not found in the body'
        assert str(info.value) == f'column "c": path "{p}" not found in the body'
        assert isinstance(info.value, PushstreamError)

    @pytest.mark.parametrize(
        ("literal", "expected"),
        [
            ("1e400", "1e400"),
            ("-1E+400", "-1E+400"),
            ("1e-400", "0.0"),
            ("-0", "0"),
            ("-0.0", "-0.0"),
            ("1.0", "1.0"),
            ("1E2", "100.0"),
            ("0.1", "0.1"),
            ("1e22", "1e+22"),
            ("1.5e-7", "1.5e-7"),
            ("18446744073709551615", "18446744073709551615"),
            # Integers beyond 64 bits keep their digits (a double would lose them).
            ("18446744073709551616", "18446744073709551616"),
            ("-9223372036854775809", "-9223372036854775809"),
            ("123456789012345678901234567890", "123456789012345678901234567890"),
        ],
    )
    def test_numbers_in_shortest_form(self, literal: str, expected: str) -> None:
        assert path("v", f'{{"v": {literal}}}') == expected

    def test_escapes_are_decoded_and_reencoded(self) -> None:
        assert path("v", r'{"v": "\u00e9\/\t\u0001\ud83c\udf89"}') == '"é/\\t\\u0001🎉"'
        assert path("v", r'{"v": "\u00e9\/"}', rawString=True) == "é/"

    def test_duplicate_keys_last_wins(self) -> None:
        assert path("a", '{"a": 1, "b": 2, "a": 3}') == "3"
        assert path("o", '{"o": {"a": 1, "b": 2, "a": 3}}') == '{"a":3,"b":2}'

    def test_top_level_array(self) -> None:
        assert path("[1].id", '[{"id": 1}, {"id": 2}]') == "2"


class TestBodyFormats:
    @pytest.mark.parametrize(
        "content_type",
        ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json"],
    )
    def test_json_content_types(self, content_type: str) -> None:
        assert one({"type": "path", "path": "a"}, '{"a": 1}', {"Content-Type": content_type}) == "1"

    def test_form_bodies(self) -> None:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        body = "a=1&b=x+y&k[]=p&k[]=q&u[name]=Jan&e=%C3%A9"
        assert one({"type": "path", "path": "a"}, body, form) == '"1"'
        assert one({"type": "path", "path": "b", "rawString": True}, body, form) == "x y"
        assert one({"type": "path", "path": "k"}, body, form) == '["p","q"]'
        assert one({"type": "path", "path": "u.name"}, body, form) == '"Jan"'
        assert one({"type": "path", "path": "e"}, body, form) == '"é"'

    @pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
    def test_unsupported_content_type(self, content_type: str | None) -> None:
        headers = {} if content_type is None else {"Content-Type": content_type}
        with pytest.raises(MappingError) as info:
            one({"type": "path", "path": "a"}, '{"a": 1}', headers)
        assert info.value.kind == "unsupported_content_type"
        assert info.value.column is None
        assert f'unsupported content type "{content_type or ""}"' in info.value.reason

    @pytest.mark.parametrize(
        "body", ['{"a": 1', '{"a": 1,}', "", "nul", '{"a": "\\ud800"}', '{"a": "x\ny"}', "[1] x", b'{"a": "\xff"}']
    )
    def test_malformed_json(self, body: str | bytes) -> None:
        with pytest.raises(MappingError) as info:
            one({"type": "path", "path": "a"}, body)
        assert info.value.kind == "malformed_body"
        assert info.value.reason.startswith("malformed JSON body: ")

    def test_body_is_parsed_lazily(self) -> None:
        # A mapping without path columns does not care whether the JSON is valid.
        assert one({"type": "body"}, "{not json") == "{not json"


class TestCsv:
    def test_every_field_quoted_and_quotes_doubled(self) -> None:
        mapping = Mapping(
            [{"type": "body", "name": "b"}, {"type": "ip", "name": "ip"}, {"type": "path", "name": "p", "path": "a"}]
        )
        record = Record(b'{"a": "x,\\"y\\"\\n"}', JSON, "1.2.3.4", AT_NS)
        row = mapping.encode(record)
        assert row == b'"{""a"": ""x,\\""y\\""\\n""}","1.2.3.4","""x,\\""y\\""\\n"""\n'
        assert parse_csv(row) == [['{"a": "x,\\"y\\"\\n"}', "1.2.3.4", '"x,\\"y\\"\\n"']]

    def test_newlines_inside_fields(self) -> None:
        mapping = Mapping([{"type": "body", "name": "b"}])
        row = mapping.encode(Record(b"line1\nline2\r\n", {}, "", AT_NS))
        assert row == b'"line1\nline2\r\n"\n'

    def test_batch_reports_failures_and_keeps_the_rest(self) -> None:
        mapping = Mapping([{"type": "path", "name": "p", "path": "a", "rawString": True}])
        records = [Record(b, JSON, "", AT_NS) for b in [b'{"a": "1"}', b'{"b": 2}', b"{bad", b'{"a": 3}']]
        batch = mapping.encode_batch(records)
        assert batch.rows == 2
        assert batch.csv == b'"1"\n"3"\n'
        assert [(i, e.kind) for i, e in batch.errors] == [(1, "missing_value"), (2, "malformed_body")]


class TestDefinitions:
    def test_introspection(self) -> None:
        mapping = Mapping(
            json.dumps(
                [
                    {"type": "id", "name": "id", "primaryKey": True},
                    {"type": "path", "name": "p", "path": "a", "primaryKey": True},
                    {"type": "body", "name": "b"},
                ]
            )
        )
        assert mapping.column_names == ["id", "p", "b"]
        assert mapping.column_types == [("id", "uuid"), ("p", "path"), ("b", "body")]
        assert mapping.primary_key == ["id", "p"]
        assert mapping.needs_parsed_body
        assert not Mapping([{"type": "body", "name": "b"}]).needs_parsed_body

    @pytest.mark.parametrize(
        ("columns", "message", "column"),
        [
            ([], "a mapping needs at least one column", None),
            ([{"type": "nope", "name": "a"}], 'unknown column type "nope"', "a"),
            ([{"type": "body", "name": "a"}, {"type": "ip", "name": "a"}], 'duplicate column name "a"', "a"),
            ([{"type": "path", "name": "a"}], 'a "path" column needs "path"', "a"),
            ([{"type": "path", "name": "a", "path": "x[y]"}], 'path "x[y]": index "[y]"', "a"),
            ([{"type": "path", "name": "a", "path": ""}], "path must not be empty", "a"),
            ([{"type": "ip", "name": "a", "rawString": True}], '"rawString" is not allowed', "a"),
            ([{"type": "body", "name": ""}], "column name must not be empty", None),
            ([{"type": "body", "name": f"c{i}"} for i in range(101)], "at most 100 columns", None),
            ([{"name": "a"}], "missing field `type`", None),
        ],
    )
    def test_invalid_definitions(self, columns: list[dict[str, Any]], message: str, column: str | None) -> None:
        with pytest.raises(ConfigError) as info:
            Mapping(columns)
        assert message in str(info.value)
        assert info.value.column == column
        assert isinstance(info.value, ValueError)


def test_record_properties() -> None:
    record = Record(b"{}", {"content-type": "application/json"}, "::1", AT_NS)
    assert record.body == b"{}"
    assert record.ip == "::1"
    assert record.received_at_ns == AT_NS
    assert record.datetime == "2023-11-14T22:13:20.123Z"
    assert record.content_type == "application/json"
    assert re.match(r"Record\(body=<2 bytes>", repr(record))
