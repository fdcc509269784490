use std::io::Write;

use prost::Message;

use super::proto::*;
use super::*;

const LIMITS: OtlpLimits = OtlpLimits { max_body_bytes: 1 << 20, max_record_bytes: 1 << 16, max_total_bytes: 4 << 20 };
// 2026-12-01T05:00:00.123456789Z
const T0: u64 = 1_796_101_200_123_456_789;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }) }
}

fn text(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.into())
}

fn resource() -> Option<Resource> {
    Some(Resource { attributes: vec![kv("service.name", text("shop"))] })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: "app".into(), version: "1.2".into() })
}

fn records(flattened: &Flattened) -> Vec<String> {
    flattened.iter().map(|r| String::from_utf8(r.to_vec()).unwrap()).collect()
}

fn flatten_pb(signal: Signal, message: &impl Message) -> Vec<String> {
    records(&decode(signal, Encoding::Protobuf, false, &message.encode_to_vec(), LIMITS).unwrap())
}

fn log_request() -> ExportLogsServiceRequest {
    use any_value::Value as V;
    let nested = AnyValue {
        value: Some(V::KvlistValue(KeyValueList {
            values: vec![
                kv("list", V::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(V::IntValue(1)) }] })),
                kv("raw", V::BytesValue(vec![0, 255])),
            ],
        })),
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![
                    LogRecord {
                        time_unix_nano: T0,
                        observed_time_unix_nano: T0 + 1,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue { value: Some(text("hello \"you\"")) }),
                        attributes: vec![
                            kv("user", V::IntValue(-7)),
                            kv("ok", V::BoolValue(true)),
                            kv("ratio", V::DoubleValue(0.5)),
                            KeyValue { key: "nested".into(), value: Some(nested) },
                        ],
                        flags: 1,
                        trace_id: vec![0xab; 16],
                        span_id: vec![0x01; 8],
                    },
                    LogRecord { body: None, ..Default::default() },
                ],
            }],
        }],
    }
}

#[test]
fn logs_flatten_to_one_record_per_log_record() {
    let got = flatten_pb(Signal::Logs, &log_request());
    assert_eq!(
        got,
        [
            concat!(
                r#"{"timestamp":"2026-12-01T05:00:00.123456789Z","observed_timestamp":"2026-12-01T05:00:00.123456790Z","#,
                r#""severity_number":9,"severity_text":"INFO","body":"hello \"you\"","flags":1,"#,
                r#""trace_id":"abababababababababababababababab","span_id":"0101010101010101","#,
                r#""attributes":{"user":-7,"ok":true,"ratio":0.5,"nested":{"list":[1],"raw":"AP8="}},"#,
                r#""resource":{"service.name":"shop"},"scope":{"name":"app","version":"1.2"}}"#
            ),
            concat!(
                r#"{"timestamp":"","observed_timestamp":"","severity_number":0,"severity_text":"","body":null,"#,
                r#""flags":0,"attributes":{},"resource":{"service.name":"shop"},"scope":{"name":"app","version":"1.2"}}"#
            ),
        ]
    );
}

#[test]
fn otlp_json_decodes_like_protobuf() {
    let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
      "scopeLogs":[{"scope":{"name":"app","version":"1.2"},"logRecords":[
        {"timeUnixNano":"1796101200123456789","observedTimeUnixNano":1796101200123456790,"severityNumber":9,
         "severityText":"INFO","body":{"stringValue":"hello \"you\""},"flags":1,
         "traceId":"ABABABABABABABABABABABABABABABAB","spanId":"0101010101010101","unknownField":{"x":1},
         "attributes":[{"key":"user","value":{"intValue":"-7"}},{"key":"ok","value":{"boolValue":true}},
           {"key":"ratio","value":{"doubleValue":0.5}},
           {"key":"nested","value":{"kvlistValue":{"values":[
              {"key":"list","value":{"arrayValue":{"values":[{"intValue":1}]}}},
              {"key":"raw","value":{"bytesValue":"AP8="}}]}}}]},
        {}]}]}]}"#;
    let from_json = records(&decode(Signal::Logs, Encoding::Json, false, body, LIMITS).unwrap());
    assert_eq!(from_json, flatten_pb(Signal::Logs, &log_request()));
}

