"""The ``pushstream`` command line: the group and ``serve`` here (what it runs is in
:mod:`pushstream.serving`), every other command in :mod:`pushstream.client.commands`.

Exit codes: 0 success, 1 usage error, 2 input error (a file, stdin or a
configuration value that is not valid; records the server rejected), 3 server or
network error. Messages go to stderr, data to stdout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pushstream import logs
from pushstream.catalog.settings import format_size
from pushstream.client.commands import COMMANDS, ExitCodeGroup, server_config
from pushstream.client.commands.common import DATA_DIR, DATA_DIR_HELP
from pushstream.config import FRONTS, ServerConfig, env_variable, parse_size_flag
from pushstream.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


@click.group(cls=ExitCodeGroup)
@click.version_option(package_name="pushstream")
def main() -> None:
    """pushstream: push events over HTTP or from files; rows on disk in milliseconds,
    imported into database tables in batches. Speaks Keboola's Stream API.

    \b
    Quick start:
      export PUSHSTREAM_API_TOKEN=change-me
      pushstream serve --data-dir ./data &
      pushstream sources create events
      pushstream sinks create events clicks --table in.c-web.clicks \\
        --column id:uuid --column at:datetime --column user:path:user.id
      pushstream ingest events clicks.ndjson
      pushstream flush events
      pushstream tail in.c-web.clicks --data-dir ./data

    Exit codes: 0 ok, 1 usage error, 2 input error, 3 server or network error.
    """


def _size_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size_flag(f"--{param.name}".replace("_", "-"), value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


_FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ServerConfig)}


def _server_option(
    flag: str, help_text: str, *, field: str | None = None, dest: str | None = None, **attrs: Any
) -> Callable[[F], F]:
    """An option of ``serve`` that sets the :class:`ServerConfig` field named like it
    (or ``field``). In ``help_text``, ``{env}`` stands for its environment variable
    and ``{default}`` for the field's default (sizes with their unit)."""
    name = field or flag.removeprefix("--").replace("-", "_")
    default: Any = _FIELD_DEFAULTS.get(name)
    shown = format_size(default) if attrs.get("callback") is _size_callback else default
    text = help_text.format(env=f"env {env_variable(name)}", default=shown)
    declarations = (flag, dest) if dest else (flag,)
    return click.option(*declarations, help=text, **attrs)


