//! Checks of request bodies that clients run before sending them.

use pushstream_core::request;
use pyo3::prelude::*;

use crate::errors;

/// Checks that every non-blank line of an NDJSON text is one JSON document as a
/// source parses it; returns (records, line breaks). Raises `BatchError` naming
/// the first bad line (1-based).
#[pyfunction]
pub fn check_ndjson(py: Python<'_>, text: &[u8]) -> PyResult<(u64, u64)> {
    py.detach(|| request::check_ndjson(text)).map_err(|e| errors::batch_error(py, &e))
}
