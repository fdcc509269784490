//! The receive-time index of slices: merging the parts that several nodes wrote.

use std::path::PathBuf;

use pushstream_core::slice_index;
use pyo3::prelude::*;

/// The byte ranges of the node parts of one slice in receive order: takes
/// `(path, length)` per part (its recovered length) and returns `(path, start,
/// end)` ranges, `path` being the object given. Reads each part's `.idx` with
/// the GIL released; see `pushstream_core::slice_index` for the rules.
#[pyfunction]
pub fn interleave_parts<'py>(
    py: Python<'py>,
    parts: Vec<(Bound<'py, PyAny>, u64)>,
) -> PyResult<Vec<(Bound<'py, PyAny>, u64, u64)>> {
    let paths =
        parts.iter().map(|(path, length)| Ok((path.extract::<PathBuf>()?, *length))).collect::<PyResult<Vec<_>>>()?;
    let ranges = py.detach(move || slice_index::interleave_parts(&paths))?;
    Ok(ranges.into_iter().map(|r| (parts[r.part].0.clone(), r.start, r.end)).collect())
}
