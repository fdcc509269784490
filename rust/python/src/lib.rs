//! Python bindings of the pushstream core (`pushstream._core`). Bindings only:
//! every behaviour lives in `pushstream-core`.

use pyo3::prelude::*;

mod errors;
mod mapping;
mod record;
mod request;
mod sinkset;
mod template;
mod writer;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<record::Record>()?;
    m.add_class::<mapping::Mapping>()?;
    m.add_class::<mapping::EncodedBatch>()?;
    m.add_class::<sinkset::SinkSet>()?;
    m.add_class::<writer::SyncSettings>()?;
    m.add_class::<writer::SliceWriter>()?;
    m.add_class::<writer::WriterStats>()?;
    m.add_class::<writer::RecoveredSlice>()?;
    m.add_function(wrap_pyfunction!(writer::recover_slice, m)?)?;
    m.add_function(wrap_pyfunction!(writer::parse_csv, m)?)?;
    m.add_function(wrap_pyfunction!(template::validate_template, m)?)?;
    m.add_function(wrap_pyfunction!(request::check_ndjson, m)?)?;
    Ok(())
}