#: The options of ``serve``, in the order of its ``--help``.
_SERVE_OPTIONS = (
    _server_option("--data-dir", DATA_DIR_HELP, type=DATA_DIR),
    _server_option("--host", "Address to listen on ({env}, default {default})."),
    _server_option("--port", "Port to listen on ({env}, default {default}).", type=int),
    _server_option(
        "--workers",
        "Worker processes ({env}, default {default}); a worker that dies is started again.",
        type=click.IntRange(min=1),
    ),
    _server_option("--project-id", "Project id ({env}, default {default}).", type=click.IntRange(min=1)),
    _server_option(
        "--default-branch-id", 'Id of the "default" branch ({env}, default {default}).', type=click.IntRange(min=1)
    ),
    _server_option("--api-public-url", "Public URL of the API ({env})."),
    _server_option("--source-public-url", "Public URL of sources ({env})."),
    _server_option(
        "--api-token",
        "An admin token accepted from the start ({env}; prefer the variable, "
        "flags are visible to other users of the machine).",
    ),
    _server_option(
        "--setting",
        "Operator override of a setting of every source and sink, protected keys included "
        "(repeatable; {env} as a JSON object).",
        field="settings",
        dest="setting_flags",
        multiple=True,
        metavar="KEY=VALUE",
    ),
    _server_option(
        "--threads",
        "Threads per worker that process ingest requests; the API has threads of its own ({env}, default {default}).",
        type=click.IntRange(min=1),
    ),
    _server_option(
        "--target",
        "Destination database: sqlite:///path or postgresql://user:pass@host/db "
        "({env}, default sqlite:///<data dir>/tables.sqlite).",
    ),
    _server_option(
        "--cluster",
        "Cluster mode: keep the configuration, the storage state and the statistics in PostgreSQL, "
        "shared by every node: postgresql://user:pass@host/db, in the schema named by ?schema=NAME "
        "(default pushstream) ({env}; default: state.sqlite in the data dir, one node).",
    ),
    _server_option(
        "--max-record-size",
        "Largest accepted event (a body, an NDJSON line, a CSV row), at most 4MB ({env}, default {default}).",
        callback=_size_callback,
    ),
    _server_option(
        "--max-batch-size",
        "Largest NDJSON / CSV batch request ({env}, default {default}).",
        callback=_size_callback,
    ),
    _server_option(
        "--max-header-size",
        "Largest request headers on /stream/..., at most 1MB ({env}, default {default}).",
        callback=_size_callback,
    ),
    _server_option(
        "--trust-proxy",
        "Take the client IP from X-Forwarded-For (only behind a trusted proxy; {env}).",
        is_flag=True,
        default=None,
    ),
    _server_option(
        "--import-retry-base",
        "Seconds before the first retry of a failed import, x4 per attempt up to 3h ({env}, default {default:g}).",
        type=click.FloatRange(min=0.001),
    ),
    _server_option(
        "--import-concurrency",
        "Imports at once, each into a different table; one long import then holds up neither the "
        "others nor the upload of slices ({env}, default 1 into SQLite, 4 into PostgreSQL).",
        type=click.IntRange(min=1),
    ),
    _server_option(
        "--body-timeout",
        "Seconds a client may take to send a request body once its headers arrived; slower requests "
        "get 408 and are dropped ({env}, default {default:g}).",
        type=click.FloatRange(min=0.001),
    ),
    _server_option(
        "--idle-timeout",
        "Seconds a connection may stay open without sending complete request headers, also between "
        "the requests of a keep-alive connection ({env}, default {default:g}).",
        type=click.FloatRange(min=1),
    ),
    _server_option(
        "--max-ingest-requests",
        "Ingest requests received or processed at once per worker; more get 503 with Retry-After "
        "({env}, default {default}).",
        type=click.IntRange(min=1),
    ),
    _server_option(
        "--front",
        "guarded (default): bodies are received on the event loop with --body-timeout, the ingest cap "
        "and exact-length checks; direct: the WSGI server calls the app (about twice the single events/s), "
        "only behind a reverse proxy that buffers whole request bodies, e.g. nginx ({env}).",
        type=click.Choice(FRONTS),
    ),
    _server_option(
        "--staging",
        "Shared staging of the slices of every node: s3://bucket/prefix (endpoint, region and credentials "
        "from the AWS_* variables) or file:///path on a directory every node mounts ({env}, default: "
        "staging/ in the data dir).",
    ),
    _server_option(
        "--node-name",
        "This node's name among the nodes sharing staging ({env}, default: made from the host name once "
        "and kept in the data dir).",
    ),
    _server_option(
        "--access-log",
        "Write one JSON line per request to stdout: time, method, path (secret redacted), status, bytes, "
        "duration, client IP ({env}; off by default).",
        is_flag=True,
        default=None,
    ),
    _server_option(
        "--metrics-token",
        "Require this bearer token on GET /metrics (Authorization: Bearer ...); without it /metrics is "
        "open, as Prometheus scrapes by default ({env}).",
    ),
)


def _serve_options(fn: F) -> F:
    for option in reversed(_SERVE_OPTIONS):
        fn = option(fn)
    return fn


@main.command()
@_serve_options
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level.",
)
def serve(setting_flags: tuple[str, ...], log_level: str, **flags: Any) -> None:
    """Run the server: the Stream API (/v1) and the receiver (/stream/...) on one port,
    plus the coordinator that imports batches into the target database.

    Stops gracefully on SIGTERM or Ctrl+C: in-flight requests finish, slices are
    synced and closed.

    \b
    Example:
      PUSHSTREAM_API_TOKEN=secret pushstream serve --port 8000 --data-dir ./data
    """
    from pushstream.serving import ServeError, prepare_serve, run_server

    config = server_config(setting_flags=setting_flags, **flags)
    try:
        config = prepare_serve(config)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None
    logs.configure(log_level)
    click.echo(f"pushstream: serving {config.api_url} (data dir {config.data_dir.resolve()})", err=True)
    run_server(config, log_level)


for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
