//! Fuzz targets: each takes arbitrary bytes, drives one parser or encoder of
//! the core and checks the properties that must hold for any input. A crash,
//! a hang or a failed assertion is a finding. `src/bin/*.rs` wrap them for
//! `cargo afl`; `./dev.sh fuzz` runs them from the seeds in `seeds/<target>`.

use std::sync::{Arc, OnceLock};

use pushstream_core::body::{parse_form, BodyFormat};
use pushstream_core::csv::{complete_rows, parse_rows, write_field};
use pushstream_core::json;
use pushstream_core::mapping::Mapping;
use pushstream_core::otlp::{self, Encoding, OtlpLimits, Signal};
use pushstream_core::path::JsonPath;
use pushstream_core::record::{Record, RecordContext, RecordMeta};
use pushstream_core::request::{check_ndjson, split, BatchKind};
use pushstream_core::template;

/// JSON bodies: parsing never crashes; what parses is written as compact JSON
/// that parses again to the same text (the writer's output is a fixed point).
pub fn json_body(data: &[u8]) {
    let Ok(value) = json::parse(data) else { return };
    let mut out = Vec::new();
    json::write_compact(&value, &mut out);
    let again = json::parse(&out).expect("compact output parses");
    let mut second = Vec::new();
    json::write_compact(&again, &mut second);
    assert_eq!(out, second, "compact output is stable");
}

/// OTLP protobuf log requests: the wire reader and prost's messages give the
/// same records or the same error (small limits, so that the limits are hit too).
pub fn otlp_logs(data: &[u8]) {
    let limits = OtlpLimits::new(64 * 1024, 2048);
    let decoded = otlp::decode(Signal::Logs, Encoding::Protobuf, false, data, limits);
    let by_prost = otlp::decode_logs_by_prost(data, limits);
    match (decoded, by_prost) {
        (Ok(a), Ok(b)) => assert!(a.iter().eq(b.iter()), "the wire reader and prost disagree on the records"),
        (Err(a), Err(b)) => assert_eq!(a, b, "the wire reader and prost disagree on the error"),
        (a, b) => panic!("the wire reader and prost disagree: {:?} vs {:?}", a.map(|r| r.len()), b.map(|r| r.len())),
    }
}

/// Form bodies: any bytes give a JSON object or a malformed-body error.
pub fn form_body(data: &[u8]) {
    if let Ok(value) = parse_form(data) {
        let mut out = Vec::new();
        json::write_compact(&value, &mut out);
        assert!(out.starts_with(b"{"), "a form is an object");
    }
}

/// NDJSON and CSV batches: splitting respects the record limit, every record
/// of a split NDJSON body is one of its lines, and the NDJSON check agrees
/// with what the receiver parses.
pub fn batch(data: &[u8]) {
    let limit = 64;
    for kind in [BatchKind::Ndjson, BatchKind::Csv] {
        if let Ok((bodies, format)) = split(kind, BodyFormat::Unsupported, data, limit) {
            assert_eq!(format, BodyFormat::Json);
            for (line, body) in bodies.iter() {
                assert!(line >= 1);
                assert!(body.len() <= limit, "a record over the limit was taken");
                if kind == BatchKind::Csv {
                    json::parse(body).expect("a CSV row becomes a JSON object");
                }
            }
        }
    }
    if let Ok((records, _)) = check_ndjson(data) {
        let (bodies, _) = split(BatchKind::Ndjson, BodyFormat::Json, data, usize::MAX).expect("splits");
        assert_eq!(bodies.len() as u64, records);
        for (_, body) in bodies.iter() {
            json::parse(body).expect("a checked line parses");
        }
    }
}

/// Paths: the first line is a path, the rest a JSON document it is applied to.
pub fn path(data: &[u8]) {
    let (text, document) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(path) = JsonPath::parse(text) else { return };
    assert_eq!(path.as_str(), text);
    if let Ok(value) = json::parse(document) {
        if let Some(found) = path.lookup(&value) {
            let mut out = Vec::new();
            json::write_compact(found, &mut out);
        }
    }
}

/// Keboola CSV: fields of any bytes (split at 0xff) are encoded into one row
/// that the recovery scan finds and that decodes back to the input (UTF-8).
pub fn csv_encoding(data: &[u8]) {
    let fields: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let mut out = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_field(field, &mut out);
    }
    out.push(b'\n');
    assert_eq!(complete_rows(&out), (out.len(), 1));
    // Valid UTF-8 has no 0xff byte: the whole input is one field.
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(parse_rows(&out).expect("encoded rows parse"), vec![vec![text.to_owned()]]);
    }
    let (valid, _) = complete_rows(data);
    assert!(valid <= data.len());
}

/// Templates: the first line is a body, the rest a template source. Anything
/// that validates evaluates to a result or an error, never a crash or a hang
/// (the time budget holds).
pub fn template_evaluation(data: &[u8]) {
    let (body, source) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"{}"[..], data),
    };
    let Ok(source) = std::str::from_utf8(source) else { return };
    if template::validate("jsonnet", source).is_err() {
        return;
    }
    let columns = format!(
        r#"[{{"type":"template","name":"t","template":{{"language":"jsonnet","content":{}}}}}]"#,
        sonic_rs::to_string(source).expect("a string")
    );
    let Ok(mapping) = Mapping::from_json(&columns) else { return };
    let record = Record::new(meta(), body.to_vec());
    let ctx = RecordContext::new(record.view());
    let mut out = Vec::new();
    let _ = mapping.encode_row(&ctx, &mut out, &mut Vec::new());
}

fn meta() -> Arc<RecordMeta> {
    static META: OnceLock<Arc<RecordMeta>> = OnceLock::new();
    Arc::clone(META.get_or_init(|| {
        Arc::new(RecordMeta::new(vec![("Content-Type".into(), "application/json".into())], "127.0.0.1".into(), 0))
    }))
}
