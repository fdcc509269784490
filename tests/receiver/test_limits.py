"""Hostile input against a real `pushstream serve`: deep bodies, runaway templates and
oversize records get a precise 4xx, the server stays up, and nothing that could not be
imported is acknowledged."""

from __future__ import annotations

from typing import Any

import pytest

from serverprocess import ServerProcess
from streamclient import BASE, Stream, local_rows

#: The nesting limit of bodies (``pushstream_core::limits::MAX_NESTING_DEPTH``).
MAX_NESTING_DEPTH = 1000
NESTING_MESSAGE = f"nested deeper than {MAX_NESTING_DEPTH} levels"
USER = [{"type": "path", "name": "user", "path": "user"}]
NDJSON = {"Content-Type": "application/x-ndjson"}


def template_column(content: str, name: str = "t") -> dict[str, Any]:
    return {"type": "template", "name": name, "template": {"language": "jsonnet", "content": content}}


@pytest.fixture
def stream(server: ServerProcess) -> Stream:
    return Stream(server).create()


def assert_alive(stream: Stream) -> None:
    """The server still takes events (a crashed worker would not answer at all)."""
    response = stream.post('{"user": "alive"}')
    assert response.status_code == 200, response.text


def nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [20_000, 100_000])
def test_deeply_nested_json_is_a_bad_request(server: ServerProcess, stream: Stream, depth: int) -> None:
    stream.sink("user", USER)
    for _ in range(2):  # twice: a crash loop would take the whole server down
        response = stream.post(nested_json(depth), verbose=True)
        assert response.status_code == 400, response.text
        (sink,) = response.json()["sources"][0]["sinks"]
        assert sink["error"] == "stream.in.badRequest"
        assert NESTING_MESSAGE in sink["message"]
    assert_alive(stream)
    assert local_rows(server.data_dir, "user") == [['"alive"']]


