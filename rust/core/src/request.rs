//! One HTTP request → records. Keboola semantics: one request is one record.
//! Beyond Keboola: an `application/x-ndjson` body is a batch of one JSON record
//! per line, and a `text/csv` body with a header row is a batch of one JSON
//! object per row (kamu's format translation). A batch is all or nothing: a
//! malformed line rejects the whole request.

use std::fmt;

use crate::body::BodyFormat;
use crate::json;
use crate::limits::format_size;

/// How the body of a request is split into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// The body is one record.
    Single,
    /// `application/x-ndjson`: one JSON document per non-empty line.
    Ndjson,
    /// `text/csv`: a header row, then one record per row.
    Csv,
}

impl BatchKind {
    /// Classifies a `Content-Type` header value.
    pub fn from_content_type(content_type: Option<&str>) -> BatchKind {
        let media = content_type.and_then(|v| v.split(';').next()).unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
                BatchKind::Ndjson
            }
            "text/csv" => BatchKind::Csv,
            _ => BatchKind::Single,
        }
    }

    /// Whether a body of this kind holds many records (so the batch size limit applies).
    pub fn is_batch(self) -> bool {
        self != BatchKind::Single
    }
}

/// A batch that cannot be split: names the 1-based line of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub line: u64,
    pub message: String,
    /// The record on that line is larger than the record limit (413 rather than 400).
    pub too_large: bool,
}

impl BatchError {
    pub fn new(line: u64, message: impl Into<String>) -> BatchError {
        BatchError { line, message: message.into(), too_large: false }
    }

