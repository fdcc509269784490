"""``pushstream sinks``: list, create, show, enable, disable and delete sinks, with columns given
as ``NAME:TYPE[:ARG][:DATATYPE]`` flags or as the API's JSON, and the options of
typed tables (``--type``, ``--not-null``, ``--event-time``, ``--merge``,
``--system-columns``)."""

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
from pushstream.client.commands.sources import derived_id
from pushstream.client.errors import ServerError, UsageError
from pushstream.wire import DATA_TYPES, MERGE_STRATEGIES


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
      pushstream sinks disable events clicks
      pushstream sinks enable events clicks
      pushstream sinks delete events clicks
    """


def _data_type(spec: str, text: str) -> str:
    data_type = text.strip().lower()
    if data_type not in DATA_TYPES:
        raise UsageError(f'invalid {spec}: unknown data type "{text}", expected one of {", ".join(DATA_TYPES)}')
    return data_type


def parse_column(spec: str) -> dict[str, Any]:
    """``name:type[:arg][:datatype]`` → a column definition of the Stream API. ``arg``
    is the path of a ``path`` column (default: the name) or the Jsonnet of a
    ``template`` (which may hold ``:``, so a template's data type is given with
    ``--type``); ``datatype`` (``number``, ``timestamp``, ...) types the column:
    ``total:path:order.total:number``, ``total:path::number``, ``at:datetime:timestamp``."""
    name, sep, rest = spec.partition(":")
    kind, _, arg = rest.partition(":")
    kind = kind.strip().lower()
    if not sep or not name or kind not in COLUMN_TYPES:
        raise UsageError(
            f'invalid --column "{spec}": expected NAME:TYPE[:ARG][:DATATYPE] with TYPE one of {", ".join(COLUMN_TYPES)}'
        )
    where = f'--column "{spec}"'
    column: dict[str, Any] = {"name": name, "type": kind}
    data_type = None
    if kind == "path":
        path, typed, text = arg.rpartition(":") if ":" in arg else (arg, "", "")
        if typed:
            data_type = _data_type(where, text)
        column["path"] = path or name
    elif kind == "template":
        if not arg:
            raise UsageError(f"invalid {where}: a template column needs NAME:template:JSONNET")
        column["template"] = {"language": "jsonnet", "content": arg}
    elif arg:
        if ":" in arg:
            raise UsageError(f"invalid {where}: a {kind} column takes no argument, only a DATATYPE")
        data_type = _data_type(where, arg)
    if data_type is not None:
        column["dataType"] = data_type
    return column


def _apply_column_options(
    columns: list[dict[str, Any]],
    *,
    primary_key: tuple[str, ...],
    raw: tuple[str, ...],
    types: tuple[str, ...],
    not_null: tuple[str, ...],
) -> None:
    """The per-column flags (``--primary-key``, ``--raw``, ``--type``, ``--not-null``) set on ``columns``."""
    typed: dict[str, str] = {}
    for item in types:
        typed_name, sep, text = item.partition("=")
        if not sep or not typed_name:
            raise UsageError(f'invalid --type "{item}": expected NAME=DATATYPE')
        data_type = _data_type(f'--type "{item}"', text)
        if typed.setdefault(typed_name, data_type) != data_type:
            raise UsageError(f'--type gives column "{typed_name}" two data types: {typed[typed_name]} and {data_type}')
    names = {c.get("name") for c in columns}
    for flag, wanted in (("--primary-key", primary_key), ("--raw", raw), ("--type", typed), ("--not-null", not_null)):
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise UsageError(f"{flag} names no column: {', '.join(unknown)}")
    for column in columns:
        name = column.get("name")
        if name in primary_key:
            column["primaryKey"] = True
        if name in raw:
            column["rawString"] = True
        if name in typed:
            given = column.get("dataType")
            if given is not None and given != typed[name]:
                raise UsageError(f'column "{name}" is {given} in --column and {typed[name]} in --type')
            column["dataType"] = typed[name]
        if name in not_null:
            column["nullable"] = False


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


def _show_sink(sink: dict[str, Any], output: str, totals: dict[str, Any] | None = None) -> None:
    """Prints a sink; ``totals`` (its ``statistics/total``) adds the event-time
    range of its imported rows to a sink with an event-time column."""
    from pushstream.client import render

    if output == "json":
        out(render.json_text(sink))
        return
    table = sink.get("table") or {}
    mapping = table.get("mapping") or {}
    columns = mapping.get("columns") or []
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
        ("merge", _merge_text(mapping)),
    ]
    if "eventTimeColumn" in mapping:
        pairs.append(("event time", mapping["eventTimeColumn"]))
        if totals is not None:
            pairs.append(("event range", _event_range_text(totals)))
    if mapping.get("systemColumns"):
        pairs.append(("system", "_offset, _op, _system_time"))
    headers = ["name", "type", "key", "details"]
    rows = [[c.get("name"), c.get("type"), "yes" if c.get("primaryKey") else "", _column_details(c)] for c in columns]
    # The data type only for sinks that type a column: untyped ones read as Keboola's.
    if any("dataType" in c or "nullable" in c for c in columns):
        headers.insert(2, "data type")
        for row, column in zip(rows, columns, strict=True):
            text = str(column.get("dataType", "string"))
            row.insert(2, text + ", not null" if column.get("nullable") is False else text)
    out(fields_text(pairs) + render.box_table(headers, rows))


def _event_range_text(totals: dict[str, Any]) -> str:
    """The event-time range of a sink's imported rows (``firstEventAt``/``lastEventAt`` of its totals)."""
    total = totals.get("total") or {}
    if "firstEventAt" not in total or "lastEventAt" not in total:
        return "none imported yet"
    return f"{total['firstEventAt']} .. {total['lastEventAt']}"


