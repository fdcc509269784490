"""The commands that read the server's data directly, not through its API (they
work while the server runs): ``tail`` (the rows of a table in the target
database) and ``rejected`` (the rows the target refused, in the data dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pushstream.client.commands.common import Failure, client_errors, out
from pushstream.client.errors import ClientError, UsageError


@click.command()
@click.argument("table")
@click.option(
    "-n", "--num-records", "limit", type=click.IntRange(min=0), default=10, show_default=True, help="How many rows."
)
@click.option(
    "-s",
    "--skip",
    "--skip-records",
    "skip",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Skip this many of the newest rows first.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "csv", "json", "ndjson"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--system",
    is_flag=True,
    help="Show the system columns first (_offset, _op, _system_time, then the event-time column);"
    ' the sink needs "systemColumns": true.',
)
@click.option(
    "--order",
    type=click.Choice(["import", "event-time"]),
    default="import",
    show_default=True,
    help='Which rows are the last: in import order, or by the event-time column (the sink\'s "eventTimeColumn").',
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory of the server (env PUSHSTREAM_DATA_DIR, default ./pushstream-data).",
)
@click.option(
    "--target",
    help="Target database, as given to serve (env PUSHSTREAM_TARGET, default sqlite:///<data dir>/tables.sqlite).",
)
@client_errors
def tail(
    *,
    table: str,
    limit: int,
    skip: int,
    output: str,
    system: bool,
    order: str,
    data_dir: Path | None,
    target: str | None,
) -> None:
    """The last rows of TABLE (in.c-bucket.table) in import order (or by event
    time: --order event-time), oldest first.

    Reads the target database directly, so it works while the server runs; give it
    the server's --data-dir / --target (or the same environment variables).
    Only imported rows are shown: `pushstream flush` imports what waits.
    Typed columns show typed values: numbers and booleans as such in json/ndjson,
    timestamps as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC). --system shows each row's
    offset, operation (+A appended, +I inserted, +U updated) and import time
    first, like kamu tail.

    \b
    Examples:
      pushstream tail in.c-web.clicks
      pushstream tail in.c-web.clicks -n 100 --skip 10 -o csv > rows.csv
      pushstream tail in.c-web.clicks --system --order event-time
      pushstream tail in.c-web.clicks -o ndjson --target postgresql://pushstream@db/pushstream
    """
    from pushstream.client import render
    from pushstream.config import load_config
    from pushstream.errors import ConfigError
    from pushstream.targets import open_target
    from pushstream.targets.base import TargetError, TargetMissingError, parse_table_id

    try:
        parse_table_id(table)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        config = load_config(data_dir=data_dir, target=target)
    except ConfigError as exc:
        raise Failure(str(exc), 2) from None
    try:
        opened = open_target(config.target, config.data_dir, create=False)
        try:
            if not opened.table_exists(table):
                raise ClientError(_missing_table_text(table, opened.table_ids()))
            columns, rows = opened.tail(table, limit=limit, skip=skip, system=system, order=order)
        finally:
            opened.close()
    except TargetMissingError as exc:
        raise ClientError(f"{exc} (nothing imported yet, or another --data-dir?)") from None
    except TargetError as exc:
        raise ClientError(str(exc)) from None
    if output in ("table", "csv"):
        # Booleans as JSON writes them, not Python's True/False.
        rows = [tuple(_text_cell(v) for v in row) for row in rows]
    out(render.rows_text(output, columns, rows))


def _text_cell(value: Any) -> Any:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


@click.command()
@click.argument("source")
@click.argument("sink")
@click.option(
    "-n", "--num-records", "limit", type=click.IntRange(min=0), default=10, show_default=True, help="How many rows."
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "ndjson"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--branch-id",
    type=click.IntRange(min=1),
    help="Branch of the source (env PUSHSTREAM_DEFAULT_BRANCH_ID, default 1).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory of the server (env PUSHSTREAM_DATA_DIR, default ./pushstream-data).",
)
@client_errors
def rejected(*, source: str, sink: str, limit: int, output: str, branch_id: int | None, data_dir: Path | None) -> None:
    """The last rows of SINK (of SOURCE) that the target database refused, with
    the reason (e.g. PostgreSQL refuses a NUL character in text, or a constraint
    added to the table does not allow a value).

    The rest of their files is imported; refused rows are kept in the server's
    data dir (rejected/<branch>/<source>/<sink>/<file>.ndjson, one JSON object per
    row) until you remove them, and counted in the sink's statistics
    ("rejected"). Reads the data dir directly: give it the server's --data-dir.

    \b
    Examples:
      pushstream rejected events clicks
      pushstream rejected events clicks -n 1000 -o ndjson > refused.ndjson
    """
    import orjson

    from pushstream.client import render
    from pushstream.config import load_config
    from pushstream.errors import ConfigError
    from pushstream.storage.layout import Layout, SinkKey
    from pushstream.storage.rejected import read_rejected

    try:
        config = load_config(data_dir=data_dir)
    except ConfigError as exc:
        raise Failure(str(exc), 2) from None
    key = SinkKey(branch_id or config.default_branch_id, source, sink)
    found = list(read_rejected(Layout(config.data_dir).rejected_dir.joinpath(*key.parts())))
    found = found[-limit:] if limit else []
    if output == "table":
        rows = [(r["fileId"], r["rejectedAt"], r["reason"], orjson.dumps(r["row"]).decode()) for r in found]
        out(render.rows_text("table", ["fileId", "rejectedAt", "reason", "row"], rows))
    elif output == "json":
        out(render.json_text(found))
    else:
        out(render.ndjson_text(found))


def _missing_table_text(table: str, tables: list[str]) -> str:
    """The error of ``tail`` of a missing table: the close names first, then every table."""
    from pushstream.client.api import close_names

    text = f'table "{table}" does not exist'
    close = close_names(table, tables)
    if close:
        text += "; did you mean " + " or ".join(f'"{name}"' for name in close) + "?"
    if tables:
        text += "\ntables: " + ", ".join(tables)
    else:
        text += " (no table has been imported yet)"
    return text
