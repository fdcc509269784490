//! OpenTelemetry (OTLP/HTTP) requests into flat JSON records: one record per
//! log record, metric data point or span (fields in `docs/otlp.md`). The
//! records then go through the sinks' mappings and the durable group commit
//! like the records of an HTTP source ([`crate::fanout::write_records`]).
//!
//! One call per request: [`decode`] takes the body as received (protobuf or
//! JSON, gzip or not) and returns every record, or why none can be taken.
//! Bounded like every other body: the decompressed size by the batch limit
//! (a gzip bomb stops at limit + 1 bytes), each record by the record limit,
//! all records together by [`OtlpLimits::max_total_bytes`] (the resource of a
//! group is repeated in each of its records), nesting by the decoders.

mod flatten;
mod json;
pub mod proto;
mod wire;

use std::fmt;
use std::io::Read;

use prost::Message;

pub use flatten::Flattened;

/// The three OTLP signals, one endpoint each (`/v1/logs`, `/v1/metrics`, `/v1/traces`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

impl Signal {
    /// `logs`, `metrics` or `traces`.
    pub fn parse(name: &str) -> Option<Signal> {
        match name {
            "logs" => Some(Signal::Logs),
            "metrics" => Some(Signal::Metrics),
            "traces" => Some(Signal::Traces),
            _ => None,
        }
    }

    /// The `partialSuccess` counter of the signal's response (OTLP JSON name).
    fn rejected_field(self) -> &'static str {
        match self {
            Signal::Logs => "rejectedLogRecords",
            Signal::Metrics => "rejectedDataPoints",
            Signal::Traces => "rejectedSpans",
        }
    }
}

/// How a request body (and its answer) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf` (or `application/protobuf`).
    Protobuf,
    /// `application/json`: OTLP JSON.
    Json,
}

impl Encoding {
    /// The encoding of a `Content-Type` (parameters ignored), or `None` when OTLP has none for it.
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }
}

/// The limits of one OTLP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtlpLimits {
    /// Largest body, compressed or not: the batch limit.
    pub max_body_bytes: usize,
    /// Largest flattened record.
    pub max_record_bytes: usize,
    /// Largest size of all flattened records together.
    pub max_total_bytes: usize,
}

impl OtlpLimits {
    /// The limits of a server with these body and record limits; all records
    /// of a request may take four times the body limit (the resource and scope
    /// are repeated in each record).
    pub fn new(max_body_bytes: usize, max_record_bytes: usize) -> OtlpLimits {
        OtlpLimits { max_body_bytes, max_record_bytes, max_total_bytes: max_body_bytes.saturating_mul(4) }
    }
}

/// Why an OTLP request cannot be taken (nothing of it is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpError {
    pub message: String,
    /// Over a size limit (413) rather than malformed (400).
    pub too_large: bool,
}

impl OtlpError {
    pub(crate) fn malformed(message: impl Into<String>) -> OtlpError {
        OtlpError { message: message.into(), too_large: false }
    }

    pub(crate) fn too_large(message: impl Into<String>) -> OtlpError {
        OtlpError { message: message.into(), too_large: true }
    }
}

impl fmt::Display for OtlpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OtlpError {}

/// A gzip body, decompressed up to the body limit: a body that inflates
/// beyond it is refused after `limit + 1` bytes, whatever its claimed size.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, OtlpError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit + 1));
    flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| OtlpError::malformed(format!("the gzip body cannot be decompressed: {e}")))?;
    if out.len() > limit {
        return Err(OtlpError::too_large(format!(
            "Request body size is over the maximum \"{limit}B\" once decompressed."
        )));
    }
    Ok(out)
}

/// The records of one OTLP request: decompressed (when `gzip`), decoded from
/// `encoding` and flattened.
pub fn decode(
    signal: Signal,
    encoding: Encoding,
    gzip: bool,
    body: &[u8],
    limits: OtlpLimits,
) -> Result<Flattened, OtlpError> {
    if body.len() > limits.max_body_bytes {
        return Err(OtlpError::too_large(format!(
            "Request body size is over the maximum \"{}B\".",
            limits.max_body_bytes
        )));
    }
    let inflated;
    let body = if gzip {
        inflated = gunzip(body, limits.max_body_bytes)?;
        &inflated[..]
    } else {
        body
    };
    let mut flattener = flatten::Flattener::new(limits, body.len());
    let malformed = |e: String| OtlpError::malformed(format!("invalid OTLP {} body: {e}", encoding.name()));
    match (signal, encoding) {
        (Signal::Logs, Encoding::Protobuf) => {
            // Straight from the wire when it can; else prost's messages decide.
            if wire::logs(&mut flattener, body).is_err() {
                flattener = flatten::Flattener::new(limits, body.len());
                flattener.logs(&protobuf(body, &malformed)?)?;
            }
        }
        (Signal::Logs, Encoding::Json) => flattener.logs(&json::logs(body).map_err(malformed)?)?,
        (Signal::Metrics, Encoding::Protobuf) => flattener.metrics(&protobuf(body, &malformed)?)?,
        (Signal::Metrics, Encoding::Json) => flattener.metrics(&json::metrics(body).map_err(malformed)?)?,
        (Signal::Traces, Encoding::Protobuf) => flattener.traces(&protobuf(body, &malformed)?)?,
        (Signal::Traces, Encoding::Json) => flattener.traces(&json::traces(body).map_err(malformed)?)?,
    }
    Ok(flattener.finish())
}

/// The records of a protobuf log request as prost's messages make them,
/// without the wire reader: what [`decode`] must agree with (tests and the
/// `otlp_logs` fuzz target compare the two).
#[doc(hidden)]
pub fn decode_logs_by_prost(body: &[u8], limits: OtlpLimits) -> Result<Flattened, OtlpError> {
    let malformed = |e: String| OtlpError::malformed(format!("invalid OTLP protobuf body: {e}"));
    let mut flattener = flatten::Flattener::new(limits, body.len());
    flattener.logs(&protobuf(body, &malformed)?)?;
    Ok(flattener.finish())
}

fn protobuf<M: Message + Default>(body: &[u8], malformed: &impl Fn(String) -> OtlpError) -> Result<M, OtlpError> {
    M::decode(body).map_err(|e| malformed(e.to_string()))
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "JSON",
        }
    }
}

/// The `Export{Logs,Metrics,Trace}ServiceResponse` of a request in `encoding`:
/// empty when `rejected` is 0 and there is no message, else with
/// `partial_success` (the rejected count and the message).
pub fn response(signal: Signal, encoding: Encoding, rejected: i64, message: &str) -> Vec<u8> {
    let empty = rejected == 0 && message.is_empty();
    match encoding {
        Encoding::Protobuf => {
            let partial_success =
                (!empty).then(|| proto::ExportPartialSuccess { rejected, error_message: message.to_owned() });
            proto::ExportServiceResponse { partial_success }.encode_to_vec()
        }
        Encoding::Json => {
            if empty {
                return b"{}".to_vec();
            }
            let mut out = Vec::with_capacity(64 + message.len());
            out.extend_from_slice(b"{\"partialSuccess\":{\"");
            out.extend_from_slice(signal.rejected_field().as_bytes());
            // int64 is a decimal string in protobuf's JSON mapping.
            out.extend_from_slice(b"\":\"");
            out.extend_from_slice(itoa::Buffer::new().format(rejected).as_bytes());
            out.extend_from_slice(b"\",\"errorMessage\":");
            crate::json::write_str(message, &mut out);
            out.extend_from_slice(b"}}");
            out
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cost;