#[test]
fn malformed_bodies_are_refused() {
    let pb = |body: &[u8]| decode(Signal::Logs, Encoding::Protobuf, false, body, LIMITS).unwrap_err();
    assert!(!pb(b"\x0a\xff\xff").too_large);
    assert!(pb(b"\x0a\xff\xff").message.starts_with("invalid OTLP protobuf body: "));
    let json = |body: &[u8]| decode(Signal::Traces, Encoding::Json, false, body, LIMITS).unwrap_err().message;
    assert_eq!(json(b"[1]"), "invalid OTLP JSON body: the body is not a JSON object");
    assert_eq!(
        json(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz0"}]}]}]}"#),
        "invalid OTLP JSON body: \"traceId\": expected a hex string"
    );
    assert_eq!(
        json(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#),
        "invalid OTLP JSON body: \"startTimeUnixNano\": expected an integer in range"
    );
}

#[test]
fn deep_any_values_are_refused() {
    let mut value = "{\"stringValue\":\"x\"}".to_owned();
    for _ in 0..200 {
        value = format!("{{\"arrayValue\":{{\"values\":[{value}]}}}}");
    }
    let body = format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{value}}}]}}]}}]}}"#);
    let error = decode(Signal::Logs, Encoding::Json, false, body.as_bytes(), LIMITS).unwrap_err();
    assert!(error.message.contains("recursion limit"), "{}", error.message);
    // The same depth in protobuf stops in prost's recursion limit.
    let mut any = AnyValue { value: Some(text("x")) };
    for _ in 0..200 {
        any = AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![any] })) };
    }
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: vec![LogRecord { body: Some(any), ..Default::default() }],
            }],
        }],
    };
    let error = decode(Signal::Logs, Encoding::Protobuf, false, &request.encode_to_vec(), LIMITS).unwrap_err();
    assert!(error.message.contains("recursion limit"), "{}", error.message);
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn gzip_bodies_are_bounded_after_decompression() {
    let body = log_request().encode_to_vec();
    let got = records(&decode(Signal::Logs, Encoding::Protobuf, true, &gzip(&body), LIMITS).unwrap());
    assert_eq!(got, flatten_pb(Signal::Logs, &log_request()));
    // A bomb: 64 MiB of zeros in about 64 KiB.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < LIMITS.max_body_bytes);
    let error = decode(Signal::Logs, Encoding::Protobuf, true, &bomb, LIMITS).unwrap_err();
    assert!(error.too_large);
    assert_eq!(error.message, "Request body size is over the maximum \"1048576B\" once decompressed.");
    let error = decode(Signal::Logs, Encoding::Protobuf, true, b"not gzip", LIMITS).unwrap_err();
    assert!(!error.too_large);
}

#[test]
fn records_and_their_total_are_bounded() {
    let mut request = log_request();
    let big = "x".repeat(70_000);
    request.resource_logs[0].scope_logs[0].log_records[1].severity_text = big;
    let error = decode(Signal::Logs, Encoding::Protobuf, false, &request.encode_to_vec(), LIMITS).unwrap_err();
    assert!(error.too_large);
    assert!(error.message.starts_with("record 2: the flattened record has 70"), "{}", error.message);
    // A large resource repeated over many empty log records.
    let mut request = log_request();
    request.resource_logs[0].resource = Some(Resource { attributes: vec![kv("pad", text(&"y".repeat(60_000)))] });
    request.resource_logs[0].scope_logs[0].log_records = vec![LogRecord::default(); 100];
    let error = decode(Signal::Logs, Encoding::Protobuf, false, &request.encode_to_vec(), LIMITS).unwrap_err();
    assert_eq!(error.message, "the flattened records take more than 4MB");
}

fn point(value: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("host", text("a"))],
        start_time_unix_nano: T0 - 123_456_789,
        time_unix_nano: T0,
        value: Some(value),
    }
}

