"""``pushstream sinks``: list, create, show and delete sinks, with columns given
as ``NAME:TYPE[:ARG]`` flags or as the API's JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pushstream._core import COLUMN_TYPES
from pushstream.client.commands.common import (
    Failure,
    api_options,
    client_errors,
    entity_state,
    fields_text,
    note,
    open_api,
    out,
    output_option,
    version_text,
)
from pushstream.client.errors import UsageError


@click.group()
def sinks() -> None:
    """List, create, show and delete sinks (mappings of a source's events to a table).

    \b
    Examples:
      pushstream sinks create events clicks --table in.c-web.clicks \\
        --column id:uuid --column at:datetime --column user:path:user.id --raw user
      pushstream sinks create events raw --table in.c-web.raw --columns-file columns.json
      pushstream sinks list events
      pushstream sinks show events clicks
      pushstream sinks delete events clicks
    """


def parse_column(spec: str) -> dict[str, Any]:
    """``name:type[:arg]`` → a column definition of the Stream API. ``arg`` is the
    path of a ``path`` column (default: the name) or the Jsonnet of a ``template``."""
    name, sep, rest = spec.partition(":")
    kind, _, arg = rest.partition(":")
    kind = kind.strip().lower()
    if not sep or not name or kind not in COLUMN_TYPES:
        raise UsageError(
            f'invalid --column "{spec}": expected NAME:TYPE[:ARG] with TYPE one of {", ".join(COLUMN_TYPES)}'
        )
    column: dict[str, Any] = {"name": name, "type": kind}
    if kind == "path":
        column["path"] = arg or name
    elif kind == "template":
        if not arg:
            raise UsageError(f'invalid --column "{spec}": a template column needs NAME:template:JSONNET')
        column["template"] = {"language": "jsonnet", "content": arg}
    elif arg:
        raise UsageError(f'invalid --column "{spec}": a {kind} column takes no argument')
    return column


def _columns_from_file(path: str) -> list[dict[str, Any]]:
    import orjson

    try:
        data = orjson.loads(sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes())
    except OSError as exc:
        raise Failure(f"{path}: {exc.strerror or exc}", 2) from None
    except orjson.JSONDecodeError as exc:
        raise Failure(f"{path}: not valid JSON: {exc}", 2) from None
    if isinstance(data, dict):
        data = (data.get("mapping") or data).get("columns")
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise Failure(f'{path}: expected a JSON list of columns (or an object with "columns")', 2)
    return data


def _setting_value(text: str) -> Any:
    import orjson

    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return value if isinstance(value, bool | int | float) or value is None else text


@sinks.command("list")
@click.argument("source")
@output_option
@api_options
@client_errors
def sinks_list(source: str, output: str, url: str, token: str | None, branch: str) -> None:
    """List the sinks of SOURCE."""
    from pushstream.client import render

    with open_api(url, token, branch) as api:
        items = api.list_all(api.source_path(source) + "/sinks", "sinks")
    if output == "json":
        out(render.json_text(items))
        return
    if not items:
        note(f'source "{source}" has no sinks')
        return
    rows = []
    for s in items:
        table = s.get("table") or {}
        columns = (table.get("mapping") or {}).get("columns") or []
        rows.append([s.get("sinkId"), s.get("name"), table.get("tableId"), entity_state(s), len(columns)])
    out(render.plain_table(["id", "name", "table", "state", "columns"], rows))


def _column_details(column: dict[str, Any]) -> str:
    kind = column.get("type")
    parts = []
    if kind == "path":
        parts.append(str(column.get("path")))
        if "defaultValue" in column:
            parts.append(f"default {column['defaultValue']!r}")
    elif kind == "template":
        parts.append(str((column.get("template") or {}).get("content", "")))
    if column.get("rawString"):
        parts.append("raw")
    return ", ".join(parts)


def _show_sink(sink: dict[str, Any], output: str) -> None:
    from pushstream.client import render

    if output == "json":
        out(render.json_text(sink))
        return
    table = sink.get("table") or {}
    columns = (table.get("mapping") or {}).get("columns") or []
    pairs: list[tuple[str, Any]] = [
        ("id", sink.get("sinkId")),
        ("source", sink.get("sourceId")),
        ("name", sink.get("name")),
        ("description", sink.get("description") or ""),
        ("table", table.get("tableId")),
        ("state", entity_state(sink)),
        ("version", version_text(sink)),
        ("created", (sink.get("created") or {}).get("at")),
        ("columns", len(columns)),
    ]
    rows = [[c.get("name"), c.get("type"), "yes" if c.get("primaryKey") else "", _column_details(c)] for c in columns]
    out(fields_text(pairs) + render.box_table(["name", "type", "key", "details"], rows))


@sinks.command("create")
@click.argument("source")
@click.argument("name")
@click.option("--table", "table_id", required=True, help="Destination table: in.c-<bucket>.<table>.")
@click.option(
    "--column",
    "column_specs",
    multiple=True,
    metavar="NAME:TYPE[:ARG]",
    help="A column (repeatable, in table order). TYPE: uuid, datetime, ip, body, headers, path (ARG: the path "
    "in the event, default NAME), template (ARG: Jsonnet).",
)
@click.option(
    "--columns-file",
    metavar="FILE",
    help='Columns as the API takes them: a JSON list, or an object with "columns" ("-" reads stdin).',
)
@click.option(
    "--primary-key",
    "primary_key",
    multiple=True,
    metavar="NAME",
    help="Make a column part of the primary key (repeatable); rows are deduplicated on it.",
)
@click.option(
    "--raw",
    "raw",
    multiple=True,
    metavar="NAME",
    help="Write a path or template column's string values without JSON quotes (repeatable).",
)
@click.option("--id", "sink_id", help="Sink id (default: from the name, kebab-case).")
@click.option("--description", default="", help="What the sink is for.")
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the sink (repeatable), e.g. storage.level.target.import.trigger.interval=30s.",
)
@output_option
@api_options
@client_errors
def sinks_create(
    *,
    source: str,
    name: str,
    table_id: str,
    column_specs: tuple[str, ...],
    columns_file: str | None,
    primary_key: tuple[str, ...],
    raw: tuple[str, ...],
    sink_id: str | None,
    description: str,
    settings: tuple[str, ...],
    output: str,
    url: str,
    token: str | None,
    branch: str,
) -> None:
    """Create a sink NAME of SOURCE that writes one row per event into a table.

    \b
    Examples:
      pushstream sinks create events clicks --table in.c-web.clicks \\
        --column id:uuid --column at:datetime --column ip:ip \\
        --column user:path:user.id --raw user \\
        --column total:template:'Body("price") * Body("qty")'
      pushstream sinks create events orders --table in.c-shop.orders \\
        --column order_id:path:id --primary-key order_id --column body:body
      pushstream sinks create events raw --table in.c-web.raw --columns-file columns.json
    """
    if column_specs and columns_file:
        raise UsageError("give either --column or --columns-file, not both")
    if not column_specs and not columns_file:
        raise UsageError("a sink needs columns: --column NAME:TYPE[:ARG] (repeatable) or --columns-file FILE")
    columns = [parse_column(spec) for spec in column_specs] if column_specs else _columns_from_file(str(columns_file))
    names = {c.get("name") for c in columns}
    for flag, wanted in (("--primary-key", primary_key), ("--raw", raw)):
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise UsageError(f"{flag} names no column: {', '.join(unknown)}")
    for column in columns:
        if column.get("name") in primary_key:
            column["primaryKey"] = True
        if column.get("name") in raw:
            column["rawString"] = True
    patch = []
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f'invalid --setting "{item}": expected KEY=VALUE')
        patch.append({"key": key.strip(), "value": _setting_value(value.strip())})
    body: dict[str, Any] = {
        "type": "table",
        "name": name,
        "description": description,
        "table": {"type": "keboola", "tableId": table_id, "mapping": {"columns": columns}},
    }
    if sink_id:
        body["sinkId"] = sink_id
    with open_api(url, token, branch) as api:
        task = api.run_task("POST", api.source_path(source) + "/sinks", json=body)
        created_id = str((task.get("outputs") or {}).get("sinkId") or sink_id)
        if patch:
            api.run_task("PATCH", api.sink_path(source, created_id) + "/settings", json={"settings": patch})
        created = api.sink(source, created_id)
    note(f'sink "{created["sinkId"]}" of source "{source}" created')
    _show_sink(created, output)


@sinks.command("show")
@click.argument("source")
@click.argument("sink")
@output_option
@api_options
@client_errors
def sinks_show(*, source: str, sink: str, output: str, url: str, token: str | None, branch: str) -> None:
    """Show SINK of SOURCE: its table, state, version and columns."""
    with open_api(url, token, branch) as api:
        _show_sink(api.sink(source, sink), output)


@sinks.command("delete")
@click.argument("source")
@click.argument("sink")
@api_options
@client_errors
def sinks_delete(source: str, sink: str, url: str, token: str | None, branch: str) -> None:
    """Delete SINK of SOURCE (its table and imported rows stay)."""
    with open_api(url, token, branch) as api:
        api.run_task("DELETE", api.sink_path(source, sink))
    note(f'sink "{sink}" of source "{source}" deleted')