    fn too_large(line: u64, bytes: usize, limit: usize) -> BatchError {
        BatchError {
            line,
            message: format!("the record has {bytes} bytes, more than the record limit of {}", format_size(limit)),
            too_large: true,
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for BatchError {}

/// The records of one request, borrowed from or built out of its body.
pub enum Bodies<'a> {
    Borrowed(Vec<(u64, &'a [u8])>),
    Owned(Vec<(u64, Vec<u8>)>),
}

impl Bodies<'_> {
    pub fn len(&self) -> usize {
        match self {
            Bodies::Borrowed(v) => v.len(),
            Bodies::Owned(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (line number in the request body, record body) pairs.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (u64, &[u8])> + '_> {
        match self {
            Bodies::Borrowed(v) => Box::new(v.iter().map(|(l, b)| (*l, *b))),
            Bodies::Owned(v) => Box::new(v.iter().map(|(l, b)| (*l, b.as_slice()))),
        }
    }
}

/// Splits a request body into record bodies, and the format in which each
/// record body is parsed. A record of a batch larger than `max_record_bytes`
/// rejects the batch (a single record is the whole body, which the caller limits).
pub fn split(
    kind: BatchKind,
    request_format: BodyFormat,
    body: &[u8],
    max_record_bytes: usize,
) -> Result<(Bodies<'_>, BodyFormat), BatchError> {
    match kind {
        BatchKind::Single => Ok((Bodies::Borrowed(vec![(1, body)]), request_format)),
        BatchKind::Ndjson => Ok((Bodies::Borrowed(split_ndjson(body, max_record_bytes)?), BodyFormat::Json)),
        BatchKind::Csv => Ok((Bodies::Owned(csv_to_json(body, max_record_bytes)?), BodyFormat::Json)),
    }
}

/// Non-empty lines (a trailing `\r` and surrounding whitespace are not part of a record).
fn split_ndjson(body: &[u8], max_record_bytes: usize) -> Result<Vec<(u64, &[u8])>, BatchError> {
    let mut records = Vec::new();
    for (i, line) in lines(body).enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let number = i as u64 + 1;
        if line.len() > max_record_bytes {
            return Err(BatchError::too_large(number, line.len(), max_record_bytes));
        }
        records.push((number, line));
    }
    Ok(records)
}

/// The lines of a text split at `\n` (SIMD search), like `text.split(|&b| b == b'\n')`.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut breaks = memchr::memchr_iter(b'\n', text);
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match breaks.next() {
            Some(end) => {
                let line = &text[start..end];
                start = end + 1;
                Some(line)
            }
            None => {
                done = true;
                Some(&text[start..])
            }
        }
    })
}

/// Checks that every non-blank line of an NDJSON text is UTF-8 and one JSON
/// document as the receiver parses it (the same parser and rules, so what passes
/// is what a source accepts); returns (records, line breaks). The error names the
/// first bad line (1-based).
pub fn check_ndjson(text: &[u8]) -> Result<(u64, u64), BatchError> {
    let mut records = 0;
    let mut breaks = 0;
    for (index, raw) in lines(text).enumerate() {
        if index > 0 {
            breaks += 1;
        }
        let line = index as u64 + 1;
        if !raw.is_ascii() {
            if let Err(error) = std::str::from_utf8(raw) {
                let at = error.valid_up_to();
                let message = format!("not valid UTF-8 (byte 0x{:02x} at column {})", raw[at], at + 1);
                return Err(BatchError::new(line, message));
            }
        }
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        json::parse(trimmed).map_err(|message| BatchError::new(line, message))?;
        records += 1;
    }
    Ok((records, breaks))
}

/// A CSV body with a header row → one compact JSON object of strings per row,
/// keys in header order.
fn csv_to_json(body: &[u8], max_record_bytes: usize) -> Result<Vec<(u64, Vec<u8>)>, BatchError> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let mut reader = ::csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
    let csv_error = |e: ::csv::Error| {
        let line = e.position().map_or(1, |p| p.line());
        let message = match e.kind() {
            ::csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                format!("expected {expected_len} fields like the header row, found {len}")
            }
            ::csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
            _ => format!("malformed CSV: {e}"),
        };
        BatchError::new(line, message)
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(BatchError::new(1, "a CSV body needs a header row"));
    }
    let mut seen = std::collections::HashSet::new();
    for name in &headers {
        if !seen.insert(name) {
            return Err(BatchError::new(1, format!("duplicate column \"{name}\" in the header row")));
        }
    }
    let mut records = Vec::new();
    let mut row = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line());
                let mut out = Vec::with_capacity(row.as_slice().len() + 8 * row.len() + 2);
                out.push(b'{');
                for (i, (name, value)) in headers.iter().zip(row.iter()).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::write_str(name, &mut out);
                    out.push(b':');
                    json::write_str(value, &mut out);
                }
                out.push(b'}');
                if out.len() > max_record_bytes {
                    return Err(BatchError::too_large(line, out.len(), max_record_bytes));
                }
                records.push((line, out));
            }
            Err(e) => return Err(csv_error(e)),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::DEFAULT_MAX_RECORD_BYTES;

    fn bodies(kind: BatchKind, body: &str) -> Result<Vec<(u64, String)>, BatchError> {
        let (bodies, _) = split(kind, BodyFormat::Unsupported, body.as_bytes(), DEFAULT_MAX_RECORD_BYTES)?;
        Ok(bodies.iter().map(|(l, b)| (l, String::from_utf8(b.to_vec()).unwrap())).collect())
    }

    #[test]
    fn content_types() {
        assert_eq!(BatchKind::from_content_type(Some("application/x-ndjson; charset=utf-8")), BatchKind::Ndjson);
        assert_eq!(BatchKind::from_content_type(Some("text/csv")), BatchKind::Csv);
        assert_eq!(BatchKind::from_content_type(Some("application/json")), BatchKind::Single);
        assert_eq!(BatchKind::from_content_type(None), BatchKind::Single);
        for batch in
            ["application/x-ndjson", " Application/NDJSON ;x=1", "application/jsonl", "application/x-jsonlines"]
        {
            assert!(BatchKind::from_content_type(Some(batch)).is_batch(), "{batch}");
        }
        for single in ["", "application/json", "text/csvx", "text/plain; text/csv"] {
            assert!(!BatchKind::from_content_type(Some(single)).is_batch(), "{single}");
        }
    }

    #[test]
    fn ndjson_lines() {
        assert_eq!(
            bodies(BatchKind::Ndjson, "{\"a\":1}\r\n\n  \n{\"a\":2}\n{\"a\":3}").unwrap(),
            vec![(1, "{\"a\":1}".into()), (4, "{\"a\":2}".into()), (5, "{\"a\":3}".into())]
        );
        assert!(bodies(BatchKind::Ndjson, "\n\n").unwrap().is_empty());
    }

    #[test]
    fn lines_split_like_slice_split() {
        for text in ["", "\n", "a", "a\n", "\na\n\nb", "ab\ncd\n\n"] {
            let expected: Vec<&[u8]> = text.as_bytes().split(|&b| b == b'\n').collect();
            assert_eq!(lines(text.as_bytes()).collect::<Vec<_>>(), expected, "{text:?}");
        }
    }

    #[test]
    fn ndjson_check_counts_and_names_the_line() {
        assert_eq!(check_ndjson(b"{\"a\":1}\r\n\n  \n[1,2]\n\"x\""), Ok((3, 4)));
        assert_eq!(check_ndjson(b"{\"a\":1}\n"), Ok((1, 1)));
        assert_eq!(check_ndjson(b""), Ok((0, 0)));
        assert_eq!(check_ndjson(b"{\"n\":1e400}"), Ok((1, 0)));
        let error = check_ndjson(b"{}\n\n{\"a\":}\n{}").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(check_ndjson(b"{\"s\":\"\\ud800\"}").is_err(), "a lone surrogate is malformed");
        assert_eq!(check_ndjson(b"{} {}").unwrap_err().line, 1);
        assert_eq!(
            check_ndjson(b"{}\n{\"a\":\"\xc3\xa9\xff\"}").unwrap_err(),
            BatchError::new(2, "not valid UTF-8 (byte 0xff at column 9)")
        );
    }

    #[test]
    fn csv_rows_become_json_objects() {
        let got = bodies(BatchKind::Csv, "\u{feff}id,name,note\n1,Jan,\"a, \"\"b\"\"\nc\"\n2,Zoë,\n").unwrap();
        assert_eq!(
            got,
            vec![
                (2, r#"{"id":"1","name":"Jan","note":"a, \"b\"\nc"}"#.into()),
                (4, r#"{"id":"2","name":"Zoë","note":""}"#.into())
            ]
        );
        assert_eq!(bodies(BatchKind::Csv, "id\n").unwrap(), vec![]);
    }

    #[test]
    fn records_over_the_limit_reject_the_batch() {
        let ndjson = b"{\"a\":1}\n\n{\"a\":\"0123456789\"}\n";
        assert!(split(BatchKind::Ndjson, BodyFormat::Json, ndjson, 18).is_ok());
        let error = split(BatchKind::Ndjson, BodyFormat::Json, ndjson, 17).err().unwrap();
        assert_eq!(error.line, 3);
        assert!(error.too_large);
        assert_eq!(error.message, "the record has 18 bytes, more than the record limit of 17B");
        let csv = b"a\n1\n0123456789\n";
        let error = split(BatchKind::Csv, BodyFormat::Json, csv, 16).err().unwrap();
        assert_eq!((error.line, error.too_large), (3, true));
        // A single record is the whole body: the caller limits it.
        assert!(split(BatchKind::Single, BodyFormat::Json, csv, 1).is_ok());
        assert_eq!(format_size(1 << 20), "1MB");
    }

    #[test]
    fn csv_errors_name_the_line() {
        assert_eq!(
            bodies(BatchKind::Csv, "a,b\n1,2\n3\n").unwrap_err(),
            BatchError::new(3, "expected 2 fields like the header row, found 1")
        );
        assert_eq!(
            bodies(BatchKind::Csv, "a,a\n1,2\n").unwrap_err().message,
            "duplicate column \"a\" in the header row"
        );
        assert_eq!(bodies(BatchKind::Csv, "").unwrap_err().line, 1);
        let invalid_utf8 = split(BatchKind::Csv, BodyFormat::Unsupported, b"a\n\"\xff\"\n", 100).err().unwrap();
        assert_eq!(invalid_utf8, BatchError::new(2, "not valid UTF-8"));
    }
}
