"""Template columns through the Python API: every global with and without
defaults, output encoding, error messages, limits and invalid templates."""

from __future__ import annotations

import time

import pytest
from template_reference import Event, column, core

from pushstream import ConfigError, Mapping, MappingError, Record, parse_csv, validate_template

EVENT = Event(
    {"user": {"name": "Jan Novák", "id": 7}, "items": [{"q": 1}, {"q": 2.5}], "n": None, "s": 'a"b'},
    headers={"x-foo": "bar", "X-Multi": "1"},
    ip="198.51.100.4",
    received_at_ns=1_700_000_000_123_456_789,
)


def one(template: str, event: Event = EVENT, raw_string: bool = False) -> str:
    return core(template, event, raw_string)


def error(template: str, event: Event = EVENT) -> MappingError:
    with pytest.raises(MappingError) as info:
        one(template, event)
    return info.value


class TestGlobals:
    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ("Ip()", '"198.51.100.4"'),
            ("Body()", '{"items":[{"q":1},{"q":2.5}],"n":null,"s":"a\\"b","user":{"id":7,"name":"Jan Novák"}}'),
            ('Body("user.name")', '"Jan Novák"'),
            ('Body("items[1].q")', "2.5"),
            ('Body("n")', "null"),
            ('Body("n", "default")', "null"),
            ('Body("missing", "default")', '"default"'),
            ('Body("user.missing", default=[1])', "[1]"),
            ('Body("user.id", error "not evaluated")', "7"),
            (
                "BodyStr()",
                '"{\\"user\\": {\\"name\\": \\"Jan Novák\\", \\"id\\": 7}, \\"items\\": [{\\"q\\": 1}, '
                '{\\"q\\": 2.5}], \\"n\\": null, \\"s\\": \\"a\\\\\\"b\\"}"',
            ),
            ("Header()", '{"Content-Type":"application/json","X-Foo":"bar","X-Multi":"1"}'),
            ('Header("X-FOO")', '"bar"'),
            ('Header("content-type")', '"application/json"'),
            ('Header("x-missing", "none")', '"none"'),
            ('Header("x-foo", "none")', '"bar"'),
            ("HeaderStr()", '"Content-Type: application/json\\nX-Foo: bar\\nX-Multi: 1\\n"'),
            ("Now()", '"2023-11-14T22:13:20.123Z"'),
            ('Now("%Y-%m-%d %H:%M:%S.%f")', '"2023-11-14 22:13:20.123"'),
            ('Now("%s %j %A %%")', '"1700000000 318 Tuesday %"'),
        ],
    )
    def test_values(self, template: str, expected: str) -> None:
        assert one(template) == expected

    def test_repeated_headers_are_joined(self) -> None:
        event = Event({}, headers={"x-a": "1"})
        record = Record(event.raw, [("x-a", "1"), ("X-A", "2"), ("content-type", "application/json")])
        mapping = Mapping([column('Header("x-a")')])
        assert mapping.map(record) == ['"1, 2"']

    def test_form_bodies(self) -> None:
        event = Event(None, headers={"Content-Type": "application/x-www-form-urlencoded"}, raw=b"a=1&k[]=x&k[]=y")
        assert one("Body()", event) == '{"a":"1","k":["x","y"]}'
        assert one('Body("k[1]")', event) == '"y"'


#: 2000-01-01T01:00:00.000Z, a receive time without milliseconds.
WHOLE_SECOND_NS = 946_688_400_000_000_000
UNSUPPORTED = (
    'cannot parse request body:\n- unsupported content type "", '
    "supported types: application/json and application/x-www-form-urlencoded"
)


