//! OTLP JSON (the OTLP/HTTP JSON encoding) into the protobuf messages of
//! [`super::proto`], so that both encodings are flattened by one code path.
//!
//! The encoding's own rules, as the OTLP specification states them: field names
//! in lowerCamelCase (the proto names are accepted too, as protobuf's JSON
//! parsers do), trace and span ids as hex strings (not base64), enums as
//! integers, 64-bit integers as strings or numbers, `bytesValue` in base64,
//! unknown fields ignored. Nesting is bounded by `serde_json`'s recursion
//! limit (128 levels) before anything is walked.

use base64::Engine;
use serde_json::{Map, Value};

use super::proto::*;

/// Why a JSON body is not an OTLP request.
pub type JsonError = String;

type Result<T> = std::result::Result<T, JsonError>;

fn field<'v>(object: &'v Map<String, Value>, camel: &str, snake: &str) -> Option<&'v Value> {
    match object.get(camel) {
        Some(Value::Null) | None => match object.get(snake) {
            Some(Value::Null) | None => None,
            found => found,
        },
        found => found,
    }
}

fn object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>> {
    value.as_object().ok_or_else(|| format!("{what}: expected an object"))
}

fn array<'v>(object: &'v Map<String, Value>, camel: &str, snake: &str) -> Result<&'v [Value]> {
    match field(object, camel, snake) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("\"{camel}\": expected an array")),
    }
}

fn string(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<String> {
    match field(object, camel, snake) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("\"{camel}\": expected a string")),
    }
}

fn boolean(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<bool> {
    match field(object, camel, snake) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("\"{camel}\": expected true or false")),
    }
}

/// A 64-bit integer: a JSON number or a decimal string (protobuf's JSON form of int64).
fn integer<T: TryFrom<i128>>(value: &Value, name: &str) -> Result<T> {
    let wide: Option<i128> = match value {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)).or_else(|| {
            // 1e3 or 5.0: accepted when integral, as protobuf's JSON parsers do.
            n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1.9e19).map(|f| f as i128)
        }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    wide.and_then(|w| T::try_from(w).ok()).ok_or_else(|| format!("\"{name}\": expected an integer in range"))
}

fn opt_integer<T: TryFrom<i128> + Default>(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<T> {
    field(object, camel, snake).map_or(Ok(T::default()), |v| integer(v, camel))
}

fn double(value: &Value, name: &str) -> Result<f64> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("\"{name}\": expected a number")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.trim().parse().map_err(|_| format!("\"{name}\": expected a number")),
        },
        _ => Err(format!("\"{name}\": expected a number")),
    }
}

fn opt_double(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<Option<f64>> {
    field(object, camel, snake).map(|v| double(v, camel)).transpose()
}

/// Trace and span ids: hex in OTLP JSON (`""` for none).
fn id(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<Vec<u8>> {
    let text = string(object, camel, snake)?;
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err(format!("\"{camel}\": expected a hex string"));
    }
    bytes
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(format!("\"{camel}\": expected a hex string")),
            }
        })
        .collect()
}

fn any_value(value: &Value) -> Result<AnyValue> {
    use any_value::Value as V;
    let object = object(value, "AnyValue")?;
    let mut found = None;
    for (key, item) in object {
        if item.is_null() {
            continue;
        }
        found = Some(match key.as_str() {
            "stringValue" | "string_value" => {
                V::StringValue(item.as_str().ok_or_else(|| "\"stringValue\": expected a string".to_owned())?.to_owned())
            }
            "boolValue" | "bool_value" => {
                V::BoolValue(item.as_bool().ok_or_else(|| "\"boolValue\": expected true or false".to_owned())?)
            }
            "intValue" | "int_value" => V::IntValue(integer(item, "intValue")?),
            "doubleValue" | "double_value" => V::DoubleValue(double(item, "doubleValue")?),
            "bytesValue" | "bytes_value" => {
                let text = item.as_str().ok_or_else(|| "\"bytesValue\": expected a base64 string".to_owned())?;
                let engine = &base64::engine::general_purpose::STANDARD;
                let url_safe = &base64::engine::general_purpose::URL_SAFE;
                let bytes = engine
                    .decode(text)
                    .or_else(|_| url_safe.decode(text))
                    .map_err(|_| "\"bytesValue\": expected a base64 string".to_owned())?;
                V::BytesValue(bytes)
            }
            "arrayValue" | "array_value" => {
                let values = array(object_of(item, "arrayValue")?, "values", "values")?;
                V::ArrayValue(ArrayValue { values: values.iter().map(any_value).collect::<Result<_>>()? })
            }
            "kvlistValue" | "kvlist_value" => {
                let values = array(object_of(item, "kvlistValue")?, "values", "values")?;
                V::KvlistValue(KeyValueList { values: key_values_of(values)? })
            }
            _ => continue,
        });
    }
    Ok(AnyValue { value: found })
}

