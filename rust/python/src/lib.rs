//! Python bindings of the pushstream core (`pushstream._core`). Bindings only:
//! every behaviour lives in `pushstream-core`.

use pushstream_core::{fanout, limits, COLUMN_TYPES, DATA_TYPES};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

mod errors;
mod mapping;
mod record;
mod request;
mod sinkset;
mod slice_index;
mod template;
mod writer;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("COLUMN_TYPES", PyTuple::new(m.py(), COLUMN_TYPES)?)?;
    m.add("DATA_TYPES", PyTuple::new(m.py(), DATA_TYPES)?)?;
    m.add("SINK_OUTCOMES", PyTuple::new(m.py(), fanout::SINK_OUTCOMES)?)?;
    m.add("SinkOutcome", literal_union(m.py(), &fanout::SINK_OUTCOMES)?)?;
    m.add("DEFAULT_MAX_RECORD_BYTES", limits::DEFAULT_MAX_RECORD_BYTES)?;
    m.add("MAX_RECORD_BYTES_LIMIT", limits::MAX_RECORD_BYTES_LIMIT)?;
    m.add("DEFAULT_MAX_BATCH_BYTES", limits::DEFAULT_MAX_BATCH_BYTES)?;
    m.add("DEFAULT_MAX_ROW_BYTES", limits::DEFAULT_MAX_ROW_BYTES)?;
    m.add_class::<record::Record>()?;
    m.add_class::<mapping::Mapping>()?;
    m.add_class::<mapping::EncodedBatch>()?;
    m.add_class::<sinkset::SinkSet>()?;
    m.add_class::<writer::SyncSettings>()?;
    m.add_class::<writer::SliceWriter>()?;
    m.add_class::<writer::WriterStats>()?;
    m.add_class::<writer::RecoveredSlice>()?;
    m.add_class::<writer::WriterTotals>()?;
    m.add_function(wrap_pyfunction!(writer::writer_totals, m)?)?;
    m.add_function(wrap_pyfunction!(writer::recover_slice, m)?)?;
    m.add_function(wrap_pyfunction!(writer::parse_csv, m)?)?;
    m.add_function(wrap_pyfunction!(template::validate_template, m)?)?;
    m.add_function(wrap_pyfunction!(request::check_ndjson, m)?)?;
    m.add_function(wrap_pyfunction!(request::is_batch_content_type, m)?)?;
    m.add_function(wrap_pyfunction!(sinkset::otlp_response, m)?)?;
    m.add_function(wrap_pyfunction!(slice_index::interleave_parts, m)?)?;
    Ok(())
}

/// `Literal["a"] | Literal["b"] | ...`: the type of one of `names`, so that a
/// `Literal` alias of the stubs (`_core.pyi`) exists at runtime too.
fn literal_union<'py>(py: Python<'py>, names: &[&str]) -> PyResult<Bound<'py, PyAny>> {
    let typing = py.import("typing")?;
    let literal = typing.getattr("Literal")?;
    let members = names.iter().map(|name| literal.get_item(*name)).collect::<PyResult<Vec<_>>>()?;
    typing.getattr("Union")?.get_item(PyTuple::new(py, members)?)
}