fn metrics_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics { scope: scope(), metrics }],
        }],
    }
}

fn metric(name: &str, data: metric::Data) -> Metric {
    Metric { name: name.into(), description: "d".into(), unit: "ms".into(), data: Some(data) }
}

const HEAD_TAIL: &str = r#""timestamp":"2026-12-01T05:00:00.123456789Z","start_timestamp":"2026-12-01T05:00:00.000000000Z","attributes":{"host":"a"},"resource":{"service.name":"shop"},"scope":{"name":"app","version":"1.2"}"#;

#[test]
fn metrics_flatten_to_one_record_per_data_point() {
    use metric::Data;
    use number_data_point::Value as N;
    let request = metrics_request(vec![
        metric("g", Data::Gauge(Gauge { data_points: vec![point(N::AsDouble(1.5)), point(N::AsInt(-3))] })),
        metric(
            "s",
            Data::Sum(Sum { data_points: vec![point(N::AsInt(10))], aggregation_temporality: 2, is_monotonic: true }),
        ),
        metric(
            "h",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("host", text("a"))],
                    start_time_unix_nano: T0 - 123_456_789,
                    time_unix_nano: T0,
                    count: 3,
                    sum: Some(7.5),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![1.0, 5.0],
                    min: Some(0.5),
                    max: None,
                }],
                aggregation_temporality: 1,
            }),
        ),
        metric(
            "e",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: vec![kv("host", text("a"))],
                    start_time_unix_nano: T0 - 123_456_789,
                    time_unix_nano: T0,
                    count: 4,
                    sum: Some(10.0),
                    scale: -2,
                    zero_count: 1,
                    positive: Some(Buckets { offset: 3, bucket_counts: vec![2, 1] }),
                    negative: None,
                    min: Some(0.0),
                    max: Some(f64::INFINITY),
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "q",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: vec![kv("host", text("a"))],
                    start_time_unix_nano: T0 - 123_456_789,
                    time_unix_nano: T0,
                    count: 2,
                    sum: 3.0,
                    quantile_values: vec![
                        ValueAtQuantile { quantile: 0.5, value: 1.0 },
                        ValueAtQuantile { quantile: 1.0, value: 2.0 },
                    ],
                }],
            }),
        ),
        Metric { name: "empty".into(), ..Default::default() },
    ]);
    let head = |name: &str, kind: &str| {
        format!(
            r#"{{"metric_name":"{name}","metric_description":"d","metric_unit":"ms","metric_type":"{kind}",{HEAD_TAIL}"#
        )
    };
    assert_eq!(
        flatten_pb(Signal::Metrics, &request),
        [
            format!(r#"{},"value":1.5}}"#, head("g", "gauge")),
            format!(r#"{},"value":-3}}"#, head("g", "gauge")),
            format!(r#"{},"value":10,"is_monotonic":true,"aggregation_temporality":"cumulative"}}"#, head("s", "sum")),
            format!(
                r#"{},"aggregation_temporality":"delta","count":3,"sum":7.5,"min":0.5,"max":null,"bucket_counts":[1,2,0],"explicit_bounds":[1.0,5.0]}}"#,
                head("h", "histogram")
            ),
            format!(
                r#"{},"aggregation_temporality":"cumulative","count":4,"sum":10.0,"min":0.0,"max":"Infinity","bucket_counts":{{"positive":{{"offset":3,"counts":[2,1]}},"negative":{{"offset":0,"counts":[]}}}},"scale":-2,"zero_count":1}}"#,
                head("e", "exponential_histogram")
            ),
            format!(
                r#"{},"count":2,"sum":3.0,"quantile_values":[{{"quantile":0.5,"value":1.0}},{{"quantile":1.0,"value":2.0}}]}}"#,
                head("q", "summary")
            ),
        ]
    );
    // The same request in OTLP JSON.
    let json = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
      "scopeMetrics":[{"scope":{"name":"app","version":"1.2"},"metrics":[
        {"name":"g","description":"d","unit":"ms","gauge":{"dataPoints":[
          {"attributes":[{"key":"host","value":{"stringValue":"a"}}],"startTimeUnixNano":"1796101200000000000","timeUnixNano":"1796101200123456789","asDouble":1.5},
          {"attributes":[{"key":"host","value":{"stringValue":"a"}}],"startTimeUnixNano":"1796101200000000000","timeUnixNano":"1796101200123456789","asInt":"-3"}]}},
        {"name":"s","description":"d","unit":"ms","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
          {"attributes":[{"key":"host","value":{"stringValue":"a"}}],"startTimeUnixNano":"1796101200000000000","timeUnixNano":"1796101200123456789","asInt":"10"}]}},
        {"name":"h","description":"d","unit":"ms","histogram":{"aggregationTemporality":1,"dataPoints":[
          {"attributes":[{"key":"host","value":{"stringValue":"a"}}],"startTimeUnixNano":"1796101200000000000","timeUnixNano":"1796101200123456789",
           "count":"3","sum":7.5,"bucketCounts":["1","2","0"],"explicitBounds":[1,5],"min":0.5}]}},
        {"name":"e","description":"d","unit":"ms","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[
          {"attributes":[{"key":"host","value":{"stringValue":"a"}}],"startTimeUnixNano":"1796101200000000000","timeUnixNano":"1796101200123456789",
           "count":"4","sum":10,"scale":-2,"zeroCount":"1","positive":{"offset":3,"bucketCounts":["2","1"]},"min":0,"max":"Infinity"}]}},
        {"name":"q","description":"d","unit":"ms","summary":{"dataPoints":[
          {"attributes":[{"key":"host","value":{"stringValue":"a"}}],"startTimeUnixNano":"1796101200000000000","timeUnixNano":"1796101200123456789",
           "count":"2","sum":3,"quantileValues":[{"quantile":0.5,"value":1},{"quantile":1,"value":2}]}]}},
        {"name":"empty"}]}]}]}"#;
    let from_json = records(&decode(Signal::Metrics, Encoding::Json, false, json.as_bytes(), LIMITS).unwrap());
    assert_eq!(from_json, flatten_pb(Signal::Metrics, &request));
}

