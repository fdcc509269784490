"""``pushstream ingest`` against a real server: formats, compression, stdin, bad
input (nothing sent), server errors, batching and retries."""

from __future__ import annotations

import gzip
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import zstandard
from clitest import FakeServer, Stream, as_rows, env_for, ndjson, people, run_cli, run_process

from serverprocess import ServerProcess, free_port


def test_ndjson_file(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    records = people(1000)
    path = tmp_path / "people.ndjson"
    path.write_bytes(ndjson(records))
    result = run_cli(cli_server, "ingest", stream.source, str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f'ingested 1,000 records (32.8 kB) from 1 file into source "{stream.source}" in ')
    stream.flush()
    assert sorted(stream.rows(), key=lambda r: int(r[0])) == as_rows(records)


def test_lines_pass_through_unchanged(cli_server: ServerProcess, tmp_path: Path) -> None:
    # A body column gets each line as written: NDJSON is not re-encoded.
    stream = Stream(cli_server).create([{"type": "body", "name": "body"}])
    lines = [b'{"b": 1.50,  "a":"\\u00e9"}', b'  {"x":[1, 2]}\t', b"", b'"just a string"', b"7"]
    path = tmp_path / "raw.jsonl"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    result = run_cli(cli_server, "ingest", stream.source, str(path))
    assert result.exit_code == 0, result.output
    assert "ingested 4 records" in result.stderr
    stream.flush()
    assert stream.rows() == [('{"b": 1.50,  "a":"\\u00e9"}',), ('{"x":[1, 2]}',), ('"just a string"',), ("7",)]


def test_json_array_and_document(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create(
        [{"type": "path", "name": "id", "path": "id", "rawString": True}, {"type": "body", "name": "body"}]
    )
    array = tmp_path / "array.json"
    array.write_text('[\n  {"id": "a", "n": 1},\n  {\n    "id": "b",\n    "n": [1,\n 2]\n  }\n]\n')
    single = tmp_path / "single.json"
    single.write_text('{"id": "c", "nested": {"k": true}}')
    result = run_cli(cli_server, "ingest", "--parallel", "1", stream.source, str(array), str(single))
    assert result.exit_code == 0, result.output
    assert "ingested 3 records" in result.stderr and "from 2 files" in result.stderr
    stream.flush()
    # Elements on one line pass as written; an element over several lines is compacted.
    assert stream.rows() == [
        ("a", '{"id": "a", "n": 1}'),
        ("b", '{"id":"b","n":[1,2]}'),
        ("c", '{"id": "c", "nested": {"k": true}}'),
    ]


def test_csv_rows_become_json_objects_of_strings(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create(
        [
            {"type": "path", "name": "id", "path": "id"},
            {"type": "path", "name": "name", "path": "name", "rawString": True},
            {"type": "template", "name": "t", "template": {"language": "jsonnet", "content": 'Body("n") + "!"'}},
            {"type": "body", "name": "body"},
        ]
    )
    path = tmp_path / "people.csv"
    path.write_bytes(
        '\ufeffid,name,n\r\n1,Ann,10\r\n2,"Smith, ""J""",20\r\n\r\n3,"multi\nline",\r\n4,Émile,x\r\n'.encode()
    )
    result = run_cli(cli_server, "ingest", "--parallel", "1", stream.source, str(path))
    assert result.exit_code == 0, result.output
    assert "ingested 4 records" in result.stderr
    stream.flush()
    assert stream.rows() == [
        ('"1"', "Ann", '"10!"', '{"id":"1","name":"Ann","n":"10"}'),
        ('"2"', 'Smith, "J"', '"20!"', '{"id":"2","name":"Smith, \\"J\\"","n":"20"}'),
        ('"3"', "multi\nline", '"!"', '{"id":"3","name":"multi\\nline","n":""}'),
        ('"4"', "Émile", '"x!"', '{"id":"4","name":"Émile","n":"x"}'),
    ]


def test_compressed_files(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    gz = tmp_path / "a.ndjson.gz"
    gz.write_bytes(gzip.compress(ndjson(people(300))))
    zst = tmp_path / "b.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(ndjson(people(200, 300))))
    csv_gz = tmp_path / "c.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"id,name\n500,x\n501,y\n"))
    # The content tells: a gzip file with a plain name is decompressed too.
    disguised = tmp_path / "d.json"
    disguised.write_bytes(gzip.compress(b'[{"id": "600", "name": "z"}]'))
    result = run_cli(cli_server, "ingest", stream.source, str(gz), str(zst), str(csv_gz), str(disguised))
    assert result.exit_code == 0, result.output
    assert "ingested 503 records" in result.stderr
    stream.flush()
    expected = [*as_rows(people(500)), ("500", "x"), ("501", "y"), ("600", "z")]
    assert sorted(stream.rows(), key=lambda r: int(r[0])) == expected


@pytest.mark.parametrize("suffix", [".ndjson", ".ndjson.gz", ".csv", ".json"])
def test_many_batches_in_order(cli_server: ServerProcess, tmp_path: Path, suffix: str) -> None:
    # Plain files go from the file (sendfile), compressed ones through memory: both in order.
    stream = Stream(cli_server).create()
    records = people(700)
    path = tmp_path / f"many{suffix}"
    content = {
        ".ndjson": ndjson(records),
        ".ndjson.gz": gzip.compress(ndjson(records)),
        ".csv": b"id,name\n" + b"".join(f"{r['id']},{r['name']}\n".encode() for r in records),
        ".json": orjson.dumps(records, option=orjson.OPT_INDENT_2),
    }[suffix]
    path.write_bytes(content)
    result = run_cli(cli_server, "ingest", "--batch-size", "1KB", "--parallel", "1", stream.source, str(path))
    assert result.exit_code == 0, result.output
    assert "ingested 700 records" in result.stderr
    assert int(result.stderr.rsplit(", ", 1)[1].split()[0]) >= 20  # requests
    stream.flush()
    assert stream.rows() == as_rows(records)


def test_stdin(cli_server: ServerProcess) -> None:
    stream = Stream(cli_server).create()
    result = run_cli(cli_server, "ingest", stream.source, "--stdin", input=ndjson(people(50)))
    assert result.exit_code == 0, result.output
    assert f'ingested 50 records (1.5 kB) from <stdin> into source "{stream.source}"' in result.stderr
    result = run_cli(cli_server, "ingest", stream.source, "-", "--format", "csv", input=b"id,name\n50,csv\n")
    assert result.exit_code == 0, result.output
    result = run_cli(cli_server, "ingest", stream.source, "--stdin", input=gzip.compress(b'{"id":"51","name":"gz"}'))
    assert result.exit_code == 0, result.output
    stream.flush()
    assert sorted(stream.rows(), key=lambda r: int(r[0])) == [*as_rows(people(50)), ("50", "csv"), ("51", "gz")]


def test_stdin_through_a_pipe(cli_server: ServerProcess) -> None:
    stream = Stream(cli_server).create()
    done = run_process(
        cli_server, "ingest", stream.source, "--stdin", "--format", "json", input=b'[{"id":"1","name":"a"}]'
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert done.stderr.startswith(b"ingested 1 record (")


def test_mixed_formats_in_one_call(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    (tmp_path / "a.ndjson").write_bytes(ndjson(people(3)))
    (tmp_path / "b.json").write_bytes(orjson.dumps(people(3, 3)))
    (tmp_path / "c.csv").write_text("name,id\nperson 6,6\n")
    (tmp_path / "d.txt").write_bytes(ndjson(people(1, 7)))
    files = [str(tmp_path / n) for n in ("a.ndjson", "b.json", "c.csv")]
    result = run_cli(cli_server, "ingest", "--parallel", "1", stream.source, *files)
    assert result.exit_code == 0, result.output
    # --format applies to every file (here one whose name does not tell).
    result = run_cli(cli_server, "ingest", stream.source, "--format", "ndjson", str(tmp_path / "d.txt"))
    assert result.exit_code == 0, result.output
    stream.flush()
    assert stream.rows() == as_rows(people(8))


def test_malformed_line_in_the_middle_sends_nothing(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    good = tmp_path / "good.ndjson"
    good.write_bytes(ndjson(people(100)))
    lines = ndjson(people(1000)).splitlines(keepends=True)
    lines[499] = b'{"id": "499", "name": "broken",}\n'
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(b"".join(lines))
    # The good file comes first: it is not sent either.
    result = run_cli(cli_server, "ingest", "--batch-size", "1KB", stream.source, str(good), str(bad))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {bad}:500: malformed JSON: trailing comma is not allowed at column 31\n"
    assert stream.received() == 0
    stream.flush()
    assert stream.rows() == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.ndjson", b'{"id":"1"}\n{"id": "2\n', "a.ndjson:2: malformed JSON: unexpected end of data at column 10"),
        ("b.ndjson", b'{"id":"1"}\n\n{"id":"\xff"}\n', "b.ndjson:3: not valid UTF-8 (byte 0xff at column 8)"),
        (
            "c.ndjson",
            b'{"id":"1"} {"id":"2"}\n',
            "c.ndjson:1: malformed JSON: unexpected content after document at column 12",
        ),
        (
            "d.json",
            b'[{"id": "1"},\n {"id": 2,]',
            "d.json:2: malformed JSON: unexpected character, expected a string key",
        ),
        ("e.csv", b"id,name\n1,a\n2,b,c\n", "e.csv:3: expected 2 fields like the header row, found 3"),
        ("f.csv", b"id,id\n1,2\n", 'f.csv:1: duplicate column "id" in the header row'),
        ("g.csv", b"", "g.csv:1: a CSV file needs a header row"),
        ("h.csv", b'id,name\n1,"a"b\n', "h.csv:2: malformed CSV: ',' expected after '\"'"),
        ("i.json", b"", "i.json: empty file, expected a JSON array or document"),
        ("j.ndjson.gz", b"\x1f\x8b\x08\x00broken", "j.ndjson.gz: cannot decompress"),
    ],
)
def test_bad_input_names_file_and_line(
    cli_server: ServerProcess, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    # --dry-run: checked without a server.
    result = run_cli(None, "ingest", "--dry-run", "some-source", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {tmp_path}/{message}"), result.stderr


def test_dry_run_checks_without_sending(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,name\n1,a\n2,b\n")
    result = run_cli(None, "ingest", "--dry-run", "events", str(path), PUSHSTREAM_URL="http://127.0.0.1:9")
    assert result.exit_code == 0, result.output
    assert result.stderr == "checked 2 records (44 B) from 1 file: nothing sent (--dry-run)\n"


def test_missing_file_and_unknown_format(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    result = run_cli(cli_server, "ingest", stream.source, str(tmp_path / "nope.ndjson"))
    assert (result.exit_code, result.stderr) == (2, f"Error: {tmp_path}/nope.ndjson: no such file\n")
    (tmp_path / "x.txt").write_text("{}")
    result = run_cli(cli_server, "ingest", stream.source, str(tmp_path / "x.txt"))
    assert result.exit_code == 1
    assert 'cannot tell the format of "' in result.stderr and "use --format" in result.stderr


def test_usage_errors(cli_server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_text("{}\n")
    cases = [
        (["ingest", "src"], "nothing to ingest: give FILES or --stdin"),
        (["ingest", "src", "--stdin", str(tmp_path / "a.ndjson")], "give either FILES or --stdin, not both"),
        (["ingest", "src", "--batch-size", "big", "x.ndjson"], "--batch-size must be a size like 1MB"),
        (["ingest", "src", "--format", "xml", "x.ndjson"], "'xml' is not one of"),
    ]
    for args, message in cases:
        result = run_cli(cli_server, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, result.stderr
    result = run_cli(None, "ingest", "src", str(tmp_path / "a.ndjson"), PUSHSTREAM_API_TOKEN="")
    assert result.exit_code == 1
    assert "no API token: set PUSHSTREAM_API_TOKEN (or pass --token)" in result.stderr


def test_server_errors(cli_server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(ndjson(people(2)))
    result = run_cli(cli_server, "ingest", "no-such-source", str(path))
    assert result.exit_code == 3
    assert result.stderr == 'Error: Source "no-such-source" not found in the branch. (404 stream.api.sourceNotFound)\n'
    result = run_cli(cli_server, "ingest", "x", str(path), PUSHSTREAM_API_TOKEN="wrong")
    assert result.exit_code == 3
    assert "401 stream.api.unauthorized" in result.stderr


def test_server_down(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(ndjson(people(2)))
    url = f"http://127.0.0.1:{free_port()}"
    done = run_process(None, "ingest", "events", str(path), PUSHSTREAM_URL=url, PUSHSTREAM_API_TOKEN="t")
    assert done.returncode == 3
    assert done.stderr.decode() == f"Error: cannot reach the server at {url}: connection refused\n"


def test_ingest_url_down_while_sending(tmp_path: Path) -> None:
    # The API answers, the ingest URL does not (the server went away): retries, then exit 3.
    path = tmp_path / "a.ndjson"
    path.write_bytes(ndjson(people(10)))
    with FakeServer(ingest_port=free_port()) as fake:
        done = run_process(None, "ingest", "events", str(path), "--retries", "2", **fake.env)
    assert done.returncode == 3
    assert done.stderr.decode().splitlines() == [
        f"Error: sending to 127.0.0.1:{fake.ingest_port} failed: connection refused",
        "0 of 10 records had been acknowledged by the server (the rest was not sent)",
    ]


def test_retries_on_5xx(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(ndjson(people(10)))
    answers = [(503, b'{"statusCode":503,"error":"stream.in.serviceUnavailable","message":"busy"}'), (502, b"")]
    with FakeServer(answers=answers) as fake:
        result = run_cli(None, "ingest", "events", str(path), "--parallel", "1", **fake.env)
        assert result.exit_code == 0, result.output
        assert result.stderr.endswith(" records/s, 1 request, 2 retries)\n"), result.stderr
        assert fake.bodies == [path.read_bytes()] * 3
    # Retries run out: the last answer is the error.
    with FakeServer(answers=answers * 3) as fake:
        result = run_cli(None, "ingest", "events", str(path), "--retries", "1", **fake.env)
        assert result.exit_code == 3
        assert result.stderr.splitlines()[0] == "Error: the server answered 502: no details"
        assert len(fake.bodies) == 2
    # A 4xx is not retried.
    answers = [(404, b'{"statusCode":404,"error":"stream.in.noSourceFound","message":"gone"}')]
    with FakeServer(answers=answers) as fake:
        result = run_cli(None, "ingest", "events", str(path), **fake.env)
        assert result.exit_code == 3
        assert result.stderr.splitlines()[0] == "Error: gone (404 stream.in.noSourceFound)"
        assert len(fake.bodies) == 1


def test_records_the_server_rejects(cli_server: ServerProcess, tmp_path: Path) -> None:
    # The sink needs "user.id": CSV rows have no such path, every record fails to map.
    stream = Stream(cli_server).create([{"type": "path", "name": "user", "path": "user.id"}])
    path = tmp_path / "users.csv"
    path.write_text("id,user\n1,x\n2,y\n")
    result = run_cli(cli_server, "ingest", stream.source, str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f'Error: {path}:2: sink "rows": column "user": path "user.id" not found in the body',
        "(the server: Written to 0/1 sinks.)",
        "0 of 2 records had been acknowledged by the server (the rest was not sent)",
    ]


def test_order_is_kept_with_one_connection(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    records = people(2000)
    path = tmp_path / "many.ndjson"
    path.write_bytes(ndjson(records))
    result = run_cli(cli_server, "ingest", "--batch-size", "4KB", "--parallel", "1", stream.source, str(path))
    assert result.exit_code == 0, result.output
    assert "ingested 2,000 records" in result.stderr
    assert int(result.stderr.rsplit(", ", 1)[1].split()[0]) > 10  # requests
    stream.flush()
    assert stream.rows() == as_rows(records)


def test_parallel_batches_all_arrive(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    records = people(5000)
    path = tmp_path / "many.ndjson"
    path.write_bytes(ndjson(records))
    result = run_cli(cli_server, "ingest", "--batch-size", "8KB", "--parallel", "8", stream.source, str(path))
    assert result.exit_code == 0, result.output
    assert "requests" in result.stderr
    stream.flush()
    assert sorted(stream.rows(), key=lambda r: int(r[0])) == as_rows(records)


def test_batches_above_the_server_limit_are_split(server_factory: object, tmp_path: Path) -> None:
    server: ServerProcess = server_factory(args=("--max-batch-size", "64KB", "--max-record-size", "64KB"))  # type: ignore[operator]
    stream = Stream(server).create()
    records = [{"id": str(i), "name": "x" * 1000} for i in range(300)]
    path = tmp_path / "big.ndjson"
    path.write_bytes(ndjson(records))
    result = run_cli(server, "ingest", "--batch-size", "1MB", "--parallel", "1", stream.source, str(path))
    assert result.exit_code == 0, result.output
    assert "ingested 300 records" in result.stderr
    stream.flush()
    assert stream.rows() == as_rows(records)
    # One record larger than the server takes: an input error naming the line.
    path.write_bytes(ndjson([{"id": "1", "name": "a"}, {"id": "2", "name": "y" * 70_000}]))
    result = run_cli(server, "ingest", "--parallel", "1", stream.source, str(path))
    assert result.exit_code == 2
    assert f"Error: {path}:2: the record is larger than the server takes in a batch" in result.stderr
    assert "1 of 2 records had been acknowledged" in result.stderr


def test_warns_about_a_source_without_sinks(cli_server: ServerProcess, tmp_path: Path) -> None:
    from clitest import BASE, wait_task

    source = "lonely"
    wait_task(cli_server, cli_server.request("POST", BASE, json={"sourceId": source, "name": source, "type": "http"}))
    path = tmp_path / "a.ndjson"
    path.write_text('{"a": 1}\n')
    result = run_cli(cli_server, "ingest", source, str(path))
    assert result.exit_code == 0
    assert result.stderr.startswith(f'warning: source "{source}" has no enabled sink, the server keeps nothing')


def test_progress_bar_only_on_a_terminal(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    path = tmp_path / "a.ndjson"
    path.write_bytes(ndjson(people(100)))
    # Not a terminal: only the summary line.
    done = run_process(cli_server, "ingest", stream.source, str(path))
    assert done.returncode == 0
    assert done.stderr.decode().count("\n") == 1 and "━" not in done.stderr.decode()
    # A terminal: a progress bar with records, bytes, rate and ETA, then the summary.
    controller, terminal = pty.openpty()
    env = {**os.environ, **env_for(cli_server), "COLUMNS": "160", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pushstream.cli", "ingest", stream.source, str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(30) == 0
    text = output.decode(errors="replace")
    assert "sending" in text and "100 records" in text and "records/s" in text, text
    assert "ingested 100 records" in text