class TestKeboolaSemantics:
    """The cases of Keboola's own template tests, on records with exactly these headers."""

    @staticmethod
    def evaluate(template: str, headers: dict[str, str], body: bytes = b"") -> str:
        return Mapping([column(template)]).map(Record(body, headers, "1.2.3.4", WHOLE_SECOND_NS))[0]

    @pytest.mark.parametrize(
        ("template", "headers", "body", "expected"),
        [
            (
                "HeaderStr()",
                {"X-Header-1": "value1", "x-header-2": "value2"},
                b"",
                '"X-Header-1: value1\\nX-Header-2: value2\\n"',
            ),
            ("HeaderStr()", {}, b"", '""'),
            ("Header()", {}, b"", "{}"),
            ("BodyStr()", {}, b"", '""'),
            ("Body()", {"Content-Type": "application/x-www-form-urlencoded"}, b"", "{}"),
            ('Body("a")', {"Content-Type": "application/vnd.api+json"}, b'{"a": 1}', "1"),
            ('Body("a")', {"Content-Type": "application/problem+json; charset=utf-8"}, b'{"a": 2}', "2"),
            ("Now()", {}, b"", '"2000-01-01T01:00:00.000Z"'),
            ("Now('%Y-%m-%d')", {}, b"", '"2000-01-01"'),
        ],
    )
    def test_values(self, template: str, headers: dict[str, str], body: bytes, expected: str) -> None:
        assert self.evaluate(template, headers, body) == expected

    @pytest.mark.parametrize(
        ("template", "headers", "body", "kind", "reason"),
        [
            ("Body()", {}, b'{"a": 1}', "unsupported_content_type", UNSUPPORTED),
            (
                'Body("foo1.foo2")',
                {"Content-Type": "application/json"},
                b'{"foo1": {}}',
                "missing_value",
                'path "foo1.foo2" not found in the body',
            ),
            ('Header("x-header-3")', {"X-Header-1": "value1"}, b"", "missing_value", 'header "X-Header-3" not found'),
            ("local f(x) = f(x); f(1)", {}, b"", "template", "max stack frames exceeded."),
        ],
    )
    def test_errors(self, template: str, headers: dict[str, str], body: bytes, kind: str, reason: str) -> None:
        with pytest.raises(MappingError) as info:
            self.evaluate(template, headers, body)
        assert (info.value.kind, info.value.reason) == (kind, reason)


class TestOutput:
    def test_compact_json_with_sorted_fields(self) -> None:
        assert one("{b: 1, a: {d: [1, 2], c: null}, h:: 0}") == '{"a":{"c":null,"d":[1,2]},"b":1}'

    def test_numbers(self) -> None:
        assert one("[1, -2, 1e20, 0.1, 1/3, 2.5e-8, std.pow(2, 64)]") == (
            "[1,-2,100000000000000000000,0.1,0.3333333333333333,2.5e-8,18446744073709551616]"
        )

    def test_raw_string(self) -> None:
        assert one('Body("s")', raw_string=True) == 'a"b'
        assert one('Body("s")') == '"a\\"b"'
        assert one('{a: "x"}', raw_string=True) == '{"a":"x"}'
        assert one("42", raw_string=True) == "42"

    def test_csv_rows(self) -> None:
        mapping = Mapping([{"type": "ip", "name": "ip"}, column('{"user": Body("user.name"), "s": Body("s")}')])
        row = mapping.encode(EVENT.record())
        assert row == b'"198.51.100.4","{""s"":""a\\""b"",""user"":""Jan Nov\xc3\xa1k""}"\n'
        assert parse_csv(row) == [["198.51.100.4", '{"s":"a\\"b","user":"Jan Novák"}']]


class TestErrors:
    def test_missing_path(self) -> None:
        e = error('{a: Body("a.b")}')
        assert (e.kind, e.column, e.reason) == ("missing_value", "t", 'path "a.b" not found in the body')
        assert str(e) == 'column "t": path "a.b" not found in the body'

    def test_missing_header(self) -> None:
        e = error('Header("x-bar")')
        assert (e.kind, e.reason) == ("missing_value", 'header "X-Bar" not found')

    def test_runtime_errors_have_positions(self) -> None:
        e = error("local x = 1;\n{a: x + error 'boom'}")
        assert (e.kind, e.reason) == ("template", "runtime error: boom (line 2, column 9)")
        assert error("Body().user.nope").reason.startswith("no such field: nope")
        assert error("std.length").reason == "the result contains a function, which has no JSON form"

    def test_body_errors(self) -> None:
        assert error('Body("a")', Event(None, raw=b"{bad")).kind == "malformed_body"
        text = Event(None, headers={"Content-Type": "text/plain"}, raw=b"hello")
        assert error('Body("a")', text).kind == "unsupported_content_type"
        assert one("BodyStr()", text) == '"hello"'

    def test_failed_rows_leave_the_batch_intact(self) -> None:
        mapping = Mapping([column('Body("id")')])
        records = [Event({"id": 1}).record(), Event({}).record(), Event({"id": 3}).record()]
        batch = mapping.encode_batch(records)
        assert (batch.rows, batch.csv) == (2, b'"1"\n"3"\n')
        [(index, failure)] = batch.errors
        assert (index, failure.kind, failure.reason) == (1, "missing_value", 'path "id" not found in the body')


