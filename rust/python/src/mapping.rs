use std::sync::Arc;

use pushstream_core::{Mapping as CoreMapping, RecordContext};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use crate::errors;
use crate::record::record_of;

/// A sink mapping compiled once from its column definitions.
#[pyclass(frozen, module = "pushstream._core")]
pub struct Mapping {
    pub inner: Arc<CoreMapping>,
    columns_json: String,
}

/// The rows of a batch: CSV bytes plus the records that could not be mapped.
#[pyclass(frozen, module = "pushstream._core")]
pub struct EncodedBatch {
    #[pyo3(get)]
    csv: Py<PyBytes>,
    #[pyo3(get)]
    rows: u64,
    #[pyo3(get)]
    errors: Py<PyList>,
}

#[pymethods]
impl EncodedBatch {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "EncodedBatch(rows={}, csv=<{} bytes>, errors={})",
            self.rows,
            self.csv.bind(py).as_bytes().len(),
            self.errors.bind(py).len()
        )
    }
}

#[pymethods]
impl Mapping {
    #[new]
    fn new(py: Python<'_>, columns: &Bound<'_, PyAny>) -> PyResult<Self> {
        let columns_json: String = if let Ok(text) = columns.cast::<PyString>() {
            text.to_str()?.to_owned()
        } else {
            py.import("json")?.call_method1("dumps", (columns,))?.extract()?
        };
        let inner = CoreMapping::from_json(&columns_json).map_err(|e| errors::config_error(py, &e))?;
        Ok(Mapping { inner: Arc::new(inner), columns_json })
    }

    /// Column names in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.inner.columns().iter().map(|c| c.name().to_owned()).collect()
    }

    /// (name, type) of every column; `id` is reported as `uuid`.
    #[getter]
    fn column_types(&self) -> Vec<(String, &'static str)> {
        self.inner.columns().iter().map(|c| (c.name().to_owned(), c.type_name())).collect()
    }

    /// The `dataType` of every column (`"string"` for an untyped column).
    #[getter]
    fn data_types(&self) -> Vec<&'static str> {
        self.inner.columns().iter().map(|c| c.data_type().as_str()).collect()
    }

    /// Whether each column takes NULL (`nullable`, default true; only typed columns ever write NULL).
    #[getter]
    fn nullable(&self) -> Vec<bool> {
        self.inner.columns().iter().map(|c| c.nullable()).collect()
    }

    /// Names of the primary-key columns.
    #[getter]
    fn primary_key(&self) -> Vec<String> {
        self.inner.columns().iter().filter(|c| c.primary_key()).map(|c| c.name().to_owned()).collect()
    }

    /// Whether a column reads the parsed body (`path`, `template`).
    #[getter]
    fn needs_parsed_body(&self) -> bool {
        self.inner.needs_parsed_body()
    }

    /// Whether a column may read request headers other than `Content-Type`
    /// (`headers`, `template`): without one, only the `Content-Type` is needed.
    #[getter]
    fn needs_headers(&self) -> bool {
        self.inner.needs_headers()
    }

    /// The column definitions as JSON, as given.
    #[getter]
    fn columns_json(&self) -> &str {
        &self.columns_json
    }

    /// The row of one record as strings (the values before CSV quoting).
    fn map(&self, py: Python<'_>, record: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let record = record_of(record)?;
        let mapping = Arc::clone(&self.inner);
        py.detach(move || mapping.map_values(&RecordContext::new(record.view())))
            .map_err(|e| errors::mapping_error(py, &e))
    }

    /// One record as one CSV row (with the trailing newline).
    fn encode<'py>(&self, py: Python<'py>, record: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let record = record_of(record)?;
        let mapping = Arc::clone(&self.inner);
        let row = py.detach(move || {
            let mut out = Vec::with_capacity(record.body.len() + 128);
            mapping.encode_row(&RecordContext::new(record.view()), &mut out, &mut Vec::new()).map(|()| out)
        });
        row.map(|r| PyBytes::new(py, &r)).map_err(|e| errors::mapping_error(py, &e))
    }

    /// Many records in one call (the GIL is released while mapping). Records
    /// that fail are reported in `errors` as `(index, MappingError)` and leave
    /// no row behind.
    fn encode_batch(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<EncodedBatch> {
        let records = collect_records(records)?;
        let mapping = Arc::clone(&self.inner);
        let (csv, rows, failed) = py.detach(move || {
            let mut out = Vec::with_capacity(records.iter().map(|r| r.body.len() + 128).sum());
            let mut scratch = Vec::new();
            let mut failed = Vec::new();
            let mut rows = 0u64;
            for (index, record) in records.iter().enumerate() {
                match mapping.encode_row(&RecordContext::new(record.view()), &mut out, &mut scratch) {
                    Ok(()) => rows += 1,
                    Err(e) => failed.push((index, e)),
                }
            }
            (out, rows, failed)
        });
        let errors = PyList::empty(py);
        for (index, error) in &failed {
            errors.append((*index, errors::mapping_error_value(py, error)?))?;
        }
        Ok(EncodedBatch { csv: PyBytes::new(py, &csv).unbind(), rows, errors: errors.unbind() })
    }

    fn __repr__(&self) -> String {
        let names: Vec<&str> = self.inner.columns().iter().map(|c| c.name()).collect();
        format!("Mapping(columns={names:?})")
    }
}

pub fn collect_records(records: &Bound<'_, PyAny>) -> PyResult<Vec<Arc<pushstream_core::Record>>> {
    let mut out = Vec::with_capacity(records.len().unwrap_or(0));
    for item in records.try_iter()? {
        let item = item?;
        out.push(record_of(&item)?);
    }
    Ok(out)
}
