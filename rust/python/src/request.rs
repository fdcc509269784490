//! Request bodies: how a content type splits them, and the checks that clients
//! run before sending them.

use pushstream_core::request;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors;

/// Checks that every non-blank line of an NDJSON text is UTF-8 and one JSON
/// document as a source parses it; returns (records, line breaks). Raises
/// `BatchError` naming the first bad line (1-based). Takes any contiguous byte
/// buffer (bytes, or a memoryview of an mmap: no copy).
#[pyfunction]
pub fn check_ndjson(py: Python<'_>, text: PyBuffer<u8>) -> PyResult<(u64, u64)> {
    if !text.is_c_contiguous() {
        return Err(PyValueError::new_err("check_ndjson needs a contiguous buffer"));
    }
    let (address, length) = (text.buf_ptr() as usize, text.len_bytes());
    // SAFETY: `text` keeps the exporter's buffer alive and in place (and read-only
    // for us) until it is dropped at the end of this function.
    let result = py.detach(move || {
        let bytes = unsafe { std::slice::from_raw_parts(address as *const u8, length) };
        request::check_ndjson(bytes)
    });
    drop(text);
    result.map_err(|e| errors::batch_error(py, &e))
}

/// Whether a request with this `Content-Type` is a batch of records (NDJSON,
/// CSV), as the core splits it: the media type, case-insensitive, parameters
/// ignored.
#[pyfunction]
pub fn is_batch_content_type(content_type: Option<&str>) -> bool {
    request::BatchKind::from_content_type(content_type).is_batch()
}
