"""What a PostgreSQL (ADBC/libpq) error means for pushstream: the server is
away for now (retried with backoff), a row is the problem (the import rejects
it and goes on), the sink's table or grants are gone (prepared again), the
credentials were refused, or anything else (the import fails and is retried)."""

from __future__ import annotations

import adbc_driver_manager

from pushstream.targets.base import TargetError, TargetUnavailableError

# undefined_table, invalid_schema_name, insufficient_privilege: what an import
# meets when its table or grants were dropped by hand after preparation.
_UNPREPARED_STATES = ("42P01", "3F000", "42501")

# SQLSTATE classes/codes that mean "the server is not there right now".
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300", "53100", "58030")

# data_exception (a NUL in text, bad UTF-8, a value out of range),
# integrity_constraint_violation (CHECK, NOT NULL, UNIQUE, FOREIGN KEY of a table
# changed by hand), program_limit_exceeded (a key too large for its index):
# a row is the problem, not the import.
_ROW_STATES = ("22", "23", "54000")


class UnpreparedError(TargetError):
    """The sink's table or grants are gone: preparing the sink again may fix it."""


def sqlstate(exc: BaseException) -> str:
    """The error's SQLSTATE, or ``""`` when the driver gave none."""
    return getattr(exc, "sqlstate", None) or ""


def message(exc: BaseException) -> str:
    """The first line of the error: libpq messages repeat the query and add
    hints on following lines."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_unavailable(exc: BaseException) -> bool:
    """Whether the server is not there right now (down, restarting, out of
    connections, the network gone)."""
    if sqlstate(exc).startswith(_UNAVAILABLE_STATES):
        return True
    text = str(exc).lower()
    if "authentication failed" in text or "does not exist" in text or "permission denied" in text:
        return False
    status = getattr(exc, "status_code", None)
    return status == adbc_driver_manager.AdbcStatusCode.IO or any(
        phrase in text
        for phrase in (
            "server closed the connection",
            "connection refused",
            "could not connect",
            "no connection to the server",
            "terminating connection",
            "connection timed out",
            "the database system is",
        )
    )


def is_row_error(exc: BaseException) -> bool:
    """Whether a row of the import, not the import, is what the database refused."""
    state = sqlstate(exc)
    if state:
        return state.startswith(_ROW_STATES)
    text = str(exc).lower()
    return "invalid byte sequence" in text or "violates" in text


def is_unprepared(exc: BaseException) -> bool:
    """Whether the sink's table, its schema or its grants are gone."""
    return sqlstate(exc) in _UNPREPARED_STATES


def is_unique_violation(exc: BaseException) -> bool:
    """Whether a row with the same key exists already (e.g. an import id that
    another process recorded first)."""
    return sqlstate(exc) == "23505"


def is_auth_failure(exc: BaseException) -> bool:
    """Whether the server refused the credentials."""
    return "authentication failed" in str(exc).lower() or sqlstate(exc).startswith("28")


def target_error(exc: BaseException, what: str) -> TargetError:
    """The :class:`TargetError` to raise for ``exc``: :class:`TargetUnavailableError`
    when the server is away, the error itself when it is one already."""
    if isinstance(exc, TargetError):
        return exc
    if is_unavailable(exc):
        return TargetUnavailableError(f"{what}: PostgreSQL is unavailable: {message(exc)}")
    return TargetError(f"{what}: {message(exc)}")