#[test]
fn traces_flatten_to_one_record_per_span() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: vec![Span {
                    trace_id: vec![0x0a; 16],
                    span_id: vec![0x0b; 8],
                    trace_state: "k=v".into(),
                    parent_span_id: vec![],
                    flags: 257,
                    name: "GET /".into(),
                    kind: 2,
                    start_time_unix_nano: T0,
                    end_time_unix_nano: T0 + 1_000_000,
                    attributes: vec![kv("http.status", any_value::Value::IntValue(200))],
                    events: vec![SpanEvent {
                        time_unix_nano: T0 + 5,
                        name: "retry".into(),
                        attributes: vec![kv("n", any_value::Value::IntValue(1))],
                    }],
                    links: vec![SpanLink {
                        trace_id: vec![0x0c; 16],
                        span_id: vec![0x0d; 8],
                        trace_state: "".into(),
                        attributes: vec![],
                        flags: 0,
                    }],
                    status: Some(Status { message: "boom".into(), code: 2 }),
                }],
            }],
        }],
    };
    assert_eq!(
        flatten_pb(Signal::Traces, &request),
        [concat!(
            r#"{"trace_id":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","span_id":"0b0b0b0b0b0b0b0b","parent_span_id":"","#,
            r#""trace_state":"k=v","name":"GET /","kind":"server","timestamp":"2026-12-01T05:00:00.123456789Z","#,
            r#""end_timestamp":"2026-12-01T05:00:00.124456789Z","status_code":"error","status_message":"boom","#,
            r#""flags":257,"attributes":{"http.status":200},"#,
            r#""events":[{"timestamp":"2026-12-01T05:00:00.123456794Z","name":"retry","attributes":{"n":1}}],"#,
            r#""links":[{"trace_id":"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c","span_id":"0d0d0d0d0d0d0d0d","trace_state":"","attributes":{}}],"#,
            r#""resource":{"service.name":"shop"},"scope":{"name":"","version":""}}"#
        )]
    );
}

