"""Errors of the client side: each knows the exit code of the command line.

| exit code | meaning |
|---|---|
| 0 | success |
| 1 | usage error (a malformed command line, a missing token, a choice left to the command line) |
| 2 | input error (a file or stdin that cannot be read or is not valid; records the server rejected) |
| 3 | server or network error (no connection, an error answer of the API, a failed import) |
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_INPUT = 2
EXIT_SERVER = 3


class ClientError(Exception):
    """Base class of client errors; ``exit_code`` is what the command line exits with."""

    exit_code = EXIT_SERVER

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ClientError):
    """A missing or contradictory option."""

    exit_code = EXIT_USAGE


class AmbiguityError(ClientError):
    """The server's configuration leaves a choice to the command line (two sinks that read
    one CSV column as different types): an option settles it. Exits like a usage error,
    without the usage text."""

    exit_code = EXIT_USAGE


class InputError(ClientError):
    """An input that cannot be read or is not valid: names the input, the line and the reason.

    ``line`` is 1-based; ``None`` when the error is about the whole input.
    """

    exit_code = EXIT_INPUT

    def __init__(self, name: str, reason: str, line: int | None = None) -> None:
        super().__init__(f"{name}:{line}: {reason}" if line is not None else f"{name}: {reason}")
        self.name = name
        self.reason = reason
        self.line = line


class NetworkError(ClientError):
    """The server could not be reached (refused, timed out, reset), after retries where they apply."""


class ServerError(ClientError):
    """An error answer of the server: HTTP ``status``, Keboola error name ``error``
    (``stream.api.sourceNotFound``, ...) and the whole JSON ``body`` when there is one."""

    def __init__(self, status: int, error: str, message: str, body: Any = None) -> None:
        super().__init__(f"{message} ({status} {error})" if error else message)
        self.status = status
        self.error = error
        self.server_message = message
        self.body = body


class RejectedError(ClientError):
    """The server rejected records of an ingest (a mapping or batch error): an input error."""

    exit_code = EXIT_INPUT
