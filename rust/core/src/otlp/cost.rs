//! Where the time of an OTLP log request goes, beside the same records as an
//! NDJSON batch: `cargo test --release --lib otlp::cost -- --ignored --nocapture`
//! prints the median time of each step for exports of 512 log records shaped
//! like those of `bench/bench_otlp.py` (and maps them into its 7 columns).
//! Not a check (no timing is asserted): a measurement to read.

use std::sync::Arc;
use std::time::Instant;

use prost::Message;

use super::proto::*;
use super::*;
use crate::body::BodyFormat;
use crate::mapping::Mapping;
use crate::record::{RecordContext, RecordMeta, RecordRef};
use crate::request::BatchKind;

const ROUTES: [&str; 4] = ["/", "/cart", "/checkout", "/products/{id}"];
const T0: u64 = 1_796_101_200_000_000_000;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }) }
}

/// One export as protobuf, and its flat records as NDJSON.
fn export(first: u64) -> (Vec<u8>, Vec<u8>) {
    use any_value::Value as V;
    let mut records = Vec::new();
    for n in first..first + 512 {
        let ts = T0 + n * 1_000_003;
        let message =
            format!("GET {} answered 200 in {} ms for user {} ", ROUTES[(n % 4) as usize], n % 97, n % 10_000)
                + &"x".repeat((n % 120) as usize);
        records.push(LogRecord {
            time_unix_nano: ts,
            observed_time_unix_nano: ts + 500,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue { value: Some(V::StringValue(message)) }),
            attributes: vec![
                kv("user", V::IntValue((n % 10_000) as i64)),
                kv("route", V::StringValue(ROUTES[(n % 4) as usize].into())),
                kv("status", V::IntValue(200)),
            ],
            flags: 0,
            trace_id: vec![],
            span_id: vec![],
        });
    }
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", V::StringValue("shop".into())),
                    kv("service.version", V::StringValue("1.4.2".into())),
                    kv("host.name", V::StringValue("web-3".into())),
                ],
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope { name: "shop.http".into(), version: "1.0".into() }),
                log_records: records,
            }],
        }],
    };
    let pb = request.encode_to_vec();
    let flat = decode(Signal::Logs, Encoding::Protobuf, false, &pb, LIMITS).unwrap();
    let mut nd = Vec::new();
    for r in flat.iter() {
        nd.extend_from_slice(r);
        nd.push(b'\n');
    }
    (pb, nd)
}

const LIMITS: OtlpLimits = OtlpLimits { max_body_bytes: 1 << 24, max_record_bytes: 1 << 20, max_total_bytes: 4 << 24 };
const COLUMNS: &str = r#"[
    {"type": "datetime", "name": "received"},
    {"type": "path", "name": "at", "path": "timestamp", "rawString": true},
    {"type": "path", "name": "severity", "path": "severity_text", "rawString": true},
    {"type": "path", "name": "body", "path": "body", "rawString": true},
    {"type": "path", "name": "user", "path": "attributes.user"},
    {"type": "path", "name": "route", "path": "attributes.route", "rawString": true},
    {"type": "path", "name": "resource", "path": "resource"}
]"#;

/// Prints the median time of `calls` calls of `step`.
fn time(label: &str, calls: usize, mut step: impl FnMut()) {
    let mut samples: Vec<f64> = (0..calls)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    eprintln!("{label:45} {:9.1} µs", samples[calls / 2]);
}

#[test]
#[ignore]
fn steps_of_a_log_request() {
    let exports: Vec<(Vec<u8>, Vec<u8>)> = (0..16).map(|i| export(i * 512)).collect();
    let compressed: Vec<Vec<u8>> = exports
        .iter()
        .map(|(protobuf, _)| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            std::io::Write::write_all(&mut encoder, protobuf).unwrap();
            encoder.finish().unwrap()
        })
        .collect();
    let mapping = Mapping::from_json(COLUMNS).unwrap();
    let meta = Arc::new(RecordMeta::new(vec![], "::1".into(), 0));
    let (mut rows, mut scratch) = (Vec::with_capacity(1 << 20), Vec::new());
    let mut map = |records: &mut dyn Iterator<Item = &[u8]>| {
        rows.clear();
        for body in records {
            let ctx = RecordContext::new(RecordRef { meta: &meta, body, format: BodyFormat::Json });
            mapping.encode_row(&ctx, &mut rows, &mut scratch).unwrap();
        }
    };
    let calls = 400;
    let mut n = 0;
    let mut next = || {
        n += 1;
        n % exports.len()
    };
    let split = |ndjson| crate::request::split(BatchKind::Ndjson, BodyFormat::Json, ndjson, 1 << 20).unwrap().0;
    time("NDJSON: split and parse", calls, || {
        for (_, line) in split(&exports[next()].1).iter() {
            std::hint::black_box(crate::json::parse(line).unwrap());
        }
    });
    time("NDJSON: split, parse and map", calls, || {
        map(&mut split(&exports[next()].1).iter().map(|(_, line)| line));
    });
    time("protobuf: prost's decode", calls, || {
        std::hint::black_box(ExportLogsServiceRequest::decode(&exports[next()].0[..]).unwrap());
    });
    time("protobuf: prost's decode and flatten", calls, || {
        let protobuf = &exports[next()].0;
        let mut flattener = flatten::Flattener::new(LIMITS, protobuf.len());
        flattener.logs(&ExportLogsServiceRequest::decode(&protobuf[..]).unwrap()).unwrap();
        std::hint::black_box(flattener.finish());
    });
    time("protobuf: decode (from the wire)", calls, || {
        std::hint::black_box(decode(Signal::Logs, Encoding::Protobuf, false, &exports[next()].0, LIMITS).unwrap());
    });
    time("protobuf: decode, parse and map", calls, || {
        let records = decode(Signal::Logs, Encoding::Protobuf, false, &exports[next()].0, LIMITS).unwrap();
        map(&mut records.iter());
    });
    time("gzip: decompress", calls, || {
        std::hint::black_box(gunzip(&compressed[next()], LIMITS.max_body_bytes).unwrap());
    });
    time("gzip: decompress, decode, parse and map", calls, || {
        let records = decode(Signal::Logs, Encoding::Protobuf, true, &compressed[next()], LIMITS).unwrap();
        map(&mut records.iter());
    });
}
