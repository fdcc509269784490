//! OTLP messages into flat JSON records: one per log record, metric data point
//! or span, with the snake_case fields of `docs/otlp.md`. Every record of a
//! request goes into one buffer (no allocation per record); the resource and
//! scope of a group of records are written once and copied into each record.

use base64::Engine;

use super::proto::*;
use super::{OtlpError, OtlpLimits};
use crate::json::{write_f64, write_str};
use crate::record::civil_from_days;

/// Deepest nesting of any-values (arrays and key-value lists) written; the
/// decoders stop earlier (prost at 100 levels, serde_json at 128).
const MAX_ANY_VALUE_DEPTH: usize = 128;

/// The flat JSON records of one request, in one buffer.
#[derive(Debug, Default)]
pub struct Flattened {
    buffer: Vec<u8>,
    ends: Vec<usize>,
}

impl Flattened {
    /// How many records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all records together.
    pub fn bytes(&self) -> usize {
        self.buffer.len()
    }

    /// The records, each a JSON object.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let record = &self.buffer[start..end];
            start = end;
            record
        })
    }
}

/// The scalar fields of one log record, whichever decoder read them.
pub(super) struct LogFields<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: &'a str,
    pub flags: u32,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
}

/// Builds the records of one request within its limits.
pub(super) struct Flattener {
    out: Flattened,
    start: usize,
    limits: OtlpLimits,
}

impl Flattener {
    pub(super) fn new(limits: OtlpLimits, body_bytes: usize) -> Flattener {
        let out = Flattened { buffer: Vec::with_capacity(body_bytes * 3 + 256), ends: Vec::new() };
        Flattener { out, start: 0, limits }
    }

    pub(super) fn finish(self) -> Flattened {
        self.out
    }

    fn begin(&mut self) -> &mut Vec<u8> {
        self.start = self.out.buffer.len();
        self.out.buffer.push(b'{');
        &mut self.out.buffer
    }

    fn end(&mut self) -> Result<(), OtlpError> {
        let buffer = &mut self.out.buffer;
        buffer.push(b'}');
        let size = buffer.len() - self.start;
        if size > self.limits.max_record_bytes {
            return Err(OtlpError::too_large(format!(
                "record {}: the flattened record has {size} bytes, more than the record limit of {}",
                self.out.ends.len() + 1,
                crate::limits::format_size(self.limits.max_record_bytes)
            )));
        }
        if buffer.len() > self.limits.max_total_bytes {
            return Err(OtlpError::too_large(format!(
                "the flattened records take more than {}",
                crate::limits::format_size(self.limits.max_total_bytes)
            )));
        }
        self.out.ends.push(buffer.len());
        Ok(())
    }

