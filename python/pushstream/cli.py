"""The ``pushstream`` command line: ``serve`` and ``token`` here, the client
commands (``ingest``, ``tail``, ``sources``, ``sinks``, ``flush``) in
:mod:`pushstream.client.commands`.

Exit codes: 0 success, 1 usage error, 2 input error (a file, stdin or a
configuration value that is not valid; records the server rejected), 3 server or
network error. Messages go to stderr, data to stdout.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from pushstream import logs
from pushstream.client.commands import CLIENT_COMMANDS, ExitCodeGroup, Failure
from pushstream.client.errors import EXIT_INPUT
from pushstream.config import ServerConfig, load_config, parse_size_flag
from pushstream.errors import ConfigError, StoreError

_DATA_DIR_HELP = "Data directory (env PUSHSTREAM_DATA_DIR, default ./pushstream-data)."


def _size(name: str, value: str) -> int:
    try:
        return parse_size_flag("--" + name.replace("_", "-"), value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _config(**flags: Any) -> ServerConfig:
    try:
        return load_config(**flags)
    except ConfigError as exc:
        # A value of a flag or variable that is not valid: an input error.
        raise Failure(str(exc), EXIT_INPUT) from None


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


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option("--host", help="Address to listen on (env PUSHSTREAM_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (env PUSHSTREAM_PORT, default 8000).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes (env PUSHSTREAM_WORKERS, default 1); a worker that dies is started again.",
)
@click.option("--project-id", type=click.IntRange(min=1), help="Project id (env PUSHSTREAM_PROJECT_ID, default 1).")
@click.option(
    "--default-branch-id",
    type=click.IntRange(min=1),
    help='Id of the "default" branch (env PUSHSTREAM_DEFAULT_BRANCH_ID, default 1).',
)
@click.option("--api-public-url", help="Public URL of the API (env PUSHSTREAM_API_PUBLIC_URL).")
@click.option("--source-public-url", help="Public URL of sources (env PUSHSTREAM_SOURCE_PUBLIC_URL).")
@click.option(
    "--api-token",
    help="An admin token accepted from the start (env PUSHSTREAM_API_TOKEN; prefer the variable, "
    "flags are visible to other users of the machine).",
)
@click.option(
    "--setting",
    "setting_flags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Operator override of a setting of every source and sink, protected keys included "
    "(repeatable; env PUSHSTREAM_SETTINGS as a JSON object).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Threads per worker that process ingest requests; the API has threads of its own "
    "(env PUSHSTREAM_THREADS, default 64).",
)
@click.option(
    "--target",
    help="Destination database: sqlite:///path or postgresql://user:pass@host/db "
    "(env PUSHSTREAM_TARGET, default sqlite:///<data dir>/tables.sqlite).",
)
@click.option(
    "--max-record-size",
    callback=lambda ctx, param, value: None if value is None else _size(param.name, value),
    help="Largest accepted event (a body, an NDJSON line, a CSV row), at most 4MB "
    "(env PUSHSTREAM_MAX_RECORD_SIZE, default 1MB).",
)
@click.option(
    "--max-batch-size",
    callback=lambda ctx, param, value: None if value is None else _size(param.name, value),
    help="Largest NDJSON / CSV batch request (env PUSHSTREAM_MAX_BATCH_SIZE, default 16MB).",
)
@click.option(
    "--max-header-size",
    callback=lambda ctx, param, value: None if value is None else _size(param.name, value),
    help="Largest request headers on /stream/..., at most 1MB (env PUSHSTREAM_MAX_HEADER_SIZE, default 64KB).",
)
@click.option(
    "--trust-proxy",
    is_flag=True,
    default=None,
    help="Take the client IP from X-Forwarded-For (only behind a trusted proxy; env PUSHSTREAM_TRUST_PROXY).",
)
@click.option(
    "--import-retry-base",
    type=click.FloatRange(min=0.001),
    help="Seconds before the first retry of a failed import, x4 per attempt up to 3h "
    "(env PUSHSTREAM_IMPORT_RETRY_BASE, default 120).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.001),
    help="Seconds a client may take to send a request body once its headers arrived; slower requests "
    "get 408 and are dropped (env PUSHSTREAM_BODY_TIMEOUT, default 60).",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=1),
    help="Seconds a connection may stay open without sending complete request headers, also between "
    "the requests of a keep-alive connection (env PUSHSTREAM_IDLE_TIMEOUT, default 75).",
)
@click.option(
    "--max-ingest-requests",
    type=click.IntRange(min=1),
    help="Ingest requests received or processed at once per worker; more get 503 with Retry-After "
    "(env PUSHSTREAM_MAX_INGEST_REQUESTS, default 1024).",
)
@click.option(
    "--front",
    type=click.Choice(["guarded", "direct"]),
    help="guarded (default): bodies are received on the event loop with --body-timeout, the ingest cap "
    "and exact-length checks; direct: the WSGI server calls the app (about twice the single events/s), "
    "only behind a reverse proxy that buffers whole request bodies, e.g. nginx (env PUSHSTREAM_FRONT).",
)
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
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from pushstream.app import load_app, load_front, open_store
    from pushstream.coordinator.supervisor import CoordinatorSupervisor
    from pushstream.receiver.wsgi import HTTP_BUFFER_BYTES
    from pushstream.serving import ServeError, Server, clear_boards, ensure_port_free, lock_data_dir_for_serve
    from pushstream.targets.base import TargetError, open_target

    config = _config(setting_flags=setting_flags, **flags)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # Held until this process and its workers are gone: one server per data dir.
        lock_data_dir_for_serve(config.data_dir)
        ensure_port_free(config.host, config.port)
    except (OSError, ServeError) as exc:
        raise click.ClickException(str(exc)) from None
    # Create the store (schema, default branch) and an embedded target database
    # once, before the workers and the coordinator open them at the same moment.
    try:
        open_store(config).close()
        if config.target is None or config.target.startswith("sqlite:"):
            open_target(config.target, config.data_dir).close()
    except (OSError, StoreError, TargetError) as exc:
        raise click.ClickException(f"cannot open the data dir {config.data_dir}: {exc}") from None
    clear_boards(config.data_dir)
    logs.configure(log_level)
    click.echo(f"pushstream: serving {config.api_url} (data dir {config.data_dir.resolve()})", err=True)
    coordinator = CoordinatorSupervisor(config.to_json())
    coordinator.start()
    direct = config.front == "direct"
    server = Server(
        "pushstream.app:load_app" if direct else "pushstream.app:load_front",
        data_dir=config.data_dir,
        address=config.host,
        port=config.port,
        # guarded: the front (pushstream.receiver.front) receives bodies on the event
        # loop and runs the WSGI app on thread pools of its own (--threads ingest threads);
        # direct: granian's threads call the WSGI app and wait for the group commit.
        interface=Interfaces.WSGI if direct else Interfaces.ASGINL,
        blocking_threads=config.threads if direct else None,
        workers=config.workers,
        log_level=LogLevels(log_level),
        log_dictconfig=logs.dict_config(log_level),
        # Connections, not requests: room for the ingest requests of the gate plus API clients.
        backpressure=config.max_ingest_requests + 1024,
        # Headers over the receiver's limit must reach it to get a 413 (see HTTP_BUFFER_BYTES).
        http1_settings=HTTP1Settings(
            header_read_timeout=int(config.idle_timeout * 1000), max_buffer_size=HTTP_BUFFER_BYTES
        ),
        # A worker that dies (killed, out of memory, crashed) is started again under a
        # new node id; the coordinator recovers the slices of the dead one.
        respawn_failed_workers=True,
        # A worker that does not stop within this time after SIGTERM is killed.
        workers_kill_timeout=10,
    )
    try:
        loader = load_app if direct else load_front
        server.serve(target_loader=functools.partial(loader, config.to_json()), wrap_loader=False)
    finally:
        coordinator.stop()


@main.group()
def token() -> None:
    """Manage API tokens (stored as hashes in the data dir; works while the server runs).

    \b
    Examples:
      pushstream token create --data-dir ./data --description CI
      pushstream token list --data-dir ./data
      pushstream token delete --data-dir ./data 2
    """


def _store(data_dir: Path | None) -> Any:
    from pushstream.app import open_store

    config = _config(data_dir=data_dir)
    return open_store(config)


@token.command("create")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.option("--description", default="", help="What the token is for (shown in version history as tokenDesc).")
@click.option(
    "--role",
    type=click.Choice(["admin", "guest"]),
    default="admin",
    show_default=True,
    help="admin may change the configuration, guest may only read it.",
)
@click.option("--user-id", default="", help="User id shown in the history of changes.")
@click.option("--user-name", default="", help="User name shown in the history of changes.")
def token_create(data_dir: Path | None, description: str, role: str, user_id: str, user_name: str) -> None:
    """Create a token and print it (it cannot be shown again).

    \b
    Examples:
      export PUSHSTREAM_API_TOKEN=$(pushstream token create --data-dir ./data --description "CI")
      pushstream token create --data-dir ./data --role guest --description dashboard
    """
    store = _store(data_dir)
    try:
        created, secret = store.create_token(description, role, user_id, user_name)
    finally:
        store.close()
    click.echo(f"token {created.token_id} ({created.role}) created", err=True)
    click.echo(secret)


@token.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
def token_list(data_dir: Path | None) -> None:
    """List tokens (ids, roles and descriptions; the tokens themselves are not stored).

    \b
    Example:
      pushstream token list --data-dir ./data
    """
    store = _store(data_dir)
    try:
        tokens = store.list_tokens()
    finally:
        store.close()
    if not tokens:
        click.echo("no tokens", err=True)
        return
    click.echo(f"{'ID':<6} {'ROLE':<6} {'CREATED':<25} DESCRIPTION")
    for item in tokens:
        click.echo(f"{item.token_id:<6} {item.role:<6} {item.created_at:<25} {item.description}")


@token.command("delete")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_DIR_HELP)
@click.argument("token_id")
def token_delete(data_dir: Path | None, token_id: str) -> None:
    """Delete (revoke) a token by its id (see `pushstream token list`).

    \b
    Example:
      pushstream token delete --data-dir ./data 2
    """
    store = _store(data_dir)
    try:
        deleted = store.delete_token(token_id)
    finally:
        store.close()
    if not deleted:
        click.echo(f'token "{token_id}" not found', err=True)
        sys.exit(1)
    click.echo(f"token {token_id} deleted", err=True)


for _command in CLIENT_COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