#[test]
fn repeated_attribute_keys_are_written_once_with_the_last_value() {
    use any_value::Value as V;
    let mut request = log_request();
    let record = &mut request.resource_logs[0].scope_logs[0].log_records[1];
    record.attributes = vec![kv("a", V::IntValue(1)), kv("b", V::IntValue(2)), kv("a", V::IntValue(3))];
    let got = flatten_pb(Signal::Logs, &request);
    assert!(got[1].contains(r#""attributes":{"b":2,"a":3}"#), "{}", got[1]);
    record_with_many_keys();
}

fn record_with_many_keys() {
    use any_value::Value as V;
    let mut request = log_request();
    let mut pairs: Vec<KeyValue> = (0..40).map(|i| kv(&format!("k{i}"), V::IntValue(i))).collect();
    pairs.push(kv("k0", V::IntValue(99)));
    request.resource_logs[0].scope_logs[0].log_records[1].attributes = pairs;
    let got = flatten_pb(Signal::Logs, &request);
    assert!(got[1].contains(r#""attributes":{"k1":1,"#) && got[1].contains(r#""k39":39,"k0":99}"#), "{}", got[1]);
}

#[test]
fn responses_in_both_encodings() {
    assert_eq!(response(Signal::Logs, Encoding::Protobuf, 0, ""), b"");
    assert_eq!(response(Signal::Logs, Encoding::Json, 0, ""), b"{}");
    assert_eq!(
        response(Signal::Metrics, Encoding::Json, 3, "sink \"x\": \"a\""),
        br#"{"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"sink \"x\": \"a\""}}"#
    );
    let pb = response(Signal::Traces, Encoding::Protobuf, 2, "no");
    assert_eq!(
        ExportServiceResponse::decode(&pb[..]).unwrap(),
        ExportServiceResponse {
            partial_success: Some(ExportPartialSuccess { rejected: 2, error_message: "no".into() })
        }
    );
    assert_eq!(Encoding::from_content_type("Application/X-Protobuf"), Some(Encoding::Protobuf));
    assert_eq!(Encoding::from_content_type("application/protobuf"), Some(Encoding::Protobuf));
    assert_eq!(Encoding::from_content_type("application/json; charset=utf-8"), Some(Encoding::Json));
    assert_eq!(Encoding::from_content_type("text/plain"), None);
}

/// The records of a protobuf log request as prost's messages make them.
fn logs_by_prost(body: &[u8]) -> Result<Vec<String>, OtlpError> {
    decode_logs_by_prost(body, LIMITS).map(|r| records(&r))
}

/// The records of a protobuf log request read straight from the wire, `None`
/// when the wire reader leaves the body to prost.
fn logs_from_wire(body: &[u8]) -> Option<Vec<String>> {
    let mut flattener = flatten::Flattener::new(LIMITS, body.len());
    wire::logs(&mut flattener, body).ok()?;
    Some(records(&flattener.finish()))
}

/// Log records with every kind of value, odd ones included.
fn varied_log_request() -> ExportLogsServiceRequest {
    use any_value::Value as V;
    let any = |value: V| AnyValue { value: Some(value) };
    let array = |values: Vec<AnyValue>| V::ArrayValue(ArrayValue { values });
    let kvlist = |values: Vec<KeyValue>| V::KvlistValue(KeyValueList { values });
    let mut deep = any(text("bottom"));
    for i in 0..20 {
        deep = if i % 2 == 0 {
            any(array(vec![deep]))
        } else {
            any(kvlist(vec![KeyValue { key: "k".into(), value: Some(deep) }]))
        };
    }
    let many: Vec<KeyValue> = (0..40).map(|i| kv(&format!("k{}", i % 25), V::IntValue(i))).collect();
    let odd = vec![
        kv("nan", V::DoubleValue(f64::NAN)),
        kv("inf", V::DoubleValue(f64::INFINITY)),
        kv("-inf", V::DoubleValue(f64::NEG_INFINITY)),
        kv("-0", V::DoubleValue(-0.0)),
        kv("tiny", V::DoubleValue(5e-324)),
        kv("big", V::DoubleValue(1e300)),
        kv("third", V::DoubleValue(1.0 / 3.0)),
        kv("max", V::IntValue(i64::MAX)),
        kv("min", V::IntValue(i64::MIN)),
        kv("false", V::BoolValue(false)),
        kv("bytes", V::BytesValue((0..=255).collect())),
        kv("empty bytes", V::BytesValue(vec![])),
        kv("escapes", text("quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f}")),
        kv("unicode ✓ \u{2028}", text("žluťoučký kůň 🐎 \u{fffd}")),
        kv("dup", V::IntValue(1)),
        kv(
            "nested",
            array(vec![any(array(vec![])), any(kvlist(vec![])), AnyValue { value: None }, any(V::IntValue(2))]),
        ),
        KeyValue { key: "unset".into(), value: None },
        KeyValue { key: "empty".into(), value: Some(AnyValue { value: None }) },
        kv("dup", text("last wins")),
        kv("deep", deep.value.clone().unwrap()),
        kv("", text("empty key")),
    ];
    let log = |n: u64, body: Option<AnyValue>, attributes: Vec<KeyValue>| LogRecord {
        time_unix_nano: if n == 0 { 0 } else { T0 + n },
        observed_time_unix_nano: T0 * (n % 2),
        severity_number: [9, 0, -1, i32::MAX][n as usize % 4],
        severity_text: ["INFO", "", "wéird \"sev\"", "x"][n as usize % 4].into(),
        body,
        attributes,
        flags: [0, 1, u32::MAX][n as usize % 3],
        trace_id: if n % 2 == 0 { vec![] } else { (0..16).collect() },
        span_id: if n % 3 == 0 { vec![] } else { vec![0xff; 8] },
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(Resource { attributes: odd.clone() }),
                scope_logs: vec![
                    ScopeLogs {
                        scope: scope(),
                        log_records: vec![
                            log(1, Some(any(text("plain"))), vec![]),
                            log(2, Some(deep.clone()), odd.clone()),
                            log(3, None, many.clone()),
                            log(0, Some(AnyValue { value: None }), vec![]),
                        ],
                    },
                    ScopeLogs { scope: None, log_records: vec![log(4, Some(any(V::DoubleValue(2.5))), many)] },
                    ScopeLogs { scope: scope(), log_records: vec![] },
                ],
            },
            ResourceLogs { resource: None, scope_logs: vec![] },
            ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope { name: "ü\"".into(), version: String::new() }),
                    log_records: vec![log(5, Some(any(V::BytesValue(b"\x00\x01".to_vec()))), odd)],
                }],
            },
        ],
    }
}

