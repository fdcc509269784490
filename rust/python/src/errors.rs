//! The one place where core errors become Python exceptions. The classes live
//! in `pushstream.errors` (Python), so the API layer and the core share one
//! hierarchy under `pushstream.PushstreamError`.

use pushstream_core::{ConfigError, MappingError, WriterError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

fn class(py: Python<'_>, cell: &'static PyOnceLock<Py<PyType>>, name: &str) -> PyResult<Py<PyType>> {
    cell.get_or_try_init(py, || Ok(py.import("pushstream.errors")?.getattr(name)?.cast_into::<PyType>()?.unbind()))
        .map(|c| c.clone_ref(py))
}

static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MAPPING_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static WRITER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static WRITER_CLOSED_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `pushstream.errors.ConfigError(message, column=...)`.
pub fn config_error(py: Python<'_>, error: &ConfigError) -> PyErr {
    match class(py, &CONFIG_ERROR, "ConfigError")
        .and_then(|c| c.bind(py).call1((error.message.as_str(), error.column.as_deref())))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// `pushstream.errors.MappingError(reason, kind=..., column=...)`.
pub fn mapping_error_value<'py>(py: Python<'py>, error: &MappingError) -> PyResult<Bound<'py, PyAny>> {
    class(py, &MAPPING_ERROR, "MappingError")?.bind(py).call1((
        error.reason.as_str(),
        error.kind.as_str(),
        error.column.as_deref(),
    ))
}

pub fn mapping_error(py: Python<'_>, error: &MappingError) -> PyErr {
    match mapping_error_value(py, error) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// `pushstream.errors.WriterError` (or `WriterClosedError`).
pub fn writer_error(py: Python<'_>, error: &WriterError) -> PyErr {
    let (cell, name) = match error {
        WriterError::Closed { .. } => (&WRITER_CLOSED_ERROR, "WriterClosedError"),
        _ => (&WRITER_ERROR, "WriterError"),
    };
    match class(py, cell, name).and_then(|c| c.bind(py).call1((error.to_string(),))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

static BATCH_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `pushstream.errors.BatchError(message, line, too_large)`.
pub fn batch_error(py: Python<'_>, error: &pushstream_core::request::BatchError) -> PyErr {
    match class(py, &BATCH_ERROR, "BatchError")
        .and_then(|c| c.bind(py).call1((error.message.as_str(), error.line, error.too_large)))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

static OTLP_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `pushstream.errors.OtlpError(message, too_large)`.
pub fn otlp_error(py: Python<'_>, error: &pushstream_core::otlp::OtlpError) -> PyErr {
    match class(py, &OTLP_ERROR, "OtlpError").and_then(|c| c.bind(py).call1((error.message.as_str(), error.too_large)))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}
