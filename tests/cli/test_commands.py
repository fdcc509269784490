"""``pushstream sources|sinks|flush`` against a real server: round trips, readable
and JSON output, errors and exit codes; ``--help`` of every command."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from clitest import BASE, Stream, ndjson, people, run_cli, run_process

from pushstream.cli import main
from pushstream.client.commands import parse_column
from pushstream.client.errors import UsageError
from serverprocess import ServerProcess


def test_sources_round_trip(cli_server: ServerProcess) -> None:
    result = run_cli(cli_server, "sources", "create", "Web Events", "--description", "from the shop")
    assert result.exit_code == 0, result.output
    assert result.stderr == 'source "web-events" created\n'
    fields = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines() if ": " in line)
    assert fields["id"].strip() == "web-events"
    assert fields["name"].strip() == "Web Events"
    assert fields["description"].strip() == "from the shop"
    assert fields["state"].strip() == "enabled"
    source = cli_server.request("GET", f"{BASE}/web-events").json()
    assert fields["url"].strip() == source["http"]["url"]
    assert result.stdout.rstrip().endswith("sinks:       none (create one with: pushstream sinks create)")

    result = run_cli(cli_server, "sources", "create", "second", "--id", "src-2", "-o", "json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["sourceId"] == "src-2"

    result = run_cli(cli_server, "sources", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATE", "VERSION", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["web-events"].split()[:6] == ["web-events", "Web", "Events", "enabled", "1", "from"]
    listed = orjson.loads(run_cli(cli_server, "sources", "list", "-o", "json").stdout)
    assert {"web-events", "src-2"} <= {s["sourceId"] for s in listed}

    shown = orjson.loads(run_cli(cli_server, "sources", "show", "web-events", "-o", "json").stdout)
    assert shown == source

    result = run_cli(cli_server, "sources", "delete", "src-2")
    assert (result.exit_code, result.stderr) == (0, 'source "src-2" deleted\n')
    assert cli_server.request("GET", f"{BASE}/src-2").status_code == 404
    result = run_cli(cli_server, "sources", "delete", "web-events", "--purge")
    assert (result.exit_code, result.stderr) == (0, 'source "web-events" deleted for good\n')
    deleted = cli_server.request("GET", f"{BASE}/deleted").json()["sources"]
    assert "web-events" not in {s["sourceId"] for s in deleted}

    result = run_cli(cli_server, "sources", "show", "web-events")
    assert result.exit_code == 3
    assert result.stderr == 'Error: Source "web-events" not found in the branch. (404 stream.api.sourceNotFound)\n'


def test_sinks_round_trip(cli_server: ServerProcess, tmp_path: Path) -> None:
    assert run_cli(cli_server, "sources", "create", "shop").exit_code == 0
    result = run_cli(
        cli_server,
        "sinks",
        "create",
        "shop",
        "Orders",
        "--table",
        "in.c-shop.orders",
        "--column",
        "order_id:path:order.id",
        "--column",
        "at:datetime",
        "--column",
        "kind:template:std.asciiUpper(Body('kind'))",
        "--column",
        "user:path",
        "--primary-key",
        "order_id",
        "--raw",
        "kind",
        "--raw",
        "user",
        "--setting",
        "storage.level.target.import.trigger.interval=30s",
        "--setting",
        "storage.level.staging.upload.trigger.count=100",
        "--description",
        "paid orders",
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == 'sink "orders" of source "shop" created\n'
    assert result.stdout.splitlines()[4] == "table:       in.c-shop.orders"
    assert result.stdout.endswith(
        "┌──────────┬──────────┬─────┬───────────────────────────────────┐\n"
        "│ name     │ type     │ key │ details                           │\n"
        "├──────────┼──────────┼─────┼───────────────────────────────────┤\n"
        "│ order_id │ path     │ yes │ order.id                          │\n"
        "│ at       │ datetime │     │                                   │\n"
        "│ kind     │ template │     │ std.asciiUpper(Body('kind')), raw │\n"
        "│ user     │ path     │     │ user, raw                         │\n"
        "└──────────┴──────────┴─────┴───────────────────────────────────┘\n"
    )
    sink = cli_server.request("GET", f"{BASE}/shop/sinks/orders").json()
    assert sink["description"] == "paid orders"
    assert sink["table"]["mapping"]["columns"] == [
        {"type": "path", "name": "order_id", "path": "order.id", "primaryKey": True},
        {"type": "datetime", "name": "at"},
        {
            "type": "template",
            "name": "kind",
            "rawString": True,
            "template": {"language": "jsonnet", "content": "std.asciiUpper(Body('kind'))"},
        },
        {"type": "path", "name": "user", "path": "user", "rawString": True},
    ]
    settings = {
        s["key"]: s["value"] for s in cli_server.request("GET", f"{BASE}/shop/sinks/orders/settings").json()["settings"]
    }
    assert settings["storage.level.target.import.trigger.interval"] == "30s"
    assert settings["storage.level.staging.upload.trigger.count"] == 100

    columns = tmp_path / "columns.json"
    columns.write_bytes(orjson.dumps({"columns": [{"type": "body", "name": "body"}]}))
    result = run_cli(
        cli_server, "sinks", "create", "shop", "raw", "--id", "everything", "--table", "in.c-shop.raw",
        "--columns-file", str(columns), "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["sinkId"] == "everything"
    result = run_cli(
        cli_server, "sinks", "create", "shop", "stdin", "--table", "in.c-shop.stdin", "--columns-file", "-",
        input=b'[{"type": "uuid", "name": "id"}]',
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    result = run_cli(cli_server, "sinks", "list", "shop")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TABLE", "STATE", "COLUMNS"]
    assert [line.split() for line in lines[1:]] == [
        ["everything", "raw", "in.c-shop.raw", "enabled", "1"],
        ["orders", "Orders", "in.c-shop.orders", "enabled", "4"],
        ["stdin", "stdin", "in.c-shop.stdin", "enabled", "1"],
    ]
    assert orjson.loads(run_cli(cli_server, "sinks", "show", "shop", "orders", "-o", "json").stdout) == sink
    shown = run_cli(cli_server, "sources", "show", "shop").stdout
    assert "sinks:       everything → in.c-shop.raw, orders → in.c-shop.orders, stdin → in.c-shop.stdin" in shown

    result = run_cli(cli_server, "sinks", "delete", "shop", "stdin")
    assert (result.exit_code, result.stderr) == (0, 'sink "stdin" of source "shop" deleted\n')
    assert [s["sinkId"] for s in orjson.loads(run_cli(cli_server, "sinks", "list", "shop", "-o", "json").stdout)] == [
        "everything",
        "orders",
    ]
    result = run_cli(cli_server, "sinks", "show", "shop", "stdin")
    assert result.exit_code == 3
    assert "404 stream.api.sinkNotFound" in result.stderr


def test_sink_errors(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    base = ["sinks", "create", stream.source, "s", "--table", "in.c-x.y"]
    cases = [
        ([*base], 1, "a sink needs columns"),
        ([*base, "--column", "a"], 1, 'invalid --column "a": expected NAME:TYPE[:ARG]'),
        ([*base, "--column", "a:nope"], 1, "TYPE one of uuid, id, datetime, ip, body, headers, path, template"),
        ([*base, "--column", "a:uuid:x:y"], 1, "a uuid column takes no argument, only a DATATYPE"),
        ([*base, "--column", "a:template"], 1, "a template column needs NAME:template:JSONNET"),
        ([*base, "--column", "a:uuid", "--primary-key", "b"], 1, "--primary-key names no column: b"),
        ([*base, "--column", "a:uuid", "--setting", "x"], 1, 'invalid --setting "x": expected KEY=VALUE'),
        ([*base, "--column", "a:uuid", "--columns-file", "f"], 1, "give either --column or --columns-file"),
        ([*base, "--columns-file", str(tmp_path / "none.json")], 2, "none.json: No such file or directory"),
        ([*base, "--column", "a:template:Body(", "--id", "t"], 3, "400 stream.api.badRequest"),
        (["sinks", "create", "nope", "s", "--table", "in.c-x.y", "--column", "a:ip"], 3, "sourceNotFound"),
        ([*base[:3], "s", "--column", "a:ip"], 1, "Missing option '--table'"),
    ]
    for args, code, message in cases:
        result = run_cli(cli_server, *args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.stderr, (args, result.stderr)


def test_parse_column() -> None:
    assert parse_column("a:id") == {"name": "a", "type": "id"}
    assert parse_column("a:PATH:x.y[0]") == {"name": "a", "type": "path", "path": "x.y[0]"}
    assert parse_column("t:template:{a: 1}") == {
        "name": "t",
        "type": "template",
        "template": {"language": "jsonnet", "content": "{a: 1}"},
    }
    with pytest.raises(UsageError):
        parse_column(":uuid")


def test_flush(cli_server: ServerProcess, tmp_path: Path) -> None:
    stream = Stream(cli_server).create()
    path = tmp_path / "a.ndjson"
    path.write_bytes(ndjson(people(3)))
    assert run_cli(cli_server, "ingest", stream.source, str(path)).exit_code == 0
    result = run_cli(cli_server, "flush", stream.source, "--wait", "60")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SOURCE", "SINK", "FILE", "STATE"]
    assert [line.split()[:2] + line.split()[3:] for line in lines[1:]] == [[stream.source, "rows", "imported"]]
    assert result.stderr == "1 file(s) imported\n"
    assert stream.rows() == [("0", "person 0"), ("1", "person 1"), ("2", "person 2")]

    # One sink, JSON: the API's answer.
    assert run_cli(cli_server, "ingest", stream.source, str(path)).exit_code == 0
    result = run_cli(cli_server, "flush", stream.source, stream.sink, "-o", "json")
    assert result.exit_code == 0, result.output
    answer = orjson.loads(result.stdout)
    assert answer["sourceId"] == stream.source and answer["imported"] is True
    assert [f["state"] for f in answer["files"]] == ["imported"]
    assert len(stream.rows()) == 6

    # Every source of the branch.
    result = run_cli(cli_server, "flush", "-o", "json")
    assert result.exit_code == 0, result.output
    assert stream.source in {r["sourceId"] for r in orjson.loads(result.stdout)}

    result = run_cli(cli_server, "flush", "nope")
    assert result.exit_code == 3
    assert 'Source "nope" not found in the branch.' in result.stderr


def test_no_token_and_no_server(tmp_path: Path) -> None:
    for args in (["sources", "list"], ["sinks", "list", "x"], ["flush"]):
        result = run_cli(None, *args, PUSHSTREAM_API_TOKEN="")
        assert result.exit_code == 1, result.output
        assert result.stderr.endswith("Error: no API token: set PUSHSTREAM_API_TOKEN (or pass --token)\n")
    done = run_process(None, "sources", "list", "--url", "http://127.0.0.1:9", "--token", "t")
    assert done.returncode == 3
    assert done.stderr == b"Error: cannot reach the server at http://127.0.0.1:9: connection refused\n"


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import click

    assert isinstance(group, click.Group)
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


def test_every_command_has_help_with_examples() -> None:
    commands = _commands(main)
    assert {("ingest",), ("tail",), ("sources", "create"), ("sinks", "create"), ("flush",), ("token", "list")} <= set(
        commands
    )
    for command in commands:
        result = run_cli(None, *command, "--help")
        assert result.exit_code == 0, command
        assert result.stdout.startswith(f"Usage: main {' '.join(command)}"), command
    for command in [("ingest",), ("tail",), ("sources",), ("sinks",), ("flush",), ("sinks", "create"), ("token",),
                    ("token", "create"), ("serve",)]:  # fmt: skip
        assert "Example" in run_cli(None, *command, "--help").stdout, command
    assert "Exit codes: 0 ok, 1 usage error, 2 input error, 3 server or network error." in run_cli(
        None, "--help"
    ).stdout.replace("\n ", " ")


def test_usage_error_exit_code_of_the_console_script() -> None:
    done = run_process(None, "sources", "frobnicate")
    assert done.returncode == 1
    assert b"No such command 'frobnicate'" in done.stderr
    done = run_process(None, "tail")
    assert done.returncode == 1
