//! Records: one event as received (body, headers, client IP, receive time), and
//! the per-record context that caches what several sinks and columns share.

use std::cell::OnceCell;
use std::sync::{Arc, OnceLock};

use sonic_rs::Value;

use crate::body::{parse_body, BodyFormat};
use crate::error::MappingError;
use crate::json;

/// What all records of one request share: headers, client IP and receive time.
/// An NDJSON or CSV batch is many bodies with one `RecordMeta`.
#[derive(Debug)]
pub struct RecordMeta {
    /// Canonical names (`Content-Type`), sorted by name, repeated headers joined by `, `.
    headers: Vec<(String, String)>,
    ip: String,
    received_at_ns: i64,
    datetime: [u8; 24],
    format: BodyFormat,
    headers_json: OnceLock<Box<str>>,
}

impl RecordMeta {
    pub fn new(headers: impl IntoIterator<Item = (String, String)>, ip: String, received_at_ns: i64) -> RecordMeta {
        let mut canonical: Vec<(String, String)> =
            headers.into_iter().map(|(name, value)| (canonical_header_name(&name), value)).collect();
        canonical.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(String, String)> = Vec::with_capacity(canonical.len());
        for (name, value) in canonical {
            match merged.last_mut() {
                Some((last, joined)) if *last == name => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                _ => merged.push((name, value)),
            }
        }
        let format = BodyFormat::from_content_type(lookup(&merged, "Content-Type"));
        RecordMeta {
            headers: merged,
            ip,
            received_at_ns,
            datetime: format_datetime_ms(received_at_ns),
            format,
            headers_json: OnceLock::new(),
        }
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Case-insensitive header lookup.
    pub fn header(&self, name: &str) -> Option<&str> {
        lookup(&self.headers, &canonical_header_name(name))
    }

    pub fn content_type(&self) -> Option<&str> {
        lookup(&self.headers, "Content-Type")
    }

    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// Receive time, nanoseconds since the Unix epoch (UTC).
    pub fn received_at_ns(&self) -> i64 {
        self.received_at_ns
    }

    /// Receive time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn datetime(&self) -> &str {
        std::str::from_utf8(&self.datetime).expect("ASCII")
    }

    /// How the body is parsed, from the `Content-Type` header.
    pub fn format(&self) -> BodyFormat {
        self.format
    }

    /// Headers as a compact JSON object with sorted keys, computed once.
    pub fn headers_json(&self) -> &str {
        self.headers_json.get_or_init(|| {
            let mut out = Vec::with_capacity(64 * self.headers.len() + 2);
            out.push(b'{');
            for (i, (name, value)) in self.headers.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_str(name, &mut out);
                out.push(b':');
                json::write_str(value, &mut out);
            }
            out.push(b'}');
            String::from_utf8(out).expect("JSON of strings is UTF-8").into_boxed_str()
        })
    }
}

fn lookup<'h>(headers: &'h [(String, String)], canonical: &str) -> Option<&'h str> {
    headers.binary_search_by(|(name, _)| name.as_str().cmp(canonical)).ok().map(|i| headers[i].1.as_str())
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
/// Names with characters outside the token set are returned unchanged.
pub fn canonical_header_name(name: &str) -> String {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_owned();
    }
    let mut upper = true;
    name.bytes()
        .map(|b| {
            let c = if upper { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() };
            upper = b == b'-';
            c as char
        })
        .collect()
}

/// Formats nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn format_datetime_ms(ns: i64) -> [u8; 24] {
    let ms = ns.div_euclid(1_000_000);
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let year = year.clamp(0, 9999) as u32;
    let digits = |out: &mut [u8], value: u32| {
        let mut v = value;
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut out[0..4], year);
    digits(&mut out[5..7], month);
    digits(&mut out[8..10], day);
    digits(&mut out[11..13], h as u32);
    digits(&mut out[14..16], m as u32);
    digits(&mut out[17..19], s as u32);
    digits(&mut out[20..23], milli as u32);
    out
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An owned record: the body of one event plus its (possibly shared) metadata.
#[derive(Debug, Clone)]
pub struct Record {
    pub meta: Arc<RecordMeta>,
    pub body: Vec<u8>,
}

impl Record {
    pub fn new(meta: Arc<RecordMeta>, body: Vec<u8>) -> Record {
        Record { meta, body }
    }

    pub fn view(&self) -> RecordRef<'_> {
        RecordRef { meta: &self.meta, body: &self.body, format: self.meta.format }
    }
}

/// A borrowed record: used for the lines of a batch, which share one `RecordMeta`.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub meta: &'a RecordMeta,
    pub body: &'a [u8],
    /// How the body is parsed (an NDJSON line is JSON whatever the request's content type).
    pub format: BodyFormat,
}

/// One record while it is being mapped. The body is parsed at most once, on
/// first use, and shared by every sink and column that needs it.
pub struct RecordContext<'a> {
    pub record: RecordRef<'a>,
    parsed: OnceCell<Result<Value, MappingError>>,
}

impl<'a> RecordContext<'a> {
    pub fn new(record: RecordRef<'a>) -> RecordContext<'a> {
        RecordContext { record, parsed: OnceCell::new() }
    }

    pub fn meta(&self) -> &'a RecordMeta {
        self.record.meta
    }

    pub fn body(&self) -> &'a [u8] {
        self.record.body
    }

    /// The parsed body (JSON or form), or why it cannot be parsed.
    pub fn parsed_body(&self) -> Result<&Value, MappingError> {
        self.parsed
            .get_or_init(|| parse_body(self.record.format, self.record.meta.content_type(), self.record.body))
            .as_ref()
            .map_err(Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("X-FORWARDED-FOR"), "X-Forwarded-For");
        assert_eq!(canonical_header_name("x_custom"), "X_custom");
        assert_eq!(canonical_header_name("bad header"), "bad header");
    }

    #[test]
    fn datetimes() {
        assert_eq!(&format_datetime_ms(0), b"1970-01-01T00:00:00.000Z");
        assert_eq!(&format_datetime_ms(1_779_417_045_123_999_999), b"2026-05-22T02:30:45.123Z");
        assert_eq!(&format_datetime_ms(951_782_400_000_000_000), b"2000-02-29T00:00:00.000Z");
        assert_eq!(&format_datetime_ms(-1_000_000), b"1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn headers_are_canonical_sorted_and_merged() {
        let meta = RecordMeta::new(
            vec![
                ("x-b".into(), "2".into()),
                ("content-type".into(), "application/json".into()),
                ("X-B".into(), "3".into()),
                ("a".into(), "q\"".into()),
            ],
            "1.2.3.4".into(),
            0,
        );
        assert_eq!(meta.headers_json(), r#"{"A":"q\"","Content-Type":"application/json","X-B":"2, 3"}"#);
        assert_eq!(meta.header("x-b"), Some("2, 3"));
        assert_eq!(meta.format(), BodyFormat::Json);
    }
}