fn object_of<'v>(value: &'v Value, name: &str) -> Result<&'v Map<String, Value>> {
    value.as_object().ok_or_else(|| format!("\"{name}\": expected an object"))
}

fn key_values_of(items: &[Value]) -> Result<Vec<KeyValue>> {
    items
        .iter()
        .map(|item| {
            let object = object(item, "KeyValue")?;
            let value = field(object, "value", "value").map(any_value).transpose()?;
            Ok(KeyValue { key: string(object, "key", "key")?, value })
        })
        .collect()
}

fn attributes(object: &Map<String, Value>) -> Result<Vec<KeyValue>> {
    key_values_of(array(object, "attributes", "attributes")?)
}

fn resource(object: &Map<String, Value>) -> Result<Option<Resource>> {
    field(object, "resource", "resource")
        .map(|r| Ok(Resource { attributes: attributes(object_of(r, "resource")?)? }))
        .transpose()
}

fn scope(object: &Map<String, Value>) -> Result<Option<InstrumentationScope>> {
    field(object, "scope", "scope")
        .map(|s| {
            let s = object_of(s, "scope")?;
            Ok(InstrumentationScope { name: string(s, "name", "name")?, version: string(s, "version", "version")? })
        })
        .transpose()
}

fn each<T>(
    object: &Map<String, Value>,
    camel: &str,
    snake: &str,
    f: impl Fn(&Map<String, Value>) -> Result<T>,
) -> Result<Vec<T>> {
    array(object, camel, snake)?.iter().map(|item| f(object_of(item, camel)?)).collect()
}

fn root(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body is not a JSON object".to_owned()),
        Err(e) => Err(format!("malformed JSON: {e}")),
    }
}

/// An `ExportLogsServiceRequest` in OTLP JSON.
pub fn logs(body: &[u8]) -> Result<ExportLogsServiceRequest> {
    let root = root(body)?;
    let resource_logs = each(&root, "resourceLogs", "resource_logs", |rl| {
        Ok(ResourceLogs {
            resource: resource(rl)?,
            scope_logs: each(rl, "scopeLogs", "scope_logs", |sl| {
                Ok(ScopeLogs {
                    scope: scope(sl)?,
                    log_records: each(sl, "logRecords", "log_records", |r| {
                        Ok(LogRecord {
                            time_unix_nano: opt_integer(r, "timeUnixNano", "time_unix_nano")?,
                            observed_time_unix_nano: opt_integer(r, "observedTimeUnixNano", "observed_time_unix_nano")?,
                            severity_number: opt_integer(r, "severityNumber", "severity_number")?,
                            severity_text: string(r, "severityText", "severity_text")?,
                            body: field(r, "body", "body").map(any_value).transpose()?,
                            attributes: attributes(r)?,
                            flags: opt_integer(r, "flags", "flags")?,
                            trace_id: id(r, "traceId", "trace_id")?,
                            span_id: id(r, "spanId", "span_id")?,
                        })
                    })?,
                })
            })?,
        })
    })?;
    Ok(ExportLogsServiceRequest { resource_logs })
}