def _merge_text(mapping: dict[str, Any]) -> str:
    """The merge strategy; when not given, the one in effect (upsert with a primary key, else append)."""
    if "mergeStrategy" in mapping:
        return str(mapping["mergeStrategy"])
    keyed = any(c.get("primaryKey") for c in mapping.get("columns") or [])
    return f"{'upsert' if keyed else 'append'} (default)"


@sinks.command("create")
@click.argument("source")
@click.argument("name")
@click.option("--table", "table_id", required=True, help="Destination table: in.c-<bucket>.<table>.")
@click.option(
    "--column",
    "column_specs",
    multiple=True,
    metavar="NAME:TYPE[:ARG][:DATATYPE]",
    help="A column (repeatable, in table order). TYPE: uuid, datetime, ip, body, headers, path (ARG: the path "
    "in the event, default NAME), template (ARG: Jsonnet). DATATYPE, the type of the table column: string (the "
    "default: text, as Keboola), integer, number, boolean, timestamp, date, json; e.g. total:path:order.total:number, "
    'total:path::number (path NAME), at:datetime:timestamp. A template\'s Jsonnet may hold ":": type it with --type.',
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
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="NAME=DATATYPE",
    help="The data type of a column (repeatable; any column, templates included), e.g. total=number.",
)
@click.option(
    "--not-null",
    "not_null",
    multiple=True,
    metavar="NAME",
    help="A typed column refuses null and missing values (repeatable): such a record fails for this sink.",
)
@click.option(
    "--event-time",
    metavar="NAME",
    help="The column that holds the event's own time (its data type must be timestamp).",
)
@click.option(
    "--merge",
    "merge_strategy",
    type=click.Choice(MERGE_STRATEGIES),
    help="How imports join the table: append (add rows; the default without a primary key), upsert (one row per "
    "key, the latest wins; the default with a key), ledger (one row per key, the first wins), snapshot (each "
    "import is the whole table).",
)
@click.option(
    "--system-columns",
    is_flag=True,
    help="Add the columns _offset, _op and _system_time to the table.",
)
@click.option("--id", "sink_id", help="Sink id (default: from the name, kebab-case).")
@click.option("--description", default="", help="What the sink is for.")
@click.option("--if-not-exists", is_flag=True, help="A sink with this id already there is not an error: show it.")
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
    types: tuple[str, ...],
    not_null: tuple[str, ...],
    event_time: str | None,
    merge_strategy: str | None,
    system_columns: bool,
    sink_id: str | None,
    description: str,
    if_not_exists: bool,
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
      pushstream sinks create events trips --table in.c-geo.trips \\
        --column trip:path:id:integer --column t:path::timestamp --column lat:path::number \\
        --column price:template:'Body("qty") * Body("unit")' --type price=number \\
        --not-null t --event-time t --primary-key trip --merge ledger --system-columns
    """
    if column_specs and columns_file:
        raise UsageError("give either --column or --columns-file, not both")
    if not column_specs and not columns_file:
        raise UsageError("a sink needs columns: --column NAME:TYPE[:ARG] (repeatable) or --columns-file FILE")
    columns = [parse_column(spec) for spec in column_specs] if column_specs else _columns_from_file(str(columns_file))
    _apply_column_options(columns, primary_key=primary_key, raw=raw, types=types, not_null=not_null)
    mapping: dict[str, Any] = {"columns": columns}
    if event_time is not None:
        if event_time not in {c.get("name") for c in columns}:
            raise UsageError(f"--event-time names no column: {event_time}")
        mapping["eventTimeColumn"] = event_time
    if merge_strategy is not None:
        mapping["mergeStrategy"] = merge_strategy
    if system_columns:
        mapping["systemColumns"] = True
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
        "table": {"type": "keboola", "tableId": table_id, "mapping": mapping},
    }
    if sink_id:
        body["sinkId"] = sink_id
    with open_api(url, token, branch) as api:
        try:
            task = api.run_task("POST", api.source_path(source) + "/sinks", json=body)
        except ServerError as exc:
            if not (if_not_exists and exc.error == "stream.api.sinkAlreadyExists"):
                raise
            existing = api.sink(source, derived_id(sink_id or name))
            note(f'sink "{existing["sinkId"]}" of source "{source}" exists already')
            _show_sink(existing, output)
            return
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
    """Show SINK of SOURCE: its table, state, version and columns (and, for a sink
    with an event-time column, the range of the event times of its imported rows)."""
    with open_api(url, token, branch) as api:
        found = api.sink(source, sink)
        totals = None
        if output != "json" and "eventTimeColumn" in ((found.get("table") or {}).get("mapping") or {}):
            totals = api.get(api.sink_path(source, sink) + "/statistics/total")
        _show_sink(found, output, totals)


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


@sinks.command("enable")
@click.argument("source")
@click.argument("sink")
@api_options
@client_errors
def sinks_enable(source: str, sink: str, url: str, token: str | None, branch: str) -> None:
    """Enable SINK of SOURCE: it takes the source's events again."""
    with open_api(url, token, branch) as api:
        api.run_task("PUT", api.sink_path(source, sink) + "/enable")
    note(f'sink "{sink}" of source "{source}" enabled')


@sinks.command("disable")
@click.argument("source")
@click.argument("sink")
@api_options
@client_errors
def sinks_disable(source: str, sink: str, url: str, token: str | None, branch: str) -> None:
    """Disable SINK of SOURCE: it takes no events until enabled; what it took is imported."""
    with open_api(url, token, branch) as api:
        api.run_task("PUT", api.sink_path(source, sink) + "/disable")
    note(f'sink "{sink}" of source "{source}" disabled')
