"""The exception hierarchy of pushstream. Every error pushstream raises on purpose
derives from :class:`PushstreamError`; errors of the Rust core are mapped to these
classes in one place (``rust/python/src/errors.rs``)."""

from __future__ import annotations


class PushstreamError(Exception):
    """Base class of every pushstream error."""


class ConfigError(PushstreamError, ValueError):
    """An invalid definition (sink mapping, settings, ...), detected when it is compiled.

    ``column`` names the offending column when the error is about one column.
    """

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class MappingError(PushstreamError, ValueError):
    """A record that could not be mapped into a row of a sink.

    ``kind`` is one of ``malformed_body``, ``unsupported_content_type``,
    ``missing_value`` and ``template``; ``column`` is the failing column, or
    ``None`` when the body itself is unusable.
    """

    def __init__(self, reason: str, kind: str, column: str | None = None) -> None:
        super().__init__(f'column "{column}": {reason}' if column else reason)
        self.reason = reason
        self.kind = kind
        self.column = column


class WriterError(PushstreamError, OSError):
    """Writing or syncing a local slice failed; the rows were not acknowledged."""


class WriterClosedError(WriterError):
    """The slice was closed (rotated); write to its successor instead."""


__all__ = ["ConfigError", "MappingError", "PushstreamError", "WriterClosedError", "WriterError"]