class TestLimits:
    def test_infinite_recursion(self) -> None:
        e = error("local f(x) = f(x + 1); f(0)")
        assert e.reason == "max stack frames exceeded."

    def test_deep_recursion_within_the_limit(self) -> None:
        assert one("local f(n) = if n == 0 then 0 else 1 + f(n - 1); f(450)") == "450"

    def test_time_budget(self) -> None:
        started = time.monotonic()
        e = error("std.length([a * b for a in std.range(1, 100000) for b in std.range(1, 100000)])")
        assert (e.kind, e.reason) == ("template", "template evaluation exceeded its time budget of 250 ms")
        assert time.monotonic() - started < 2
        assert one("1 + 1") == "2"

    def test_time_budget_of_recursion_heavy_templates(self) -> None:
        started = time.monotonic()
        e = error("local fib(n) = if n < 2 then n else fib(n - 1) + fib(n - 2); fib(40)")
        assert e.reason == "template evaluation exceeded its time budget of 250 ms"
        assert time.monotonic() - started < 2

    def test_size_caps(self) -> None:
        assert error("std.range(0, 1e7)").reason.startswith("std.range: a result of 10000001 elements exceeds")
        assert error("std.makeArray(1e7, function(i) i)").reason.startswith("std.makeArray: a result of 10000000")
        assert error("std.repeat('x', 1e9)").reason.startswith("std.repeat: a string of 1000000000 bytes")
        assert error("local o = {a: o}; o").reason == "the result is nested more than 500 levels deep"

    def test_large_products_do_not_reserve_memory_up_front(self) -> None:
        body = Event({"xs": list(range(20_000)), "ys": list(range(20_000))})
        e = error('std.length([x + y for x in Body("xs") for y in Body("ys")])', body)
        assert e.reason == "template evaluation exceeded its time budget of 250 ms"


class TestInvalidTemplates:
    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("{a: }", "syntax error at line 1, column 5: unexpected '}'"),
            ('{\n  a: "x" +\n}', "syntax error at line 3, column 1: unexpected '}'"),
            ("", "template content must have 1 to 4096 characters, found 0"),
            ("{a: import 'x.jsonnet'}", "error at line 1, column 5: imports are disabled in templates"),
            ("1" * 4097, "template content must have 1 to 4096 characters, found 4097"),
        ],
    )
    def test_messages(self, content: str, message: str) -> None:
        assert validate_template(content) == message
        with pytest.raises(ConfigError) as info:
            Mapping([column(content)])
        assert (info.value.message, info.value.column) == (message, "t")

    def test_unknown_variables(self) -> None:
        message = validate_template("{\n  a: Bodyy()\n}")
        assert message is not None
        assert message.startswith("error at line 2, column 6: ") and "Bodyy" in message

    def test_valid(self) -> None:
        assert validate_template('{"user": Body("user.name"), "n": std.length(Body("items"))}') is None
        assert validate_template("ž" * 4096) is not None  # 4096 characters, but not Jsonnet
        assert validate_template('"' + "ž" * 4094 + '"') is None

    def test_language(self) -> None:
        definition = column("1")
        definition["template"]["language"] = "go-template"
        with pytest.raises(ConfigError, match='unsupported template language "go-template"'):
            Mapping([definition])