fn number_point(p: &Map<String, Value>) -> Result<NumberDataPoint> {
    use number_data_point::Value as V;
    let value = if let Some(v) = field(p, "asDouble", "as_double") {
        Some(V::AsDouble(double(v, "asDouble")?))
    } else if let Some(v) = field(p, "asInt", "as_int") {
        Some(V::AsInt(integer(v, "asInt")?))
    } else {
        None
    };
    Ok(NumberDataPoint {
        attributes: attributes(p)?,
        start_time_unix_nano: opt_integer(p, "startTimeUnixNano", "start_time_unix_nano")?,
        time_unix_nano: opt_integer(p, "timeUnixNano", "time_unix_nano")?,
        value,
    })
}

fn counts(object: &Map<String, Value>, camel: &str, snake: &str) -> Result<Vec<u64>> {
    array(object, camel, snake)?.iter().map(|v| integer(v, camel)).collect()
}

fn buckets(object: &Map<String, Value>, camel: &str) -> Result<Option<Buckets>> {
    field(object, camel, camel)
        .map(|b| {
            let b = object_of(b, camel)?;
            Ok(Buckets {
                offset: opt_integer(b, "offset", "offset")?,
                bucket_counts: counts(b, "bucketCounts", "bucket_counts")?,
            })
        })
        .transpose()
}

fn metric(m: &Map<String, Value>) -> Result<Metric> {
    use metric::Data;
    let temporality =
        |o: &Map<String, Value>| opt_integer::<i32>(o, "aggregationTemporality", "aggregation_temporality");
    let data = if let Some(g) = field(m, "gauge", "gauge") {
        Some(Data::Gauge(Gauge {
            data_points: each(object_of(g, "gauge")?, "dataPoints", "data_points", number_point)?,
        }))
    } else if let Some(s) = field(m, "sum", "sum") {
        let s = object_of(s, "sum")?;
        Some(Data::Sum(Sum {
            data_points: each(s, "dataPoints", "data_points", number_point)?,
            aggregation_temporality: temporality(s)?,
            is_monotonic: boolean(s, "isMonotonic", "is_monotonic")?,
        }))
    } else if let Some(h) = field(m, "histogram", "histogram") {
        let h = object_of(h, "histogram")?;
        Some(Data::Histogram(Histogram {
            data_points: each(h, "dataPoints", "data_points", |p| {
                Ok(HistogramDataPoint {
                    attributes: attributes(p)?,
                    start_time_unix_nano: opt_integer(p, "startTimeUnixNano", "start_time_unix_nano")?,
                    time_unix_nano: opt_integer(p, "timeUnixNano", "time_unix_nano")?,
                    count: opt_integer(p, "count", "count")?,
                    sum: opt_double(p, "sum", "sum")?,
                    bucket_counts: counts(p, "bucketCounts", "bucket_counts")?,
                    explicit_bounds: array(p, "explicitBounds", "explicit_bounds")?
                        .iter()
                        .map(|v| double(v, "explicitBounds"))
                        .collect::<Result<_>>()?,
                    min: opt_double(p, "min", "min")?,
                    max: opt_double(p, "max", "max")?,
                })
            })?,
            aggregation_temporality: temporality(h)?,
        }))
    } else if let Some(h) = field(m, "exponentialHistogram", "exponential_histogram") {
        let h = object_of(h, "exponentialHistogram")?;
        Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: each(h, "dataPoints", "data_points", |p| {
                Ok(ExponentialHistogramDataPoint {
                    attributes: attributes(p)?,
                    start_time_unix_nano: opt_integer(p, "startTimeUnixNano", "start_time_unix_nano")?,
                    time_unix_nano: opt_integer(p, "timeUnixNano", "time_unix_nano")?,
                    count: opt_integer(p, "count", "count")?,
                    sum: opt_double(p, "sum", "sum")?,
                    scale: opt_integer(p, "scale", "scale")?,
                    zero_count: opt_integer(p, "zeroCount", "zero_count")?,
                    positive: buckets(p, "positive")?,
                    negative: buckets(p, "negative")?,
                    min: opt_double(p, "min", "min")?,
                    max: opt_double(p, "max", "max")?,
                })
            })?,
            aggregation_temporality: temporality(h)?,
        }))
    } else if let Some(s) = field(m, "summary", "summary") {
        Some(Data::Summary(Summary {
            data_points: each(object_of(s, "summary")?, "dataPoints", "data_points", |p| {
                Ok(SummaryDataPoint {
                    attributes: attributes(p)?,
                    start_time_unix_nano: opt_integer(p, "startTimeUnixNano", "start_time_unix_nano")?,
                    time_unix_nano: opt_integer(p, "timeUnixNano", "time_unix_nano")?,
                    count: opt_integer(p, "count", "count")?,
                    sum: opt_double(p, "sum", "sum")?.unwrap_or(0.0),
                    quantile_values: each(p, "quantileValues", "quantile_values", |q| {
                        Ok(ValueAtQuantile {
                            quantile: opt_double(q, "quantile", "quantile")?.unwrap_or(0.0),
                            value: opt_double(q, "value", "value")?.unwrap_or(0.0),
                        })
                    })?,
                })
            })?,
        }))
    } else {
        None
    };
    Ok(Metric {
        name: string(m, "name", "name")?,
        description: string(m, "description", "description")?,
        unit: string(m, "unit", "unit")?,
        data,
    })
}