#[test]
fn log_records_from_the_wire_are_those_of_prosts_messages() {
    for request in [log_request(), varied_log_request(), ExportLogsServiceRequest::default()] {
        let body = request.encode_to_vec();
        let wire = logs_from_wire(&body).expect("the wire reader takes a regular body");
        assert_eq!(wire, logs_by_prost(&body).unwrap());
        assert_eq!(records(&decode(Signal::Logs, Encoding::Protobuf, false, &body, LIMITS).unwrap()), wire);
        for record in &wire {
            assert!(crate::json::parse(record.as_bytes()).is_ok(), "{record}");
        }
    }
}

/// A protobuf field: its key and its bytes.
fn field(number: u32, wire_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(u64::from(number << 3 | u32::from(wire_type)), &mut out);
    if wire_type == 2 {
        prost::encoding::encode_varint(payload.len() as u64, &mut out);
    }
    out.extend_from_slice(payload);
    out
}

#[test]
fn unusual_log_bodies_are_left_to_prost() {
    let log = LogRecord {
        severity_text: "INFO".into(),
        body: Some(AnyValue { value: Some(text("one")) }),
        attributes: vec![kv("a", any_value::Value::IntValue(1))],
        ..Default::default()
    }
    .encode_to_vec();
    let wrap = |log: &[u8]| {
        let scope_logs = [field(1, 2, &scope().unwrap().encode_to_vec()), field(2, 2, log)].concat();
        let resource_logs = [field(2, 2, &scope_logs), field(1, 2, &resource().unwrap().encode_to_vec())].concat();
        field(1, 2, &resource_logs)
    };
    let unknown =
        [field(99, 0, &[0x96, 0x01]), field(98, 1, &[7; 8]), field(97, 2, b"\xff\xfe"), field(96, 5, &[1; 4])].concat();
    // Unknown fields are skipped by both; the resource after its records is found.
    let body = wrap(&[log.clone(), unknown.clone()].concat());
    assert_eq!(logs_from_wire(&body), Some(logs_by_prost(&body).unwrap()));
    let second_body = field(5, 2, &AnyValue { value: Some(text("two")) }.encode_to_vec());
    let second_kvlist = |key: &str| {
        let list = KeyValueList { values: vec![kv(key, any_value::Value::IntValue(2))] }.encode_to_vec();
        field(5, 2, &field(6, 2, &list))
    };
    let cases: Vec<Vec<u8>> = vec![
        // A second body: prost replaces the string, merges the key-value lists.
        wrap(&[log.clone(), second_body].concat()),
        wrap(&[field(5, 2, &field(6, 2, &[])), second_kvlist("x"), second_kvlist("y")].concat()),
        // A scalar sent twice: the last one counts.
        wrap(&[log.clone(), field(3, 2, b"WARN"), field(2, 0, &[0xff, 0xff, 0xff, 0xff, 0x0f])].concat()),
        // A group among the unknown fields.
        wrap(&[log.clone(), field(90, 3, &[]), field(90, 4, &[])].concat()),
        wrap(&[resource().unwrap().encode_to_vec(), log.clone()].concat()),
    ];
    for body in cases {
        assert_eq!(logs_from_wire(&body), None);
        let decoded = decode(Signal::Logs, Encoding::Protobuf, false, &body, LIMITS).map(|r| records(&r));
        assert_eq!(decoded, logs_by_prost(&body));
    }
}

