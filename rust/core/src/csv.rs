//! Keboola's CSV encoding: every field quoted, `"` doubled, rows end with `\n`,
//! no header.

use memchr::memchr;

use crate::json;

/// Appends one quoted field to `out` (without separator).
#[inline]
pub fn write_field(value: &[u8], out: &mut Vec<u8>) {
    out.reserve(value.len() + 2);
    out.push(b'"');
    let mut rest = value;
    while let Some(i) = memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// A typed value as handed over by callers that build rows themselves.
#[derive(Debug, Clone, PartialEq)]
pub enum CsvValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

/// Writes a typed value as a field: strings as is, numbers in shortest
/// round-trip form, booleans `true`/`false`, null as an empty field.
pub fn write_value(value: &CsvValue<'_>, out: &mut Vec<u8>) {
    match value {
        CsvValue::Null => out.extend_from_slice(b"\"\""),
        CsvValue::Bool(b) => out.extend_from_slice(if *b { b"\"true\"" } else { b"\"false\"" }),
        CsvValue::Int(i) => {
            out.push(b'"');
            out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            out.push(b'"');
        }
        CsvValue::Float(f) => {
            out.push(b'"');
            if f.is_finite() {
                json::write_f64(*f, out);
            } else if f.is_nan() {
                out.extend_from_slice(b"NaN");
            } else {
                out.extend_from_slice(if *f > 0.0 { b"Infinity" } else { b"-Infinity" });
            }
            out.push(b'"');
        }
        CsvValue::Str(s) => write_field(s.as_bytes(), out),
    }
}

/// Encodes one row of typed values.
pub fn write_row(values: &[CsvValue<'_>], out: &mut Vec<u8>) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(value, out);
    }
    out.push(b'\n');
}

/// Finds the end of the last complete row. Every field is quoted and quotes
/// inside fields are doubled, so a `\n` ends a row exactly when an even number
/// of `"` precede it. Returns (length of the complete rows, number of rows).
pub fn complete_rows(data: &[u8]) -> (usize, u64) {
    let mut in_quotes = false;
    let mut rows = 0;
    let mut valid = 0;
    let mut pos = 0;
    while let Some(i) = memchr::memchr2(b'"', b'\n', &data[pos..]) {
        let at = pos + i;
        if data[at] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            rows += 1;
            valid = at + 1;
        }
        pos = at + 1;
    }
    (valid, rows)
}

/// Splits Keboola CSV into rows of decoded fields (tests, tail and debugging;
/// the importer uses pyarrow).
pub fn parse_rows(data: &[u8]) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        if data[pos] != b'"' {
            return Err(format!("byte {pos}: field does not start with a quote"));
        }
        pos += 1;
        let mut field = Vec::new();
        loop {
            let Some(i) = memchr(b'"', &data[pos..]) else {
                return Err(format!("byte {pos}: unterminated field"));
            };
            field.extend_from_slice(&data[pos..pos + i]);
            pos += i + 1;
            if data.get(pos) == Some(&b'"') {
                field.push(b'"');
                pos += 1;
            } else {
                break;
            }
        }
        row.push(String::from_utf8(field).map_err(|_| format!("byte {pos}: field is not UTF-8"))?);
        match data.get(pos) {
            Some(b',') => pos += 1,
            Some(b'\n') => {
                rows.push(std::mem::take(&mut row));
                pos += 1;
            }
            other => {
                return Err(format!(
                    "byte {pos}: expected \",\" or newline, found {other:?}"
                ))
            }
        }
    }
    if !row.is_empty() {
        return Err("last row does not end with a newline".into());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_field() {
        let mut out = Vec::new();
        write_row(
            &[
                CsvValue::Str("a\"b"),
                CsvValue::Str("x,\ny"),
                CsvValue::Null,
                CsvValue::Bool(true),
                CsvValue::Int(-3),
                CsvValue::Float(1.0),
                CsvValue::Float(0.1),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            b"\"a\"\"b\",\"x,\ny\",\"\",\"true\",\"-3\",\"1.0\",\"0.1\"\n"
        );
        assert_eq!(
            parse_rows(&out).unwrap(),
            vec![vec!["a\"b", "x,\ny", "", "true", "-3", "1.0", "0.1"]]
        );
    }

    #[test]
    fn finds_complete_rows() {
        let data = b"\"a\",\"b\nc\"\n\"\"\"\",\"x\"\n\"torn\",\"ro";
        assert_eq!(complete_rows(data), (19, 2));
        assert_eq!(complete_rows(b""), (0, 0));
        assert_eq!(complete_rows(b"\"a\"\n"), (4, 1));
        assert_eq!(complete_rows(b"\"a\n"), (0, 0));
    }
}
