"""The client commands of the ``pushstream`` command line (kamu style): ``ingest``
files or stdin into a source, ``tail`` a table, manage ``sources`` and ``sinks``,
``flush`` what waits for import.

They talk to a running server (``--url`` / ``PUSHSTREAM_URL``, token from
``PUSHSTREAM_API_TOKEN``), except ``tail``, which reads the target database
directly. Dependencies beyond click are imported inside the commands, so loading
the command line stays cheap for ``serve``.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pushstream.client.errors import EXIT_USAGE, ClientError, UsageError

if TYPE_CHECKING:
    from pushstream.client.api import StreamApi
    from pushstream.client.inputs import InputSet

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "http://127.0.0.1:8000"
_OUTPUT_CHOICES = ("table", "json")


class Failure(click.ClickException):
    """An error message (``Error: ...`` on stderr) with the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ExitCodeGroup(click.Group):
    """Click's group with this command line's exit codes: a usage error exits with 1
    (click's own is 2, which here means an input error)."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Runs the command line and exits (see :class:`click.Group.main`)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            exc.exit_code = EXIT_USAGE
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _client_errors(fn: F) -> F:
    """Turns client errors into messages with their exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            raise click.UsageError(exc.message) from None
        except ClientError as exc:
            raise Failure(exc.message, exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _api_options(fn: F) -> F:
    """``--url``, ``--token`` and ``--branch``, shared by the commands that call the API."""
    fn = click.option(
        "--branch",
        default="default",
        show_default=True,
        help="Branch id (default: the server's default branch).",
    )(fn)
    fn = click.option(
        "--token",
        envvar="PUSHSTREAM_API_TOKEN",
        show_envvar=True,
        help="API token (prefer the variable: flags are visible to other users of the machine).",
    )(fn)
    fn = click.option(
        "--url",
        envvar="PUSHSTREAM_URL",
        show_envvar=True,
        default=DEFAULT_URL,
        show_default=True,
        help="Base URL of the server.",
    )(fn)
    return fn


@contextmanager
def _api(url: str, token: str | None, branch: str) -> Iterator[StreamApi]:
    from pushstream.client.api import StreamApi

    if not token:
        raise UsageError("no API token: set PUSHSTREAM_API_TOKEN (or pass --token)")
    with StreamApi(url, token, branch=branch) as api:
        yield api


def _out(text: str) -> None:
    click.echo(text, nl=False)


def _note(text: str) -> None:
    click.echo(text, err=True)


# ingest


def _size_option(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from pushstream.config import parse_size_flag
    from pushstream.errors import ConfigError

    try:
        size = parse_size_flag(f"--{param.name}".replace("_", "-"), value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    if size < 1024:
        raise click.BadParameter(f"must be at least 1KB, found {value}")
    return size


class _Display:
    """The progress bar of ``ingest`` (rich, on stderr), only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        self._records = 0
        self._lock: Any = None

    def start(self, description: str, total: int | None, *, records: bool = True) -> None:
        """A bar of bytes (``total`` or unknown), with records and their rate when ``records``."""
        if not self.enabled:
            return
        import threading

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class RecordRate(ProgressColumn):
            def render(self, task: Any) -> Text:
                elapsed = task.elapsed or 0.0
                rate = task.fields.get("records", 0) / elapsed if elapsed > 0 else 0.0
                return Text(f"{rate:,.0f} records/s", style="progress.data.speed")

        self.stop()
        self._lock = threading.Lock()
        self._records = 0
        columns: list[Any] = [TextColumn("{task.description:<8}"), BarColumn()]
        if records:
            columns.append(TextColumn("{task.fields[records]:,} records"))
        columns += [DownloadColumn(), TransferSpeedColumn()]
        if records:
            columns.append(RecordRate())
        columns.append(TimeRemainingColumn())
        self._progress = Progress(*columns, console=Console(stderr=True))
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, records=0)

    def advance(self, records: int, size: int) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._records += records
            self._progress.update(self._task, advance=size, records=self._records)

    def read(self, size: int) -> None:
        self.advance(0, size)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@click.command()
@click.argument("source")
@click.argument("files", nargs=-1)
@click.option("--stdin", "use_stdin", is_flag=True, help="Read the records from standard input instead of files.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "json", "csv"]),
    help="Format of the input; default from the file name (.ndjson/.jsonl, .json, .csv, also .gz/.zst), "
    "ndjson for stdin.",
)
@click.option(
    "--batch-size",
    metavar="SIZE",
    default="4MB",
    show_default=True,
    callback=_size_option,
    help="Largest request: bytes, or with a unit (512KB, 4MB). The server takes up to 16MB unless started "
    "with another --max-batch-size; when it says a batch is too large, the batch is split.",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Concurrent connections. With more than 1, batches may land in another order than in the input.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 100),
    default=5,
    show_default=True,
    help="Retries of a batch after a network error or a 5xx answer, with exponential backoff.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option("--dry-run", is_flag=True, help="Read and check the input only; send nothing (no server needed).")
@_api_options
@_client_errors
def ingest(
    *,
    source: str,
    files: tuple[str, ...],
    use_stdin: bool,
    fmt: str | None,
    batch_size: int,
    parallel: int,
    retries: int,
    quiet: bool,
    dry_run: bool,
    url: str,
    token: str | None,
    branch: str,
) -> None:
    """Push the records of FILES (or of stdin) into SOURCE of a running server.

    NDJSON is sent as it is, one record per line; a JSON array becomes one record
    per element; a CSV file with a header row becomes one JSON object per row
    (values as strings), so path and template columns work on it. Compressed
    files (.gz, .zst) are read directly.

    Everything is read and checked before anything is sent: a bad line stops the
    command with the file, the line and the reason (exit code 2), and the server
    gets nothing. Records then go in NDJSON batches over several connections, with
    retries on network errors and 5xx answers. A retried batch may be stored twice
    if the first attempt reached the server: a primary key on the sink removes
    such duplicates.

    \b
    Examples:
      pushstream ingest events clicks.ndjson
      pushstream ingest events 2024-*.csv.gz orders.json
      cat events.jsonl | pushstream ingest events --stdin
      curl -s https://example.com/export.csv | pushstream ingest events --stdin --format csv
      pushstream ingest events big.ndjson.zst --dry-run     # check only

    \b
    Exit codes: 0 all records acknowledged, 1 usage error, 2 invalid input or
    records the server rejected, 3 server or network error.
    """
    from pushstream.client.inputs import STDIN_NAME, prepare_inputs, sniff_compression
    from pushstream.client.sender import Sender

    names = list(files)
    if "-" in names:
        if len(names) > 1:
            raise UsageError('"-" (stdin) cannot be combined with files')
        names, use_stdin = [], True
    if use_stdin and names:
        raise UsageError("give either FILES or --stdin, not both")
    if not use_stdin and not names:
        raise UsageError("nothing to ingest: give FILES or --stdin")
    display = _Display(enabled=not quiet and sys.stderr.isatty())
    ingest_url = ""
    if not dry_run:
        ingest_url = _ingest_url(url, token, branch, source, quiet=quiet)
    try:
        plain = all(sniff_compression(Path(n)) is None for n in names if Path(n).is_file())
        total = sum(Path(n).stat().st_size for n in names if Path(n).is_file())
    except OSError:
        plain, total = False, 0
    display.start("checking", total if names and plain else None, records=False)
    started = time.perf_counter()
    if use_stdin and sys.stdin.isatty() and not quiet:
        _note("reading records from the terminal (end with Ctrl-D)")
    inputs: InputSet
    try:
        inputs = prepare_inputs(
            names,
            stdin=sys.stdin.buffer if use_stdin else None,
            fmt=fmt,
            progress=display.read,
            chunk_size=batch_size,
        )
    finally:
        display.stop()
    count = len(inputs.inputs)
    what = STDIN_NAME if use_stdin else _plural(count, "file")
    with inputs:
        if dry_run:
            if not quiet:
                _note(
                    f"checked {_plural(inputs.records, 'record')} ({_bytes(inputs.size)}) from {what}: "
                    "nothing sent (--dry-run)"
                )
            return
        display.start("sending", inputs.size)
        sender = Sender(ingest_url, batch_size=batch_size, parallel=parallel, retries=retries, progress=display.advance)
        try:
            result = sender.send(inputs)
        except ClientError as exc:
            display.stop()
            done = sender.result
            exc.message += f"\n{done.records:,} of {inputs.records:,} records had been acknowledged by the server" + (
                " (the rest was not sent)" if done.records < inputs.records else ""
            )
            raise
        finally:
            display.stop()
    if not quiet:
        seconds = time.perf_counter() - started
        retried = f", {_plural(result.retries, 'retry', 'retries')}" if result.retries else ""
        rate = inputs.records / seconds if seconds > 0 else 0.0
        _note(
            f"ingested {_plural(inputs.records, 'record')} ({_bytes(result.bytes)}) from {what} "
            f'into source "{source}" in {seconds:.2f} s ({rate:,.0f} records/s, '
            f"{_plural(result.batches, 'request')}{retried})"
        )


def _ingest_url(url: str, token: str | None, branch: str, source: str, *, quiet: bool) -> str:
    """The ingest URL of a source, checked to take events (before the input is read)."""
    with _api(url, token, branch) as api:
        found = api.source(source)
        ingest_url = (found.get("http") or {}).get("url")
        if not ingest_url:
            raise ClientError(f'source "{source}" has no ingest URL (type "{found.get("type")}")')
        if found.get("disabled"):
            raise ClientError(f'source "{source}" is disabled: enable it first')
        sinks = api.list_all(api.source_path(source) + "/sinks", "sinks")
    if not any(not sink.get("disabled") for sink in sinks) and not quiet:
        _note(f'warning: source "{source}" has no enabled sink, the server keeps nothing it receives')
    return str(ingest_url)


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def _bytes(size: int) -> str:
    """Decimal units, like the progress bar."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


# tail


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
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory of the server (env PUSHSTREAM_DATA_DIR, default ./pushstream-data).",
)
@click.option(
    "--target",
    help="Target database, as given to serve (env PUSHSTREAM_TARGET, default sqlite:///<data dir>/tables.sqlite).",
)
@_client_errors
def tail(*, table: str, limit: int, skip: int, output: str, data_dir: Path | None, target: str | None) -> None:
    """The last rows of TABLE (in.c-bucket.table) in import order, oldest first.

    Reads the target database directly, so it works while the server runs; give it
    the server's --data-dir / --target (or the same environment variables).
    Only imported rows are shown: `pushstream flush` imports what waits.

    \b
    Examples:
      pushstream tail in.c-web.clicks
      pushstream tail in.c-web.clicks -n 100 --skip 10 -o csv > rows.csv
      pushstream tail in.c-web.clicks -o ndjson --target postgresql://pushstream@db/pushstream
    """
    from pushstream.client import render
    from pushstream.config import load_config
    from pushstream.errors import ConfigError
    from pushstream.targets.base import TargetError, open_target, parse_table_id

    try:
        parse_table_id(table)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        config = load_config(data_dir=data_dir, target=target)
    except ConfigError as exc:
        raise Failure(str(exc), 2) from None
    url = config.target
    if url is None or url.startswith("sqlite:"):
        path = (
            config.data_dir / "tables.sqlite" if url in (None, "sqlite:", "sqlite://") else Path(url.split("://", 1)[1])
        )
        if not path.is_file():
            # Opening would create an empty database; say what is missing instead.
            raise ClientError(f"no target database at {path} (nothing imported yet, or another --data-dir?)")
    try:
        opened = open_target(url, config.data_dir)
        try:
            columns, rows = opened.tail(table, limit=limit, skip=skip)
        finally:
            opened.close()
    except TargetError as exc:
        raise ClientError(str(exc)) from None
    _out(render.rows_text(output, columns, rows))


# rejected


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
@_client_errors
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
        _out(render.rows_text("table", ["fileId", "rejectedAt", "reason", "row"], rows))
    elif output == "json":
        _out(render.json_text(found))
    else:
        _out(render.ndjson_text(found))


# sources


@click.group()
def sources() -> None:
    """List, create, show and delete sources (HTTP endpoints that take events).

    \b
    Examples:
      pushstream sources create events --description "web events"
      pushstream sources list
      pushstream sources show events -o json
      pushstream sources delete events
    """


def _state(entity: dict[str, Any]) -> str:
    if entity.get("deleted"):
        return "deleted"
    return "disabled" if entity.get("disabled") else "enabled"


def _version(entity: dict[str, Any]) -> str:
    version = entity.get("version") or {}
    by = version.get("by") or {}
    who = by.get("tokenDesc") or by.get("userName") or by.get("tokenId") or by.get("type") or ""
    text = f"{version.get('number', '')} at {version.get('at', '')}"
    return text + (f" by {who}" if who else "")


def _fields(pairs: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in pairs) + 1
    return "".join(f"{k + ':':<{width}} {'' if v is None else v}\n" for k, v in pairs)


def _output_option(fn: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(_OUTPUT_CHOICES),
        default="table",
        show_default=True,
        help="Readable text or the API's JSON.",
    )(fn)


@sources.command("list")
@_output_option
@_api_options
@_client_errors
def sources_list(output: str, url: str, token: str | None, branch: str) -> None:
    """List the sources of the branch."""
    from pushstream.client import render

    with _api(url, token, branch) as api:
        items = api.list_all(api.sources_path(), "sources")
    if output == "json":
        _out(render.json_text(items))
        return
    if not items:
        _note("no sources")
        return
    rows = [
        [s.get("sourceId"), s.get("name"), _state(s), (s.get("version") or {}).get("number"), s.get("description")]
        for s in items
    ]
    _out(render.plain_table(["id", "name", "state", "version", "description"], rows))


def _show_source(api: StreamApi, source: dict[str, Any], output: str) -> None:
    from pushstream.client import render

    sinks = api.list_all(api.source_path(source["sourceId"]) + "/sinks", "sinks")
    if output == "json":
        _out(render.json_text(source))
        return
    pairs: list[tuple[str, Any]] = [
        ("id", source.get("sourceId")),
        ("name", source.get("name")),
        ("description", source.get("description") or ""),
        ("type", source.get("type")),
        ("state", _state(source)),
        ("url", (source.get("http") or {}).get("url")),
        ("version", _version(source)),
        ("created", (source.get("created") or {}).get("at")),
    ]
    if sinks:
        pairs.append(("sinks", ", ".join(f"{s['sinkId']} → {(s.get('table') or {}).get('tableId')}" for s in sinks)))
    else:
        pairs.append(("sinks", "none (create one with: pushstream sinks create)"))
    _out(_fields(pairs))


@sources.command("create")
@click.argument("name")
@click.option("--id", "source_id", help="Source id (default: from the name, kebab-case).")
@click.option("--description", default="", help="What the source is for.")
@_output_option
@_api_options
@_client_errors
def sources_create(
    *, name: str, source_id: str | None, description: str, output: str, url: str, token: str | None, branch: str
) -> None:
    """Create an HTTP source NAME and print it, with its ingest URL.

    \b
    Examples:
      pushstream sources create events
      pushstream sources create "Web Events" --id web --description "from the shop"
    """
    body: dict[str, Any] = {"type": "http", "name": name, "description": description}
    if source_id:
        body["sourceId"] = source_id
    with _api(url, token, branch) as api:
        task = api.run_task("POST", api.sources_path(), json=body)
        created_id = str((task.get("outputs") or {}).get("sourceId") or source_id)
        created = api.source(created_id)
        _note(f'source "{created["sourceId"]}" created')
        _show_source(api, created, output)


@sources.command("show")
@click.argument("source")
@_output_option
@_api_options
@_client_errors
def sources_show(source: str, output: str, url: str, token: str | None, branch: str) -> None:
    """Show SOURCE: its state, ingest URL, version and sinks."""
    with _api(url, token, branch) as api:
        _show_source(api, api.source(source), output)


@sources.command("delete")
@click.argument("source")
@click.option(
    "--purge",
    is_flag=True,
    help="Delete for good, with its sinks (default: a soft delete that `undelete` in the API can reverse).",
)
@_api_options
@_client_errors
def sources_delete(source: str, purge: bool, url: str, token: str | None, branch: str) -> None:
    """Delete SOURCE and its sinks."""
    with _api(url, token, branch) as api:
        api.run_task("DELETE", api.source_path(source), params={"cascade": "true"} if purge else None)
    _note(f'source "{source}" deleted' + (" for good" if purge else ""))


# sinks


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


_COLUMN_TYPES = ("uuid", "id", "datetime", "ip", "body", "headers", "path", "template")


def parse_column(spec: str) -> dict[str, Any]:
    """``name:type[:arg]`` → a column definition of the Stream API. ``arg`` is the
    path of a ``path`` column (default: the name) or the Jsonnet of a ``template``."""
    name, sep, rest = spec.partition(":")
    kind, _, arg = rest.partition(":")
    kind = kind.strip().lower()
    if not sep or not name or kind not in _COLUMN_TYPES:
        raise UsageError(
            f'invalid --column "{spec}": expected NAME:TYPE[:ARG] with TYPE one of {", ".join(_COLUMN_TYPES)}'
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
@_output_option
@_api_options
@_client_errors
def sinks_list(source: str, output: str, url: str, token: str | None, branch: str) -> None:
    """List the sinks of SOURCE."""
    from pushstream.client import render

    with _api(url, token, branch) as api:
        items = api.list_all(api.source_path(source) + "/sinks", "sinks")
    if output == "json":
        _out(render.json_text(items))
        return
    if not items:
        _note(f'source "{source}" has no sinks')
        return
    rows = []
    for s in items:
        table = s.get("table") or {}
        columns = (table.get("mapping") or {}).get("columns") or []
        rows.append([s.get("sinkId"), s.get("name"), table.get("tableId"), _state(s), len(columns)])
    _out(render.plain_table(["id", "name", "table", "state", "columns"], rows))


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
        _out(render.json_text(sink))
        return
    table = sink.get("table") or {}
    columns = (table.get("mapping") or {}).get("columns") or []
    pairs: list[tuple[str, Any]] = [
        ("id", sink.get("sinkId")),
        ("source", sink.get("sourceId")),
        ("name", sink.get("name")),
        ("description", sink.get("description") or ""),
        ("table", table.get("tableId")),
        ("state", _state(sink)),
        ("version", _version(sink)),
        ("created", (sink.get("created") or {}).get("at")),
        ("columns", len(columns)),
    ]
    rows = [[c.get("name"), c.get("type"), "yes" if c.get("primaryKey") else "", _column_details(c)] for c in columns]
    _out(_fields(pairs) + render.box_table(["name", "type", "key", "details"], rows))


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
@_output_option
@_api_options
@_client_errors
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
    with _api(url, token, branch) as api:
        task = api.run_task("POST", api.source_path(source) + "/sinks", json=body)
        created_id = str((task.get("outputs") or {}).get("sinkId") or sink_id)
        if patch:
            api.run_task("PATCH", api.sink_path(source, created_id) + "/settings", json={"settings": patch})
        created = api.sink(source, created_id)
    _note(f'sink "{created["sinkId"]}" of source "{source}" created')
    _show_sink(created, output)


@sinks.command("show")
@click.argument("source")
@click.argument("sink")
@_output_option
@_api_options
@_client_errors
def sinks_show(*, source: str, sink: str, output: str, url: str, token: str | None, branch: str) -> None:
    """Show SINK of SOURCE: its table, state, version and columns."""
    with _api(url, token, branch) as api:
        _show_sink(api.sink(source, sink), output)


@sinks.command("delete")
@click.argument("source")
@click.argument("sink")
@_api_options
@_client_errors
def sinks_delete(source: str, sink: str, url: str, token: str | None, branch: str) -> None:
    """Delete SINK of SOURCE (its table and imported rows stay)."""
    with _api(url, token, branch) as api:
        api.run_task("DELETE", api.sink_path(source, sink))
    _note(f'sink "{sink}" of source "{source}" deleted')


# flush


@click.command()
@click.argument("source", required=False)
@click.argument("sink", required=False)
@click.option(
    "--wait",
    type=click.FloatRange(0, 600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the imports (0: start them and return).",
)
@_output_option
@_api_options
@_client_errors
def flush(
    *, source: str | None, sink: str | None, wait: float, output: str, url: str, token: str | None, branch: str
) -> None:
    """Import now what waits: close the files being written for SOURCE (or one SINK
    of it; every source when none is given) and wait until they are in their tables.

    Exits with 3 when an import failed or did not finish within --wait (the files
    stay and are retried).

    \b
    Examples:
      pushstream flush
      pushstream flush events
      pushstream flush events clicks --wait 120
    """
    from pushstream.client import render

    results = []
    with _api(url, token, branch) as api:
        if source is None:
            source_ids = [s["sourceId"] for s in api.list_all(api.sources_path(), "sources")]
        else:
            source_ids = [source]
        for source_id in source_ids:
            path = (api.sink_path(source_id, sink) if sink else api.source_path(source_id)) + "/flush"
            results.append(api.request("POST", path, params={"wait": f"{wait:g}"}, timeout=wait + 60))
    if output == "json":
        _out(render.json_text(results if source is None else results[0]))
    else:
        rows = []
        for result in results:
            for item in result.get("files") or []:
                state = item.get("state", "")
                if "retryReason" in item:
                    state += f" (attempt {item.get('retryAttempt')} failed: {item['retryReason']})"
                rows.append([result.get("sourceId"), item.get("sinkId"), item.get("fileId"), state])
        if rows:
            _out(render.plain_table(["source", "sink", "file", "state"], rows))
    files = [item for result in results for item in result.get("files") or []]
    failed = [item for item in files if "retryReason" in item]
    waiting = [item for item in files if item.get("state") != "imported" and "retryReason" not in item]
    if failed:
        reasons = "; ".join(f'sink "{i.get("sinkId")}": {i["retryReason"]}' for i in failed)
        raise Failure(f"{len(failed)} file(s) could not be imported, they stay and are retried: {reasons}", 3)
    if waiting and wait > 0:
        raise Failure(f"{len(waiting)} file(s) not imported yet after {wait:g} s (still importing)", 3)
    if not files:
        _note("nothing to flush")
    elif waiting:
        _note(f"{len(files)} file(s) closed, importing")
    else:
        _note(f"{len(files)} file(s) imported")


#: The commands :mod:`pushstream.cli` adds to the ``pushstream`` group.
CLIENT_COMMANDS = (ingest, tail, rejected, sources, sinks, flush)