#[test]
fn mangled_log_bodies_decode_as_prost_decides() {
    use rand::{Rng, SeedableRng};
    let original = varied_log_request().encode_to_vec();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(17);
    let (mut taken, mut left) = (0, 0);
    for _ in 0..10_000 {
        let mut body = original.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..body.len());
            match rng.random_range(0..4) {
                0 => body[at] = rng.random(),
                1 => body[at] ^= 1 << rng.random_range(0..8),
                2 => body.truncate(at),
                _ => body.insert(at, rng.random()),
            }
            if body.is_empty() {
                break;
            }
        }
        let by_prost = logs_by_prost(&body);
        match logs_from_wire(&body) {
            Some(wire) => {
                taken += 1;
                assert_eq!(Ok(wire), by_prost);
            }
            None => left += 1,
        }
        let decoded = decode(Signal::Logs, Encoding::Protobuf, false, &body, LIMITS).map(|r| records(&r));
        assert_eq!(decoded, by_prost);
    }
    // Both paths are exercised.
    assert!(taken > 100 && left > 100, "{taken} taken, {left} left");
}

#[test]
fn timestamps_are_rfc3339_with_nanoseconds() {
    let at = |ns: u64| {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![LogRecord { time_unix_nano: ns, ..Default::default() }],
                }],
            }],
        };
        let record = flatten_pb(Signal::Logs, &request).remove(0);
        record["{\"timestamp\":\"".len()..].split('"').next().unwrap().to_owned()
    };
    assert_eq!(at(0), "");
    assert_eq!(at(1), "1970-01-01T00:00:00.000000001Z");
    assert_eq!(at(T0), "2026-12-01T05:00:00.123456789Z");
    assert_eq!(at(951_868_799_999_999_999), "2000-02-29T23:59:59.999999999Z");
    assert_eq!(at(1_000_000_000 * 86_399 + 10_203_040), "1970-01-01T23:59:59.010203040Z");
    assert_eq!(at(u64::MAX), "2554-07-21T23:34:33.709551615Z");
}
