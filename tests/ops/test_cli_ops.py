"""The commands an operator and a new user reach for, against a real server:
``stats``, ``sources enable|disable|rotate-secret|test``, ``sinks enable|disable``,
``--if-not-exists``, close names for typos, ``tail`` of a missing table, input errors."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import requests
from click.testing import CliRunner, Result
from opstest import BASE, create_stream

from pushstream.cli import main
from serverprocess import ServerProcess


def cli(server: ServerProcess | None, *args: str, input: bytes | None = None) -> Result:
    env = {"PUSHSTREAM_URL": server.url, "PUSHSTREAM_API_TOKEN": server.token} if server else {}
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def wait_counted(server: ServerProcess, source: str, sink: str, records: int) -> None:
    """Waits until the statistics count ``records`` (nodes report what they wrote in a heartbeat)."""
    deadline = time.monotonic() + 30
    path = f"{BASE}/{source}/sinks/{sink}/statistics/total"
    while server.request("GET", path).json()["total"]["recordsCount"] != records:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_stats(server: ServerProcess) -> None:
    _, url = create_stream(server, "shop")
    for i in range(5):
        assert requests.post(url, json={"id": str(i)}, timeout=30).status_code == 200
    wait_counted(server, "shop", "rows", 5)
    result = cli(server, "stats")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "SOURCE",
        "SINK",
        "LOCAL",
        "STAGING",
        "TARGET",
        "REJECTED",
        "FILES",
        "WAITING",
        "FAILED",
        "IMPORTS",
    ]
    assert lines[1].split() == ["shop", "rows", "5", "0", "0", "0", "0", "0"]
    assert server.request("POST", f"{BASE}/shop/flush?wait=60").status_code == 200
    report = orjson.loads(cli(server, "stats", "shop", "rows", "-o", "json").stdout)
    assert [(r["sourceId"], r["sinkId"]) for r in report] == [("shop", "rows")]
    assert report[0]["statistics"]["levels"]["target"]["recordsCount"] == 5
    assert report[0]["statistics"]["total"]["recordsCount"] == 5
    assert [f["state"] for f in report[0]["files"]] == ["writing", "imported"]
    assert report[0]["failedFiles"] == []
    assert cli(server, "stats", "shop").stdout.splitlines()[1].split() == ["shop", "rows", "0", "0", "5", "0", "0", "0"]

    typo = cli(server, "stats", "shpo")
    assert typo.exit_code == 3
    assert 'Did you mean "shop"?' in typo.stderr
    typo = cli(server, "stats", "shop", "rosw")
    assert typo.exit_code == 3
    assert 'Did you mean "rows"?' in typo.stderr


def test_enable_disable_rotate_test(server: ServerProcess) -> None:
    _, url = create_stream(server, "web")
    result = cli(server, "sources", "disable", "web")
    assert (result.exit_code, result.stderr) == (0, 'source "web" disabled\n')
    assert requests.post(url, json={"id": "1"}, timeout=30).status_code == 404
    assert cli(server, "sources", "enable", "web").exit_code == 0
    assert requests.post(url, json={"id": "1"}, timeout=30).status_code == 200

    result = cli(server, "sinks", "disable", "web", "rows")
    assert (result.exit_code, result.stderr) == (0, 'sink "rows" of source "web" disabled\n')
    assert "disabled" in server.request("GET", f"{BASE}/web/sinks/rows").json()
    assert cli(server, "sinks", "enable", "web", "rows").exit_code == 0
    assert "disabled" not in server.request("GET", f"{BASE}/web/sinks/rows").json()

    result = cli(server, "sources", "rotate-secret", "web", "-o", "json")
    assert result.exit_code == 0, result.output
    new_url = orjson.loads(result.stdout)["http"]["url"]
    assert new_url != url
    assert requests.post(url, json={"id": "2"}, timeout=30).status_code == 404
    assert requests.post(new_url, json={"id": "2"}, timeout=30).status_code == 200

    result = cli(server, "sources", "test", "web", '{"id": "7"}', "-o", "json")
    assert result.exit_code == 0, result.output
    tables = orjson.loads(result.stdout)["tables"]
    assert tables[0]["sinkId"] == "rows"
    assert tables[0]["rows"][0]["columns"] == [{"name": "id", "value": "7"}, {"name": "body", "value": '{"id": "7"}'}]
    result = cli(server, "sources", "test", "web", input=b'{"id": "8"}')
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "sink rows → in.c-ops.web"
    assert result.stdout.splitlines()[2].split()[0] == "8"


def test_if_not_exists(server: ServerProcess) -> None:
    args = ("sources", "create", "Quick Start")
    assert cli(server, *args).exit_code == 0
    again = cli(server, *args)
    assert again.exit_code == 3
    assert "already exists" in again.stderr
    again = cli(server, *args, "--if-not-exists")
    assert again.exit_code == 0, again.output
    assert again.stderr == 'source "quick-start" exists already\n'
    sink = ("sinks", "create", "quick-start", "clicks", "--table", "in.c-web.clicks", "--column", "id:uuid")
    assert cli(server, *sink).exit_code == 0
    assert cli(server, *sink).exit_code == 3
    again = cli(server, *sink, "--if-not-exists", "-o", "json")
    assert again.exit_code == 0, again.output
    assert orjson.loads(again.stdout)["sinkId"] == "clicks"


def test_input_and_url_errors(server: ServerProcess, tmp_path: Path) -> None:
    create_stream(server, "events")
    path = tmp_path / "events.json"
    path.write_bytes(b'[{"id": "1"}, {"id": "2"}]\n')
    result = cli(server, "ingest", "events", str(path), "--format", "csv")
    assert result.exit_code == 2, result.output
    assert "this is JSON, not CSV: use --format json or --format ndjson" in result.stderr
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"id": "1"}\n{"id": "2"}\n')
    result = cli(server, "ingest", "events", str(path), "--format", "csv")
    assert result.exit_code == 2, result.output
    assert "this is JSON, not CSV" in result.stderr

    result = CliRunner().invoke(
        main, ["sources", "list", "--url", server.url.removeprefix("http://"), "--token", "t"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert f'the server URL must start with http:// or https://, found "{server.url[7:]}"' in result.stderr

    typo = cli(server, "sources", "show", "evnts")
    assert typo.exit_code == 3
    assert 'Did you mean "events"?' in typo.stderr


def test_tail_of_a_missing_table(server: ServerProcess) -> None:
    _, url = create_stream(server, "tailed")
    assert requests.post(url, json={"id": "1"}, timeout=30).status_code == 200
    assert server.request("POST", f"{BASE}/tailed/flush?wait=60").status_code == 200
    result = cli(None, "tail", "in.c-ops.taild", "--data-dir", str(server.data_dir))
    assert result.exit_code == 3
    assert result.stderr == (
        'Error: table "in.c-ops.taild" does not exist; did you mean "in.c-ops.tailed"?\ntables: in.c-ops.tailed\n'
    )
