"""What the commands of the ``pushstream`` command line share: exit codes and error
messages, the options of the commands that call the Stream API (``--url``,
``--token``, ``--branch``, ``--output``), the client of the API, and the few
ways of writing an entity as text.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pushstream.client.errors import EXIT_INPUT, EXIT_USAGE, ClientError, UsageError

if TYPE_CHECKING:
    from pushstream.client.api import StreamApi
    from pushstream.config import ServerConfig

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "http://127.0.0.1:8000"
OUTPUT_CHOICES = ("table", "json")
#: The ``--data-dir`` of the commands that open the data dir, as ``serve`` takes it.
DATA_DIR = click.Path(file_okay=False, path_type=Path)
DATA_DIR_HELP = "Data directory (env PUSHSTREAM_DATA_DIR, default ./pushstream-data)."


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


def client_errors(fn: F) -> F:
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


def api_options(fn: F) -> F:
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
def open_api(url: str, token: str | None, branch: str) -> Iterator[StreamApi]:
    from pushstream.client.api import StreamApi

    if not token:
        raise UsageError("no API token: set PUSHSTREAM_API_TOKEN (or pass --token)")
    with StreamApi(url, token, branch=branch) as api:
        yield api


def out(text: str) -> None:
    click.echo(text, nl=False)


def note(text: str) -> None:
    click.echo(text, err=True)


def server_config(**flags: Any) -> ServerConfig:
    """The server's configuration from ``flags`` and the environment, as ``serve``
    reads it; a value that is not valid is an input error."""
    from pushstream.config import load_config
    from pushstream.errors import ConfigError

    try:
        return load_config(**flags)
    except ConfigError as exc:
        # A value of a flag or variable that is not valid: an input error.
        raise Failure(str(exc), EXIT_INPUT) from None


def entity_state(entity: dict[str, Any]) -> str:
    if entity.get("deleted"):
        return "deleted"
    return "disabled" if entity.get("disabled") else "enabled"


def version_text(entity: dict[str, Any]) -> str:
    version = entity.get("version") or {}
    by = version.get("by") or {}
    who = by.get("tokenDesc") or by.get("userName") or by.get("tokenId") or by.get("type") or ""
    text = f"{version.get('number', '')} at {version.get('at', '')}"
    return text + (f" by {who}" if who else "")


def fields_text(pairs: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in pairs) + 1
    return "".join(f"{k + ':':<{width}} {'' if v is None else v}\n" for k, v in pairs)


def output_option(fn: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUT_CHOICES),
        default="table",
        show_default=True,
        help="Readable text or the API's JSON.",
    )(fn)