/// An `ExportMetricsServiceRequest` in OTLP JSON.
pub fn metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest> {
    let root = root(body)?;
    let resource_metrics = each(&root, "resourceMetrics", "resource_metrics", |rm| {
        Ok(ResourceMetrics {
            resource: resource(rm)?,
            scope_metrics: each(rm, "scopeMetrics", "scope_metrics", |sm| {
                Ok(ScopeMetrics { scope: scope(sm)?, metrics: each(sm, "metrics", "metrics", metric)? })
            })?,
        })
    })?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

/// An `ExportTraceServiceRequest` in OTLP JSON.
pub fn traces(body: &[u8]) -> Result<ExportTraceServiceRequest> {
    let root = root(body)?;
    let resource_spans = each(&root, "resourceSpans", "resource_spans", |rs| {
        Ok(ResourceSpans {
            resource: resource(rs)?,
            scope_spans: each(rs, "scopeSpans", "scope_spans", |ss| {
                Ok(ScopeSpans {
                    scope: scope(ss)?,
                    spans: each(ss, "spans", "spans", |s| {
                        let status = field(s, "status", "status")
                            .map(|st| {
                                let st = object_of(st, "status")?;
                                Ok::<_, JsonError>(Status {
                                    message: string(st, "message", "message")?,
                                    code: opt_integer(st, "code", "code")?,
                                })
                            })
                            .transpose()?;
                        Ok(Span {
                            trace_id: id(s, "traceId", "trace_id")?,
                            span_id: id(s, "spanId", "span_id")?,
                            trace_state: string(s, "traceState", "trace_state")?,
                            parent_span_id: id(s, "parentSpanId", "parent_span_id")?,
                            flags: opt_integer(s, "flags", "flags")?,
                            name: string(s, "name", "name")?,
                            kind: opt_integer(s, "kind", "kind")?,
                            start_time_unix_nano: opt_integer(s, "startTimeUnixNano", "start_time_unix_nano")?,
                            end_time_unix_nano: opt_integer(s, "endTimeUnixNano", "end_time_unix_nano")?,
                            attributes: attributes(s)?,
                            events: each(s, "events", "events", |e| {
                                Ok(SpanEvent {
                                    time_unix_nano: opt_integer(e, "timeUnixNano", "time_unix_nano")?,
                                    name: string(e, "name", "name")?,
                                    attributes: attributes(e)?,
                                })
                            })?,
                            links: each(s, "links", "links", |l| {
                                Ok(SpanLink {
                                    trace_id: id(l, "traceId", "trace_id")?,
                                    span_id: id(l, "spanId", "span_id")?,
                                    trace_state: string(l, "traceState", "trace_state")?,
                                    attributes: attributes(l)?,
                                    flags: opt_integer(l, "flags", "flags")?,
                                })
                            })?,
                            status,
                        })
                    })?,
                })
            })?,
        })
    })?;
    Ok(ExportTraceServiceRequest { resource_spans })
}
