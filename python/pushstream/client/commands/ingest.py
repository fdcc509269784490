"""``pushstream ingest``: files or stdin, checked whole, then sent to a source's
ingest URL in NDJSON batches over several connections."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pushstream.client.commands.common import api_options, client_errors, note, open_api
from pushstream.client.errors import ClientError, UsageError

if TYPE_CHECKING:
    from pushstream.client.inputs import InputSet


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
@click.option(
    "--schema",
    metavar="'NAME TYPE, ...'",
    help="Types of CSV columns, kamu / SQL style, e.g. 't TIMESTAMP, lat DOUBLE, n BIGINT, ok BOOLEAN'. Each "
    "value of a named column is sent as a JSON value of its type (an empty field as null); columns not named "
    "stay strings, and the sinks' types are not used. TYPE (any case) → data type: STRING, TEXT, VARCHAR, CHAR, "
    "UTF8 → string; BIGINT, INT, INT8, INT16, INT32, INT64, SMALLINT, TINYINT, LONG → integer; DOUBLE, FLOAT, "
    "FLOAT32, FLOAT64, REAL → number; BOOLEAN, BOOL → boolean; TIMESTAMP, TIMESTAMPTZ, DATETIME → timestamp; "
    "DATE → date; JSON → json; the data type names themselves are taken too.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option("--dry-run", is_flag=True, help="Read and check the input only; send nothing (no server needed).")
@api_options
@client_errors
def ingest(
    *,
    source: str,
    files: tuple[str, ...],
    use_stdin: bool,
    fmt: str | None,
    batch_size: int,
    parallel: int,
    retries: int,
    schema: str | None,
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

    CSV values of typed columns are sent as JSON values of their type ("49.28" as
    49.28, "true" as true, an empty field as null), so CSV and NDJSON of the same
    data give the same rows. The types are those of --schema or else those the
    source's enabled sinks declare for path columns whose path is a CSV column
    name (total:path::number types the CSV column "total"); a CSV column that
    two sinks give different types stops the command (give its type with
    --schema).

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
      pushstream ingest trips trips.csv --schema 't TIMESTAMP, lat DOUBLE, lon DOUBLE, n BIGINT'

    \b
    Exit codes: 0 all records acknowledged, 1 usage error, 2 invalid input or
    records the server rejected, 3 server or network error.
    """
    from pushstream.client.csv_types import CsvTypes
    from pushstream.client.inputs import STDIN_NAME, prepare_inputs, sniff_compression
    from pushstream.client.stream import StreamClient

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
    csv_types = CsvTypes.from_schema(schema) if schema is not None else None
    ingest_url = ""
    if not dry_run:
        ingest_url, sinks = _ingest_target(url, token, branch, source, quiet=quiet)
        if csv_types is None:
            csv_types = CsvTypes.from_sinks(sinks)
    try:
        plain = all(sniff_compression(Path(n)) is None for n in names if Path(n).is_file())
        total = sum(Path(n).stat().st_size for n in names if Path(n).is_file())
    except OSError:
        plain, total = False, 0
    display.start("checking", total if names and plain else None, records=False)
    started = time.perf_counter()
    if use_stdin and sys.stdin.isatty() and not quiet:
        note("reading records from the terminal (end with Ctrl-D)")
    inputs: InputSet
    try:
        inputs = prepare_inputs(
            names,
            stdin=sys.stdin.buffer if use_stdin else None,
            fmt=fmt,
            progress=display.read,
            chunk_size=batch_size,
            csv_types=csv_types,
        )
    finally:
        display.stop()
    if schema is not None and not any(i.format == "csv" for i in inputs.inputs):
        inputs.close()
        raise UsageError("--schema types CSV input, and no input is CSV")
    count = len(inputs.inputs)
    what = STDIN_NAME if use_stdin else _plural(count, "file")
    with inputs:
        if dry_run:
            if not quiet:
                note(
                    f"checked {_plural(inputs.records, 'record')} ({_bytes(inputs.size)}) from {what}: "
                    "nothing sent (--dry-run)"
                )
            return
        display.start("sending", inputs.size)
        client = StreamClient(ingest_url, batch_size=batch_size, parallel=parallel, retries=retries)
        try:
            result = client.send_inputs(inputs, progress=display.advance)
        except ClientError as exc:
            display.stop()
            done = client.last_result
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
        note(
            f"ingested {_plural(inputs.records, 'record')} ({_bytes(result.bytes)}) from {what} "
            f'into source "{source}" in {seconds:.2f} s ({rate:,.0f} records/s, '
            f"{_plural(result.batches, 'request')}{retried})"
        )


def _ingest_target(
    url: str, token: str | None, branch: str, source: str, *, quiet: bool
) -> tuple[str, list[dict[str, Any]]]:
    """The ingest URL of a source, checked to take events (before the input is read), and its sinks."""
    with open_api(url, token, branch) as api:
        found = api.source(source)
        ingest_url = (found.get("http") or {}).get("url")
        if not ingest_url:
            raise ClientError(f'source "{source}" has no ingest URL (type "{found.get("type")}")')
        if found.get("disabled"):
            raise ClientError(f'source "{source}" is disabled: enable it first (pushstream sources enable {source})')
        sinks = api.list_all(api.source_path(source) + "/sinks", "sinks")
    if not any(not sink.get("disabled") for sink in sinks) and not quiet:
        note(f'warning: source "{source}" has no enabled sink, the server keeps nothing it receives')
    return str(ingest_url), sinks


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
