//! Error types of the core. The Python binding maps each of them to one class of
//! the `pushstream.PushstreamError` hierarchy (see `rust/python/src/errors.rs`).

use std::fmt;

/// An invalid sink definition: unknown column type, bad path syntax, duplicate
/// column names, ... Raised once, when a mapping is compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// Name of the offending column, when the error is about one column.
    pub column: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError { column: None, message: message.into() }
    }

    pub fn column(column: &str, message: impl Into<String>) -> Self {
        ConfigError { column: Some(column.to_owned()), message: message.into() }
    }
}

/// Why one record could not be mapped into a row of one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappingErrorKind {
    /// The body is not valid JSON / form data although its content type says so.
    MalformedBody,
    /// A column needs the parsed body, but the content type is neither JSON nor form.
    UnsupportedContentType,
    /// A path (or header) is missing and the column has no default value.
    MissingValue,
    /// A template failed to evaluate (runtime error, budget exceeded, ...).
    Template,
    /// The record maps to a row larger than the row limit.
    RowTooLarge,
    /// A value cannot be converted to the `dataType` of its column.
    InvalidValue,
}

impl MappingErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [MappingErrorKind; 6] = [
        MappingErrorKind::MalformedBody,
        MappingErrorKind::UnsupportedContentType,
        MappingErrorKind::MissingValue,
        MappingErrorKind::Template,
        MappingErrorKind::RowTooLarge,
        MappingErrorKind::InvalidValue,
    ];

    /// Stable snake-case name, used by the Python binding and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingErrorKind::MalformedBody => "malformed_body",
            MappingErrorKind::UnsupportedContentType => "unsupported_content_type",
            MappingErrorKind::MissingValue => "missing_value",
            MappingErrorKind::Template => "template",
            MappingErrorKind::RowTooLarge => "row_too_large",
            MappingErrorKind::InvalidValue => "invalid_value",
        }
    }
}

/// A record that could not be mapped into a row. Rows are all-or-nothing: one
/// failing column drops the whole row of that sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    pub kind: MappingErrorKind,
    /// Column that failed; `None` when the record itself is unusable (body errors).
    pub column: Option<String>,
    pub reason: String,
}

impl MappingError {
    pub fn body(kind: MappingErrorKind, reason: impl Into<String>) -> Self {
        MappingError { kind, column: None, reason: reason.into() }
    }

    pub(crate) fn with_column(mut self, column: &str) -> Self {
        if self.column.is_none()
            && !matches!(self.kind, MappingErrorKind::MalformedBody | MappingErrorKind::UnsupportedContentType)
        {
            self.column = Some(column.to_owned());
        }
        self
    }
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "column \"{column}\": {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for MappingError {}

/// Errors of the durable slice writer.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The message names no path: it can reach clients (after a request raced a rotation).
    #[error("the slice writer is closed")]
    Closed { path: String },
    #[error("slice {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An earlier write or sync of this slice failed; the writer refuses further
    /// writes so that no row is acknowledged that might not be on disk. The
    /// message names no path: it is shown to clients (the path is logged once,
    /// when the failure happens).
    #[error("the slice accepts no more rows after an earlier failure: {message}")]
    Failed { path: String, message: String },
    /// A write or sync of this slice failed because the file system is full (or
    /// over quota). Like [`WriterError::Failed`], but a condition that clears by
    /// itself: a new writer of the slice works once there is space again.
    #[error("the server's disk is full, the rows were not stored")]
    DiskFull { path: String },
}

impl WriterError {
    /// Stable snake-case name of what went wrong, as a sink write reports it:
    /// `writer_closed`, `disk_full` or `writer_failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            WriterError::Closed { .. } => "writer_closed",
            WriterError::DiskFull { .. } => "disk_full",
            WriterError::Io { .. } | WriterError::Failed { .. } => "writer_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_mapping_error_kind() {
        // Fails to compile when a kind is added without a place in `ALL`.
        let position = |kind: MappingErrorKind| match kind {
            MappingErrorKind::MalformedBody => 0,
            MappingErrorKind::UnsupportedContentType => 1,
            MappingErrorKind::MissingValue => 2,
            MappingErrorKind::Template => 3,
            MappingErrorKind::RowTooLarge => 4,
            MappingErrorKind::InvalidValue => 5,
        };
        for (index, kind) in MappingErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(position(kind), index);
        }
    }
}