    pub(super) fn logs(&mut self, request: &ExportLogsServiceRequest) -> Result<(), OtlpError> {
        for resource_logs in &request.resource_logs {
            let resource = resource_json(resource_logs.resource.as_ref())?;
            for scope_logs in &resource_logs.scope_logs {
                let scope = scope_json(scope_logs.scope.as_ref());
                for log in &scope_logs.log_records {
                    let fields = LogFields {
                        time_unix_nano: log.time_unix_nano,
                        observed_time_unix_nano: log.observed_time_unix_nano,
                        severity_number: log.severity_number,
                        severity_text: &log.severity_text,
                        flags: log.flags,
                        trace_id: &log.trace_id,
                        span_id: &log.span_id,
                    };
                    self.log_record(
                        &fields,
                        |out| match &log.body {
                            Some(body) => any_value(body, out, 0),
                            None => null(out),
                        },
                        |out| attributes(&log.attributes, out, 0),
                        (&resource, &scope),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// One log record: its fields, then its body and attributes as `body` and
    /// `attributes` write them, then the resource and scope (JSON of their own).
    pub(super) fn log_record<E: From<OtlpError>>(
        &mut self,
        log: &LogFields<'_>,
        body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        attributes: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        (resource, scope): (&[u8], &[u8]),
    ) -> Result<(), E> {
        let out = self.begin();
        key("timestamp", out, true);
        timestamp(log.time_unix_nano, out);
        key("observed_timestamp", out, false);
        timestamp(log.observed_time_unix_nano, out);
        key("severity_number", out, false);
        integer(log.severity_number, out);
        key("severity_text", out, false);
        write_str(log.severity_text, out);
        key("body", out, false);
        body(out)?;
        key("flags", out, false);
        integer(log.flags, out);
        if !log.trace_id.is_empty() {
            key("trace_id", out, false);
            hex(log.trace_id, out);
        }
        if !log.span_id.is_empty() {
            key("span_id", out, false);
            hex(log.span_id, out);
        }
        key("attributes", out, false);
        attributes(out)?;
        common(resource, scope, out);
        Ok(self.end()?)
    }

    pub(super) fn metrics(&mut self, request: &ExportMetricsServiceRequest) -> Result<(), OtlpError> {
        use metric::Data;
        for resource_metrics in &request.resource_metrics {
            let resource = resource_json(resource_metrics.resource.as_ref())?;
            for scope_metrics in &resource_metrics.scope_metrics {
                let scope = scope_json(scope_metrics.scope.as_ref());
                for metric in &scope_metrics.metrics {
                    let group = MetricGroup { metric, resource: &resource, scope: &scope };
                    match &metric.data {
                        None => {}
                        Some(Data::Gauge(gauge)) => {
                            for point in &gauge.data_points {
                                let out = self.begin();
                                group.head("gauge", point.time_unix_nano, point.start_time_unix_nano, out);
                                attributes_and_common(&group, &point.attributes, out)?;
                                number_value(point, out);
                                self.end()?;
                            }
                        }
                        Some(Data::Sum(sum)) => {
                            for point in &sum.data_points {
                                let out = self.begin();
                                group.head("sum", point.time_unix_nano, point.start_time_unix_nano, out);
                                attributes_and_common(&group, &point.attributes, out)?;
                                number_value(point, out);
                                key("is_monotonic", out, false);
                                out.extend_from_slice(if sum.is_monotonic { b"true" } else { b"false" });
                                temporality(sum.aggregation_temporality, out);
                                self.end()?;
                            }
                        }
                        Some(Data::Histogram(histogram)) => {
                            for point in &histogram.data_points {
                                let out = self.begin();
                                group.head("histogram", point.time_unix_nano, point.start_time_unix_nano, out);
                                attributes_and_common(&group, &point.attributes, out)?;
                                temporality(histogram.aggregation_temporality, out);
                                key("count", out, false);
                                integer(point.count, out);
                                optional_double("sum", point.sum, out);
                                optional_double("min", point.min, out);
                                optional_double("max", point.max, out);
                                key("bucket_counts", out, false);
                                integers(&point.bucket_counts, out);
                                key("explicit_bounds", out, false);
                                doubles(&point.explicit_bounds, out);
                                self.end()?;
                            }
                        }
                        Some(Data::ExponentialHistogram(histogram)) => {
                            for point in &histogram.data_points {
                                let out = self.begin();
                                let kind = "exponential_histogram";
                                group.head(kind, point.time_unix_nano, point.start_time_unix_nano, out);
                                attributes_and_common(&group, &point.attributes, out)?;
                                temporality(histogram.aggregation_temporality, out);
                                key("count", out, false);
                                integer(point.count, out);
                                optional_double("sum", point.sum, out);
                                optional_double("min", point.min, out);
                                optional_double("max", point.max, out);
                                key("bucket_counts", out, false);
                                out.extend_from_slice(b"{\"positive\":");
                                buckets(point.positive.as_ref(), out);
                                out.extend_from_slice(b",\"negative\":");
                                buckets(point.negative.as_ref(), out);
                                out.push(b'}');
                                key("scale", out, false);
                                integer(point.scale, out);
                                key("zero_count", out, false);
                                integer(point.zero_count, out);
                                self.end()?;
                            }
                        }
                        Some(Data::Summary(summary)) => {
                            for point in &summary.data_points {
                                let out = self.begin();
                                group.head("summary", point.time_unix_nano, point.start_time_unix_nano, out);
                                attributes_and_common(&group, &point.attributes, out)?;
                                key("count", out, false);
                                integer(point.count, out);
                                key("sum", out, false);
                                double(point.sum, out);
                                key("quantile_values", out, false);
                                out.push(b'[');
                                for (i, quantile) in point.quantile_values.iter().enumerate() {
                                    if i > 0 {
                                        out.push(b',');
                                    }
                                    out.extend_from_slice(b"{\"quantile\":");
                                    double(quantile.quantile, out);
                                    out.extend_from_slice(b",\"value\":");
                                    double(quantile.value, out);
                                    out.push(b'}');
                                }
                                out.push(b']');
                                self.end()?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn traces(&mut self, request: &ExportTraceServiceRequest) -> Result<(), OtlpError> {
        for resource_spans in &request.resource_spans {
            let resource = resource_json(resource_spans.resource.as_ref())?;
            for scope_spans in &resource_spans.scope_spans {
                let scope = scope_json(scope_spans.scope.as_ref());
                for span in &scope_spans.spans {
                    let out = self.begin();
                    key("trace_id", out, true);
                    hex(&span.trace_id, out);
                    key("span_id", out, false);
                    hex(&span.span_id, out);
                    key("parent_span_id", out, false);
                    hex(&span.parent_span_id, out);
                    key("trace_state", out, false);
                    write_str(&span.trace_state, out);
                    key("name", out, false);
                    write_str(&span.name, out);
                    key("kind", out, false);
                    enum_name(span.kind, &SPAN_KINDS, out);
                    key("timestamp", out, false);
                    timestamp(span.start_time_unix_nano, out);
                    key("end_timestamp", out, false);
                    timestamp(span.end_time_unix_nano, out);
                    let (code, message) = span.status.as_ref().map_or((0, ""), |s| (s.code, s.message.as_str()));
                    key("status_code", out, false);
                    enum_name(code, &STATUS_CODES, out);
                    key("status_message", out, false);
                    write_str(message, out);
                    key("flags", out, false);
                    integer(span.flags, out);
                    key("attributes", out, false);
                    attributes(&span.attributes, out, 0)?;
                    key("events", out, false);
                    out.push(b'[');
                    for (i, event) in span.events.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        key("timestamp", out, true);
                        timestamp(event.time_unix_nano, out);
                        key("name", out, false);
                        write_str(&event.name, out);
                        key("attributes", out, false);
                        attributes(&event.attributes, out, 0)?;
                        out.push(b'}');
                    }
                    out.push(b']');
                    key("links", out, false);
                    out.push(b'[');
                    for (i, link) in span.links.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        key("trace_id", out, true);
                        hex(&link.trace_id, out);
                        key("span_id", out, false);
                        hex(&link.span_id, out);
                        key("trace_state", out, false);
                        write_str(&link.trace_state, out);
                        key("attributes", out, false);
                        attributes(&link.attributes, out, 0)?;
                        out.push(b'}');
                    }
                    out.push(b']');
                    common(&resource, &scope, out);
                    self.end()?;
                }
            }
        }
        Ok(())
    }
}

/// What the data points of one metric share.
struct MetricGroup<'a> {
    metric: &'a Metric,
    resource: &'a [u8],
    scope: &'a [u8],
}

impl MetricGroup<'_> {
    fn head(&self, kind: &str, time: u64, start: u64, out: &mut Vec<u8>) {
        key("metric_name", out, true);
        write_str(&self.metric.name, out);
        key("metric_description", out, false);
        write_str(&self.metric.description, out);
        key("metric_unit", out, false);
        write_str(&self.metric.unit, out);
        key("metric_type", out, false);
        write_str(kind, out);
        key("timestamp", out, false);
        timestamp(time, out);
        key("start_timestamp", out, false);
        timestamp(start, out);
    }
}

fn attributes_and_common(group: &MetricGroup<'_>, list: &[KeyValue], out: &mut Vec<u8>) -> Result<(), OtlpError> {
    key("attributes", out, false);
    attributes(list, out, 0)?;
    common(group.resource, group.scope, out);
    Ok(())
}

const SPAN_KINDS: [&str; 6] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS_CODES: [&str; 3] = ["unset", "ok", "error"];
const TEMPORALITIES: [&str; 3] = ["unspecified", "delta", "cumulative"];

/// `"name":` (with the `{` of a new object first, or a `,` between fields).
fn key(name: &str, out: &mut Vec<u8>, first: bool) {
    if first {
        if out.last() != Some(&b'{') {
            out.push(b'{');
        }
    } else {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `,"resource":{...},"scope":{...}`: the fields every record ends with.
fn common(resource: &[u8], scope: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"resource\":");
    out.extend_from_slice(resource);
    out.extend_from_slice(b",\"scope\":");
    out.extend_from_slice(scope);
}

fn resource_json(resource: Option<&Resource>) -> Result<Vec<u8>, OtlpError> {
    let mut out = Vec::new();
    attributes(resource.map_or(&[][..], |r| &r.attributes), &mut out, 0)?;
    Ok(out)
}

fn scope_json(scope: Option<&InstrumentationScope>) -> Vec<u8> {
    let (name, version) = scope.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
    scope_fields_json(name, version)
}

/// `{"name":...,"version":...}`: the scope of a group of records.
pub(super) fn scope_fields_json(name: &str, version: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"name\":");
    write_str(name, &mut out);
    out.extend_from_slice(b",\"version\":");
    write_str(version, &mut out);
    out.push(b'}');
    out
}

fn number_value(point: &NumberDataPoint, out: &mut Vec<u8>) {
    key("value", out, false);
    match point.value {
        Some(number_data_point::Value::AsDouble(d)) => double(d, out),
        Some(number_data_point::Value::AsInt(i)) => integer(i, out),
        None => out.extend_from_slice(b"null"),
    }
}

fn temporality(value: i32, out: &mut Vec<u8>) {
    key("aggregation_temporality", out, false);
    enum_name(value, &TEMPORALITIES, out);
}

fn enum_name(value: i32, names: &[&str], out: &mut Vec<u8>) {
    match usize::try_from(value).ok().and_then(|i| names.get(i)) {
        Some(name) => write_str(name, out),
        // A value of a newer OTLP version: its number, still as a string.
        None => write_str(itoa::Buffer::new().format(value), out),
    }
}

fn buckets(buckets: Option<&Buckets>, out: &mut Vec<u8>) {
    let (offset, counts) = buckets.map_or((0, &[][..]), |b| (b.offset, b.bucket_counts.as_slice()));
    out.extend_from_slice(b"{\"offset\":");
    integer(offset, out);
    out.extend_from_slice(b",\"counts\":");
    integers(counts, out);
    out.push(b'}');
}

fn optional_double(name: &str, value: Option<f64>, out: &mut Vec<u8>) {
    key(name, out, false);
    match value {
        Some(d) => double(d, out),
        None => out.extend_from_slice(b"null"),
    }
}

pub(super) fn integer<I: itoa::Integer>(value: I, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn integers(values: &[u64], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, &value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        integer(value, out);
    }
    out.push(b']');
}

fn doubles(values: &[f64], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, &value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        double(value, out);
    }
    out.push(b']');
}

/// A double as a JSON number; NaN and the infinities (no JSON number) as the
/// strings protobuf's JSON mapping uses.
pub(super) fn double(value: f64, out: &mut Vec<u8>) {
    if value.is_finite() {
        write_f64(value, out);
    } else if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

fn hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 0xf) as usize]);
    }
    out.push(b'"');
}

/// Nanoseconds since the epoch as RFC 3339 in UTC with nine fractional digits
/// (`2026-12-01T05:00:00.123456789Z`); `""` for zero (not set).
fn timestamp(ns: u64, out: &mut Vec<u8>) {
    if ns == 0 {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let seconds = (ns / 1_000_000_000) as i64;
    let nanos = (ns % 1_000_000_000) as u32;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400) as u32;
    let mut text = *b"\"0000-00-00T00:00:00.000000000Z\"";
    // Two digits at a time from a table: a record has two timestamps.
    let mut pair = |at: usize, value: u32| {
        let i = 2 * (value % 100) as usize;
        text[at..at + 2].copy_from_slice(&DIGIT_PAIRS[i..i + 2]);
    };
    // The years of u64 nanoseconds are 1970..=2554.
    pair(1, year as u32 / 100);
    pair(3, year as u32);
    pair(6, month);
    pair(9, day);
    pair(12, of_day / 3600);
    pair(15, of_day / 60 % 60);
    pair(18, of_day % 60);
    pair(21, nanos / 10_000_000);
    pair(23, nanos / 100_000);
    pair(25, nanos / 1_000);
    pair(27, nanos / 10);
    text[29] = b'0' + (nanos % 10) as u8;
    out.extend_from_slice(&text);
}

const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Key-value pairs as a JSON object.
fn attributes(list: &[KeyValue], out: &mut Vec<u8>, depth: usize) -> Result<(), OtlpError> {
    object(
        list,
        |pair| &pair.key,
        |pair, out| match &pair.value {
            Some(value) => any_value(value, out, depth + 1),
            None => null(out),
        },
        out,
    )?;
    Ok(())
}

/// Pairs as a JSON object, each value written by `value`. Keys are unique in
/// valid OTLP; a repeated key is written once, where it last occurs, with its
/// last value (as JSON parsers read it). Returns how many pairs were written.
pub(super) fn object<P, E>(
    pairs: &[P],
    key_of: impl Fn(&P) -> &str,
    mut value: impl FnMut(&P, &mut Vec<u8>) -> Result<(), E>,
    out: &mut Vec<u8>,
) -> Result<usize, E> {
    // Short lists are scanned; long ones (a hostile body) looked up in a map,
    // so the check stays linear in the size of the body.
    let last_of: Option<std::collections::HashMap<&str, usize>> =
        (pairs.len() > 16).then(|| pairs.iter().enumerate().map(|(i, pair)| (key_of(pair), i)).collect());
    out.push(b'{');
    let mut written = 0;
    for (i, pair) in pairs.iter().enumerate() {
        let key = key_of(pair);
        let repeated_later = match &last_of {
            Some(map) => map[key] != i,
            None => pairs[i + 1..].iter().any(|later| key_of(later) == key),
        };
        if repeated_later {
            continue;
        }
        if written > 0 {
            out.push(b',');
        }
        written += 1;
        write_str(key, out);
        out.push(b':');
        value(pair, out)?;
    }
    out.push(b'}');
    Ok(written)
}

/// `null`, for a value that is not set.
pub(super) fn null<E>(out: &mut Vec<u8>) -> Result<(), E> {
    out.extend_from_slice(b"null");
    Ok(())
}

/// Bytes as a base64 string (protobuf's JSON mapping of `bytes`).
pub(super) fn base64_str(bytes: &[u8], out: &mut Vec<u8>) {
    write_str(&base64::engine::general_purpose::STANDARD.encode(bytes), out);
}

fn any_value(value: &AnyValue, out: &mut Vec<u8>, depth: usize) -> Result<(), OtlpError> {
    use any_value::Value as V;
    if depth > MAX_ANY_VALUE_DEPTH {
        return Err(OtlpError::malformed(format!("values nested deeper than {MAX_ANY_VALUE_DEPTH} levels")));
    }
    match &value.value {
        None => out.extend_from_slice(b"null"),
        Some(V::StringValue(s)) => write_str(s, out),
        Some(V::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(V::IntValue(i)) => integer(*i, out),
        Some(V::DoubleValue(d)) => double(*d, out),
        Some(V::BytesValue(bytes)) => base64_str(bytes, out),
        Some(V::ArrayValue(array)) => {
            out.push(b'[');
            for (i, item) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                any_value(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Some(V::KvlistValue(list)) => attributes(&list.values, out, depth + 1)?,
    }
    Ok(())
}
