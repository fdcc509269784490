use std::sync::Arc;

use pushstream_core::fanout::{self, OpenSink, SinkFailure, SinkOutcome};
use pushstream_core::limits::{self, RequestLimits};
use pushstream_core::otlp;
use pushstream_core::record::RecordMeta;
use pushstream_core::request::BatchKind;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors;
use crate::mapping::Mapping;
use crate::record::{extract_headers, now_ns};
use crate::writer::SliceWriter;

/// Per sink: (sink id, outcome, rows written, message).
type Outcomes = Vec<(String, &'static str, u64, String)>;

/// The enabled sinks of one source, ready to take requests: one call per
/// request maps every record into every sink and writes the rows.
#[pyclass(frozen, module = "pushstream._core")]
pub struct SinkSet {
    ids: Vec<String>,
    sinks: Arc<Vec<OpenSink>>,
}

/// Request headers from a WSGI environ: `HTTP_X_FOO` → `X-Foo`, plus
/// `CONTENT_TYPE` / `CONTENT_LENGTH`, which WSGI keeps without the prefix.
fn headers_from_environ(environ: &Bound<'_, PyDict>) -> PyResult<Vec<(String, String)>> {
    let mut headers = Vec::with_capacity(16);
    for (key, value) in environ.iter() {
        let Ok(key) = key.cast::<PyString>() else { continue };
        let key = key.to_str()?;
        let name = if let Some(rest) = key.strip_prefix("HTTP_") {
            rest
        } else if key == "CONTENT_TYPE" || key == "CONTENT_LENGTH" {
            key
        } else {
            continue;
        };
        let Ok(value) = value.cast::<PyString>() else { continue };
        let value = value.to_str()?;
        if value.is_empty() && !key.starts_with("HTTP_") {
            continue;
        }
        headers.push((name.replace('_', "-"), value.to_owned()));
    }
    Ok(headers)
}

impl SinkSet {
    /// The core's outcomes as `(sink_id, outcome, rows, message)` per sink.
    fn outcomes(&self, records: usize, outcomes: Vec<SinkOutcome>) -> Outcomes {
        self.ids
            .iter()
            .zip(outcomes)
            .map(|(id, outcome)| {
                let (rows, message) = match &outcome {
                    SinkOutcome::Written { rows, .. } => (*rows, String::new()),
                    SinkOutcome::Failed(SinkFailure::Mapping { index, error }) => {
                        (0, if records > 1 { format!("record {}: {error}", index + 1) } else { error.to_string() })
                    }
                    SinkOutcome::Failed(SinkFailure::Writer(e)) => (0, e.to_string()),
                };
                (id.clone(), outcome.kind(), rows, message)
            })
            .collect()
    }
}

pub(crate) fn parse_signal(name: &str) -> PyResult<otlp::Signal> {
    otlp::Signal::parse(name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown signal {name:?}: logs, metrics or traces")))
}

pub(crate) fn parse_encoding(name: &str) -> PyResult<otlp::Encoding> {
    match name {
        "protobuf" => Ok(otlp::Encoding::Protobuf),
        "json" => Ok(otlp::Encoding::Json),
        _ => Err(PyValueError::new_err(format!("unknown OTLP encoding {name:?}: protobuf or json"))),
    }
}

/// The OTLP `Export{Logs,Metrics,Trace}ServiceResponse` of a request, in its
/// encoding (`protobuf` or `json`): empty when `rejected` is 0 and `message`
/// empty, else with `partial_success`.
#[pyfunction]
#[pyo3(signature = (signal, encoding, rejected=0, message=""))]
pub fn otlp_response<'py>(
    py: Python<'py>,
    signal: &str,
    encoding: &str,
    rejected: i64,
    message: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let body = otlp::response(parse_signal(signal)?, parse_encoding(encoding)?, rejected, message);
    Ok(PyBytes::new(py, &body))
}

#[pymethods]
impl SinkSet {
    #[new]
    fn new(sinks: Vec<(String, Bound<'_, Mapping>, Bound<'_, SliceWriter>)>) -> Self {
        let ids = sinks.iter().map(|(id, _, _)| id.clone()).collect();
        let open = sinks
            .iter()
            .map(|(_, mapping, writer)| OpenSink {
                mapping: Arc::clone(&mapping.get().inner),
                writer: Arc::clone(&writer.get().inner),
            })
            .collect();
        SinkSet { ids, sinks: Arc::new(open) }
    }

    #[getter]
    fn sink_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    fn __len__(&self) -> usize {
        self.ids.len()
    }

    /// Takes one request: the body is one record, or a batch when the content
    /// type is `application/x-ndjson` or `text/csv`. Headers come from `headers`
    /// (mapping or pairs) or from a WSGI `environ`. Everything after the header
    /// extraction runs with the GIL released: parsing, mapping, writing and
    /// waiting for the group commit.
    ///
    /// Returns `(records, outcomes)` with one `(sink_id, outcome, rows, message)`
    /// per sink, `outcome` being one of `SINK_OUTCOMES`: `processed` (synced),
    /// `accepted` (written, not waited for) or an error kind. Raises `pushstream.BatchError` when a
    /// batch cannot be split, one of its records is not valid JSON or larger than
    /// `max_record_bytes` (nothing is written). A record whose row in a sink is
    /// larger than `max_row_bytes` fails that sink with `row_too_large`.
    #[pyo3(signature = (body, *, headers=None, environ=None, ip="", received_at_ns=None, max_record_bytes=None, max_row_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn ingest(
        &self,
        py: Python<'_>,
        body: PyBackedBytes,
        headers: Option<&Bound<'_, PyAny>>,
        environ: Option<&Bound<'_, PyDict>>,
        ip: &str,
        received_at_ns: Option<i64>,
        max_record_bytes: Option<usize>,
        max_row_bytes: Option<usize>,
    ) -> PyResult<(usize, Outcomes)> {
        let defaults = RequestLimits::default();
        let limits = RequestLimits {
            max_record_bytes: max_record_bytes.unwrap_or(defaults.max_record_bytes),
            max_row_bytes: max_row_bytes.unwrap_or(defaults.max_row_bytes),
        };
        let mut header_list = extract_headers(headers)?;
        if let Some(environ) = environ {
            header_list.extend(headers_from_environ(environ)?);
        }
        let meta = RecordMeta::new(header_list, ip.to_owned(), received_at_ns.unwrap_or_else(now_ns));
        let kind = BatchKind::from_content_type(meta.content_type());
        let sinks = Arc::clone(&self.sinks);
        // `body` borrows the request's bytes object: no copy of the body is made.
        let result = py.detach(move || fanout::write_request(&meta, kind, &body, &sinks, limits));
        let (records, outcomes) = result.map_err(|e| errors::batch_error(py, &e))?;
        Ok((records, self.outcomes(records, outcomes)))
    }

    /// Takes one OpenTelemetry request (`/v1/logs`, `/v1/metrics` or
    /// `/v1/traces` of an `otlp` source): the body is decompressed (`gzip`),
    /// decoded (`encoding`: `protobuf` or `json`) and flattened into one record
    /// per log record, data point or span, which every sink maps and writes
    /// like the records of an NDJSON batch. One call, the GIL released for all
    /// of it. Returns `(records, outcomes)` as `ingest` does; raises
    /// `pushstream.OtlpError` when the body cannot be taken (nothing is written).
    #[pyo3(signature = (body, signal, encoding, *, gzip=false, headers=None, environ=None, ip="", received_at_ns=None, max_body_bytes=None, max_record_bytes=None, max_row_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn ingest_otlp(
        &self,
        py: Python<'_>,
        body: PyBackedBytes,
        signal: &str,
        encoding: &str,
        gzip: bool,
        headers: Option<&Bound<'_, PyAny>>,
        environ: Option<&Bound<'_, PyDict>>,
        ip: &str,
        received_at_ns: Option<i64>,
        max_body_bytes: Option<usize>,
        max_record_bytes: Option<usize>,
        max_row_bytes: Option<usize>,
    ) -> PyResult<(usize, Outcomes)> {
        let signal = parse_signal(signal)?;
        let encoding = parse_encoding(encoding)?;
        let limits = otlp::OtlpLimits::new(
            max_body_bytes.unwrap_or(limits::DEFAULT_MAX_BATCH_BYTES),
            max_record_bytes.unwrap_or(limits::DEFAULT_MAX_RECORD_BYTES),
        );
        let max_row_bytes = max_row_bytes.unwrap_or(limits::DEFAULT_MAX_ROW_BYTES);
        let mut header_list = extract_headers(headers)?;
        if let Some(environ) = environ {
            header_list.extend(headers_from_environ(environ)?);
        }
        let meta = RecordMeta::new(header_list, ip.to_owned(), received_at_ns.unwrap_or_else(now_ns));
        let sinks = Arc::clone(&self.sinks);
        let result = py.detach(move || {
            let records = otlp::decode(signal, encoding, gzip, &body, limits)?;
            Ok::<_, otlp::OtlpError>((records.len(), fanout::write_records(&meta, &records, &sinks, max_row_bytes)))
        });
        let (records, outcomes) = result.map_err(|e| errors::otlp_error(py, &e))?;
        Ok((records, self.outcomes(records, outcomes)))
    }

    fn __repr__(&self) -> String {
        format!("SinkSet({:?})", self.ids)
    }
}
