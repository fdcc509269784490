"""``pushstream tail``: the last rows of a table in every output format, -n and
--skip, while the server runs, and its errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
from clitest import Stream, ndjson, run_cli, run_process

from serverprocess import ServerProcess

TABLE_COLUMNS = [
    {"type": "path", "name": "id", "path": "id", "rawString": True},
    {"type": "path", "name": "name", "path": "name", "rawString": True},
    {"type": "path", "name": "note", "path": "note", "rawString": True, "defaultValue": ""},
]
RECORDS = [
    {"id": "1", "name": "Ann"},
    {"id": "2", "name": "Bob", "note": "likes, commas"},
    {"id": "3", "name": "Žofie", "note": 'say "hi"'},
    {"id": "4", "name": "李", "note": "two\nlines"},
    {"id": "5", "name": "Eve"},
]


@pytest.fixture(scope="module")
def table(cli_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A table with :data:`RECORDS`, imported in order."""
    stream = Stream(cli_server).create(TABLE_COLUMNS)
    path = tmp_path_factory.mktemp("tail") / "people.ndjson"
    path.write_bytes(ndjson(RECORDS))
    result = run_cli(cli_server, "ingest", "--parallel", "1", stream.source, str(path))
    assert result.exit_code == 0, result.output
    stream.flush()
    return stream.table


def _tail(server: ServerProcess, *args: str) -> tuple[int, str, str]:
    result = run_cli(server, "tail", *args, "--data-dir", str(server.data_dir))
    return result.exit_code, result.stdout, result.stderr


def test_table_output(cli_server: ServerProcess, table: str) -> None:
    code, out, err = _tail(cli_server, table)
    assert (code, err) == (0, "")
    assert out == (
        "┌────┬───────┬───────────────┐\n"
        "│ id │ name  │ note          │\n"
        "├────┼───────┼───────────────┤\n"
        "│ 1  │ Ann   │               │\n"
        "│ 2  │ Bob   │ likes, commas │\n"
        '│ 3  │ Žofie │ say "hi"      │\n'
        "│ 4  │ 李    │ two\\nlines    │\n"
        "│ 5  │ Eve   │               │\n"
        "└────┴───────┴───────────────┘\n"
    )


def test_limit_and_skip(cli_server: ServerProcess, table: str) -> None:
    code, out, _ = _tail(cli_server, table, "-n", "2", "-o", "ndjson")
    assert code == 0
    assert [r["id"] for r in map(orjson.loads, out.splitlines())] == ["4", "5"]
    code, out, _ = _tail(cli_server, table, "-n", "2", "--skip", "1", "-o", "ndjson")
    assert [r["id"] for r in map(orjson.loads, out.splitlines())] == ["3", "4"]
    code, out, _ = _tail(cli_server, table, "--num-records", "10", "--skip-records", "4", "-o", "ndjson")
    assert [r["id"] for r in map(orjson.loads, out.splitlines())] == ["1"]
    code, out, _ = _tail(cli_server, table, "-n", "0")
    assert out == "┌────┬──────┬──────┐\n│ id │ name │ note │\n├────┼──────┼──────┤\n└────┴──────┴──────┘\n"
    code, out, _ = _tail(cli_server, table, "--skip", "9", "-o", "json")
    assert (code, out) == (0, "[]\n")


def test_csv_json_and_ndjson(cli_server: ServerProcess, table: str) -> None:
    expected = [{"id": r["id"], "name": r["name"], "note": r.get("note", "")} for r in RECORDS]
    _, out, _ = _tail(cli_server, table, "-o", "csv")
    assert list(csv.DictReader(io.StringIO(out))) == expected
    assert out.splitlines()[0] == "id,name,note"
    assert out.splitlines()[2] == '2,Bob,"likes, commas"'
    _, out, _ = _tail(cli_server, table, "-o", "json")
    assert orjson.loads(out) == expected
    assert out.startswith('[\n  {\n    "id": "1",')
    _, out, _ = _tail(cli_server, table, "-o", "ndjson")
    assert [orjson.loads(line) for line in out.splitlines()] == expected


def test_console_script_and_environment(cli_server: ServerProcess, table: str) -> None:
    done = run_process(None, "tail", table, "-n", "1", "-o", "csv", PUSHSTREAM_DATA_DIR=str(cli_server.data_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"id,name,note\n5,Eve,\n"
    target = f"sqlite:///{cli_server.data_dir / 'tables.sqlite'}"
    done = run_process(None, "tail", table, "-n", "1", "-o", "csv", "--target", target)
    assert done.stdout == b"id,name,note\n5,Eve,\n"


def test_errors(cli_server: ServerProcess, tmp_path: Path) -> None:
    code, _, err = _tail(cli_server, "in.c-cli.nope")
    # Then the tables there are (other tests of the module may have made some).
    assert code == 3
    assert err.startswith('Error: table "in.c-cli.nope" does not exist')
    code, _, err = _tail(cli_server, "not-a-table")
    assert code == 1
    assert 'invalid table id "not-a-table", expected "in.c-<bucket>.<table>"' in err
    result = run_cli(None, "tail", "in.c-a.b", "--data-dir", str(tmp_path / "empty"))
    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: no target database at {tmp_path / 'empty' / 'tables.sqlite'} "
        "(nothing imported yet, or another --data-dir?)\n"
    )
    assert not (tmp_path / "empty").exists()
    result = run_cli(None, "tail", "in.c-a.b", "--target", "mysql://x")
    assert result.exit_code == 2
    assert "target must be sqlite:///path or postgresql://..." in result.stderr
