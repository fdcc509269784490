use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pushstream_core::record::RecordMeta;
use pushstream_core::Record as CoreRecord;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Headers given as a mapping or as (name, value) pairs.
pub fn extract_headers(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(headers) = headers else {
        return Ok(Vec::new());
    };
    if let Ok(dict) = headers.cast::<PyDict>() {
        return dict.iter().map(|(k, v)| Ok((k.extract()?, v.extract()?))).collect();
    }
    let items = if headers.hasattr("items")? { headers.call_method0("items")? } else { headers.clone() };
    items.try_iter()?.map(|item| item?.extract::<(String, String)>()).collect()
}

fn new_record(body: Vec<u8>, headers: Vec<(String, String)>, ip: &str, received_at_ns: Option<i64>) -> Arc<CoreRecord> {
    let meta = RecordMeta::new(headers, ip.to_owned(), received_at_ns.unwrap_or_else(now_ns));
    Arc::new(CoreRecord::new(Arc::new(meta), body))
}

/// The record of what a mapping is given: a `Record`, or a `dict` (an event as a
/// JSON object, serialised with orjson, received now).
pub fn record_of(item: &Bound<'_, PyAny>) -> PyResult<Arc<CoreRecord>> {
    if let Ok(record) = item.cast::<Record>() {
        return Ok(Arc::clone(&record.get().inner));
    }
    if item.cast::<PyDict>().is_ok() {
        let dumped = item.py().import("orjson")?.call_method1("dumps", (item,))?;
        let body = dumped.cast::<PyBytes>()?.as_bytes().to_vec();
        let headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        return Ok(new_record(body, headers, "", None));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "a record must be a pushstream.Record or a dict, found {}",
        item.get_type().name()?
    )))
}

/// One event: body bytes, request headers, client IP and receive time.
#[pyclass(frozen, module = "pushstream._core")]
pub struct Record {
    pub inner: Arc<CoreRecord>,
}

#[pymethods]
impl Record {
    #[new]
    #[pyo3(signature = (body, headers=None, ip="", received_at_ns=None))]
    fn new(body: &[u8], headers: Option<&Bound<'_, PyAny>>, ip: &str, received_at_ns: Option<i64>) -> PyResult<Self> {
        // No headers at all: a JSON event, what a library user means by a record of bytes.
        let headers = match headers {
            Some(given) => extract_headers(Some(given))?,
            None => vec![("Content-Type".to_owned(), "application/json".to_owned())],
        };
        Ok(Record { inner: new_record(body.to_vec(), headers, ip, received_at_ns) })
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.body)
    }

    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        self.inner.meta.headers().to_vec()
    }

    #[getter]
    fn ip(&self) -> &str {
        self.inner.meta.ip()
    }

    #[getter]
    fn received_at_ns(&self) -> i64 {
        self.inner.meta.received_at_ns()
    }

    #[getter]
    fn datetime(&self) -> &str {
        self.inner.meta.datetime()
    }

    #[getter]
    fn content_type(&self) -> Option<&str> {
        self.inner.meta.content_type()
    }

    fn __repr__(&self) -> String {
        format!(
            "Record(body=<{} bytes>, ip={:?}, datetime={:?})",
            self.inner.body.len(),
            self.inner.meta.ip(),
            self.inner.meta.datetime()
        )
    }
}