def test_nesting_up_to_the_limit_is_taken(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    body = '{"user":' + "[" * (MAX_NESTING_DEPTH - 1) + "]" * (MAX_NESTING_DEPTH - 1) + "}"
    assert stream.post(body).status_code == 200
    assert local_rows(server.data_dir, "user") == [["[" * (MAX_NESTING_DEPTH - 1) + "]" * (MAX_NESTING_DEPTH - 1)]]


def test_deep_ndjson_line_and_form_key_are_bad_requests(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    response = stream.post('{"user": 1}\n' + nested_json(50_000) + "\n", NDJSON)
    assert response.status_code == 400
    assert response.json()["error"] == "stream.in.badRequest"
    assert response.json()["message"].startswith("line 2: ")
    assert NESTING_MESSAGE in response.json()["message"]

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = stream.post("user" + "[a]" * 100_000 + "=1", form, verbose=True)
    assert response.status_code == 400
    (sink,) = response.json()["sources"][0]["sinks"]
    assert f"nested deeper than {MAX_NESTING_DEPTH} levels" in sink["message"]
    assert_alive(stream)
    assert local_rows(server.data_dir, "user") == [['"alive"']]


FOLDL = 'std.length(std.foldl(function(a, b) a + "xxxxxxxx", std.range(1, 1000000), ""))'


def test_a_template_building_a_deep_string_does_not_crash_the_server(server: ServerProcess, stream: Stream) -> None:
    # The function is called by std.foldl natively, a million times: only the check
    # point at the start of its body keeps the time budget, and the string it builds
    # is a tree a million levels deep, taken apart on the evaluation's own stack.
    stream.sink("deep", [template_column(FOLDL)])
    for _ in range(2):
        response = stream.post("{}", verbose=True)
        assert response.status_code == 400, response.text
        (sink,) = response.json()["sources"][0]["sinks"]
        assert sink["message"] == 'column "t": template evaluation exceeded its time budget of 250 ms'
    # The test endpoint of the API evaluates the same template.
    response = server.request("POST", f"{BASE}/{stream.source_id}/test", json={})
    assert response.status_code == 422, response.text
    assert "template evaluation exceeded its time budget of 250 ms" in response.json()["message"]
    assert server.request("GET", f"{BASE}/{stream.source_id}").status_code == 200
    assert local_rows(server.data_dir, "deep") == []


@pytest.mark.parametrize(
    "content",
    [
        'local s = std.repeat("x", 1000000); std.length([s[i] for i in std.range(0, 999999)])',
        'std.length([std.length(std.repeat("ab", 100000) + i) for i in std.range(0, 999999)])',
        "std.foldl(function(a, b) a + 1, std.range(1, 1000000), 0)",
        "local add(a, b) = a + b; std.foldl(add, std.range(1, 1000000), 0)",
        "std.length(std.manifestJsonEx(std.makeArray(1000000, function(i) {a: [i, i]}), '  '))",
    ],
)
def test_loops_of_a_template_keep_its_time_budget(server: ServerProcess, stream: Stream, content: str) -> None:
    stream.sink("slow", [template_column(content)])
    response = stream.post("{}", verbose=True)
    assert response.status_code == 400, response.text
    (sink,) = response.json()["sources"][0]["sinks"]
    assert sink["message"] == 'column "t": template evaluation exceeded its time budget of 250 ms'
    assert local_rows(server.data_dir, "slow") == []


def doubled(seed: str, times: int) -> str:
    """A value concatenated with itself `times` times: cheap to build, as the engine
    concatenates lazily, but 2^times elements long."""
    return f"std.foldl(function(a, b) a + a, std.range(1, {times}), {seed})"


CHAINED = "std.foldl(function(a, b) a + [b], std.range(1, 100000), [])"


@pytest.mark.parametrize(
    ("content", "limit"),
    [
        ("std.join(',', " + doubled("['x']", 30) + ")", "exceeds the limit of 1000000"),
        ("std.length(std.join('', " + doubled("['xxxxxxxx']", 26) + "))", "exceeds the limit of 1000000"),
        (f"std.length(std.sort({doubled('[3, 1, 2]', 29)}))", "exceeds the limit of 1000000"),
        (f"std.length(std.map(std.length, {doubled('[1]', 30)}))", "exceeds the limit of 1000000"),
        (f"std.length(std.manifestJson({doubled('[1]', 30)}))", "exceeds the limit of 1000000"),
        (f"std.length({doubled('[1]', 30)} + std.repeat([1], 1000000))", "exceeds the limit of 1000000"),
        ("std.length(" + doubled("'xxxxxxxx'", 30) + ")", "exceeds the limit of 16777216"),
        ('std.length(std.join(",", std.makeArray(1000000, std.toString)) + std.repeat("x", 16777216))', None),
        (f"std.length(std.join(',', std.map(std.toString, {CHAINED})))", None),
        (f"std.sum({CHAINED})", None),
    ],
)
def test_native_loops_over_huge_lazy_values_keep_the_budget(
    server: ServerProcess, stream: Stream, content: str, limit: str | None
) -> None:
    # Each of these loops inside a native std function (or builds its input
    # without a Jsonnet call per element): they stop at a size limit where the
    # value is built, or at the engine's own check points.
    stream.sink("lazy", [template_column(content)])
    response = stream.post("{}", verbose=True)
    assert response.status_code == 400, response.text
    (sink,) = response.json()["sources"][0]["sinks"]
    message = sink["message"]
    if limit is None:
        assert message == 'column "t": template evaluation exceeded its time budget of 250 ms'
    else:
        assert limit in message, message
    assert local_rows(server.data_dir, "lazy") == []


def test_an_ndjson_line_over_the_record_limit_rejects_the_batch(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    big = '{"user": "' + "x" * (2 << 20) + '"}'
    response = stream.post('{"user": 1}\n\n' + big + '\n{"user": 2}\n', NDJSON)
    assert response.status_code == 413, response.text
    assert response.json() == {
        "statusCode": 413,
        "error": "stream.in.bodyTooLarge",
        "message": f"line 3: the record has {len(big)} bytes, more than the record limit of 1MB",
    }
    assert local_rows(server.data_dir, "user") == []
    # A line at the limit is taken.
    at_limit = '{"user": "' + "x" * ((1 << 20) - 12) + '"}'
    assert len(at_limit) == 1 << 20
    assert stream.post(at_limit + "\n", NDJSON).status_code == 200


def test_a_csv_row_over_the_record_limit_rejects_the_batch(server: ServerProcess, stream: Stream) -> None:
    stream.sink("user", USER)
    body = "user\nsmall\n" + "y" * (1 << 20) + "\n"
    response = stream.post(body, {"Content-Type": "text/csv"})
    assert response.status_code == 413, response.text
    message = response.json()["message"]
    assert message.startswith("line 3: the record has ") and message.endswith("the record limit of 1MB")
    assert local_rows(server.data_dir, "user") == []


def test_the_record_limit_follows_max_record_size(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--max-record-size", "2MB"))
    stream = Stream(server).create()
    stream.sink("user", USER)
    line = '{"user": "' + "x" * (3 << 19) + '"}'
    assert stream.post(line + "\n" + line + "\n", NDJSON).status_code == 200
    response = stream.post('{"user": "' + "x" * (5 << 19) + '"}\n', NDJSON)
    assert response.status_code == 413
    assert response.json()["message"].endswith("more than the record limit of 2MB")


def test_a_mapped_row_over_the_row_limit_is_not_acknowledged(server: ServerProcess, stream: Stream) -> None:
    stream.sink("big", [template_column('std.repeat("x", 9 * 1024 * 1024)')])
    stream.sink("user", USER)
    response = stream.post('{"user": 1}', verbose=True)
    assert response.status_code == 413, response.text
    sinks = {s["sinkId"]: s for s in response.json()["sources"][0]["sinks"]}
    assert sinks["big"]["error"] == "stream.in.bodyTooLarge"
    assert sinks["big"]["message"] == f"the row has {9 * 1024 * 1024 + 7} bytes, more than the row limit of 8MB"
    assert sinks["user"]["statusCode"] == 200
    assert local_rows(server.data_dir, "big") == []
    # In a batch the sink takes all records or none.
    response = stream.post('{"user": 2}\n{"user": 3}\n', NDJSON, verbose=True)
    sinks = {s["sinkId"]: s for s in response.json()["sources"][0]["sinks"]}
    assert sinks["big"]["message"].startswith("record 1: the row has")
    assert local_rows(server.data_dir, "big") == []


def test_integers_beyond_64_bits_keep_their_digits(server: ServerProcess, stream: Stream) -> None:
    stream.sink("n", [{"type": "path", "name": "n", "path": "n"}, {"type": "path", "name": "o", "path": "o"}])
    big = str(2**70)
    assert stream.post(f'{{"n": {big}, "o": {{"m": -{big}1, "f": 1.5}}}}').status_code == 200
    assert local_rows(server.data_dir, "n") == [[big, f'{{"m":-{big}1,"f":1.5}}']]
