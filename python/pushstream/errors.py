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
    ``missing_value``, ``template``, ``row_too_large`` and ``invalid_value`` (a value
    the column's ``dataType`` cannot take); ``column`` is the failing column, or
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


class BatchError(PushstreamError, ValueError):
    """A batch request (NDJSON or CSV body) that cannot be taken: a line is not
    valid JSON, a CSV row does not match the header, ... Nothing of it was written.

    ``line`` is the 1-based line of the request body; ``too_large`` says that the
    record on that line is larger than the record limit.
    """

    def __init__(self, message: str, line: int, too_large: bool = False) -> None:
        super().__init__(f"line {line}: {message}")
        self.message = message
        self.line = line
        self.too_large = too_large


class OtlpError(PushstreamError, ValueError):
    """An OpenTelemetry (OTLP/HTTP) request that cannot be taken: the body is not
    OTLP in its encoding (protobuf, JSON), its gzip is broken, or it is over a size
    limit once decompressed or flattened (``too_large``). Nothing of it was written.
    """

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.too_large = too_large


class ApiError(PushstreamError):
    """An error of the Stream API, answered as Keboola's error JSON
    ``{"statusCode": N, "error": "stream.api.<name>", "message": "..."}``.

    Subclasses fix the HTTP status; ``error`` may be overridden per instance
    (``NotFoundError("...", error="stream.api.sourceNotFound")``).
    """

    status_code: int = 500
    error: str = "stream.api.internalError"

    def __init__(self, message: str, *, error: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error is not None:
            self.error = error
        if status_code is not None:
            self.status_code = status_code

    def to_json(self) -> dict[str, object]:
        """The response body of the error."""
        return {"statusCode": self.status_code, "error": self.error, "message": self.message}


class BadRequestError(ApiError):
    """400: the request is malformed or fails validation (``stream.api.badRequest`` or a more specific name)."""

    status_code = 400
    error = "stream.api.badRequest"


class UnauthorizedError(ApiError):
    """401: the API token is not known."""

    status_code = 401
    error = "stream.api.unauthorized"


class ForbiddenError(ApiError):
    """403: the token may not do this (a guest token writing, a protected setting)."""

    status_code = 403
    error = "stream.api.forbidden"


class NotFoundError(ApiError):
    """404: the entity (``stream.api.sourceNotFound``, ``sinkNotFound``, ...) or endpoint does not exist."""

    status_code = 404
    error = "stream.api.notFound"


class AlreadyExistsError(ApiError):
    """409: an entity with the same id exists (``stream.api.sourceAlreadyExists``, ``sinkAlreadyExists``)."""

    status_code = 409
    error = "stream.api.alreadyExists"


class ResourceLimitError(ApiError):
    """422: a limit (sources per branch, sinks per source, columns per sink) would be exceeded."""

    status_code = 422
    error = "stream.api.resourceLimitReached"


class CatalogError(PushstreamError):
    """The catalog cannot do what was asked (wrong use, not a user error)."""


class StoreUnavailableError(ApiError, CatalogError):
    """503: the shared configuration store (PostgreSQL of ``serve --cluster``) cannot
    be reached; the request may be retried once it is back."""

    status_code = 503
    error = "stream.api.serviceUnavailable"


class IllegalTransitionError(PushstreamError):
    """A file or slice was asked to move to a state its lifecycle does not allow
    from the state it is in (see :mod:`pushstream.storage.state`): a bug or a
    second coordinator, never a user error."""


__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "BadRequestError",
    "BatchError",
    "CatalogError",
    "ConfigError",
    "ForbiddenError",
    "IllegalTransitionError",
    "MappingError",
    "NotFoundError",
    "PushstreamError",
    "ResourceLimitError",
    "StoreUnavailableError",
    "UnauthorizedError",
    "WriterClosedError",
    "WriterError",
]
