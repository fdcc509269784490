//! JSON parsing of request bodies and compact JSON output of values.
//!
//! Semantics follow the reference implementation (`orjson`): integers that fit
//! into 64 bits stay integers, every other number is an IEEE double written in
//! its shortest round-trip form, a duplicated key resolves to its last value (at
//! the position of its first occurrence), lone surrogates are malformed JSON.
//! Two deliberate differences keep numbers as they were sent where a double
//! would lose them: an integer beyond 64 bits (`2**70`) keeps all its digits
//! (orjson makes it a double), and a number beyond the double range (`1e400`)
//! is valid JSON written as sent (orjson rejects the document).

use sonic_rs::{JsonContainerTrait, JsonType, JsonValueTrait, Value};

use crate::limits::MAX_NESTING_DEPTH;

/// Parses a JSON document with sonic-rs (SIMD). Numbers are kept as their
/// literal text (`arbitrary_precision`) and converted when written, so no
/// information (such as the sign of `-0.0`) is lost in parsing.
///
/// Documents nested deeper than [`MAX_NESTING_DEPTH`] are refused before they
/// are parsed: every later walk over the value (output, drop, templates) recurses.
pub fn parse(body: &[u8]) -> Result<Value, String> {
    check_nesting(body)?;
    sonic_rs::from_slice::<Value>(body).map_err(|e| sonic_message(&e))
}

/// Fails when the JSON text opens more than [`MAX_NESTING_DEPTH`] arrays and
/// objects inside each other (brackets inside strings do not count). Called
/// before parsing, on text that may not be valid JSON.
pub fn check_nesting(text: &[u8]) -> Result<(), String> {
    // Nesting deeper than the limit takes more brackets than the limit: short
    // bodies need no look, and one SIMD count answers for almost every other.
    if text.len() <= MAX_NESTING_DEPTH
        || memchr::memchr2_iter(b'[', b'{', text).take(MAX_NESTING_DEPTH + 1).count() <= MAX_NESTING_DEPTH
    {
        return Ok(());
    }
    let mut depth = 0usize;
    let mut pos = 0;
    while let Some(i) = memchr::memchr3(b'"', b'[', b'{', &text[pos..]).map(|i| pos + i) {
        // Closing brackets between `pos` and `i` lower the depth.
        depth = depth.saturating_sub(count_closers(&text[pos..i]));
        match text[i] {
            b'"' => {
                pos = skip_string(text, i + 1);
                continue;
            }
            _ => {
                depth += 1;
                if depth > MAX_NESTING_DEPTH {
                    return Err(format!("nested deeper than {MAX_NESTING_DEPTH} levels (the limit of arrays and objects inside each other)"));
                }
            }
        }
        pos = i + 1;
    }
    Ok(())
}

fn count_closers(text: &[u8]) -> usize {
    memchr::memchr2_iter(b']', b'}', text).count()
}

/// The position after the closing quote of a string whose content starts at `pos`.
fn skip_string(text: &[u8], mut pos: usize) -> usize {
    while let Some(i) = memchr::memchr2(b'"', b'\\', &text[pos..]) {
        let at = pos + i;
        if text[at] == b'\\' {
            pos = at + 2;
            if pos >= text.len() {
                return text.len();
            }
        } else {
            return at + 1;
        }
    }
    text.len()
}

fn sonic_message(error: &sonic_rs::Error) -> String {
    // sonic-rs appends a multi-line excerpt of the input; the first line is the message.
    let text = error.to_string();
    text.lines().next().unwrap_or("invalid JSON").to_owned()
}

/// The numeric value of a number literal: an integer when it is written as one
/// and fits into 64 bits, a double otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberValue {
    Int(i64),
    UInt(u64),
    Float(f64),
}

pub fn number_value(literal: &str) -> NumberValue {
    if is_integer_literal(literal) {
        if let Ok(i) = literal.parse::<i64>() {
            return NumberValue::Int(i);
        }
        if let Ok(u) = literal.parse::<u64>() {
            return NumberValue::UInt(u);
        }
    }
    NumberValue::Float(literal.parse().unwrap_or(f64::NAN))
}

/// Whether a JSON number literal is written as an integer (no fraction, no exponent).
pub fn is_integer_literal(literal: &str) -> bool {
    !literal.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

fn write_number_literal(literal: &str, out: &mut Vec<u8>) {
    match number_value(literal) {
        NumberValue::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        NumberValue::UInt(u) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
        // An integer beyond 64 bits keeps all its digits, as sent.
        NumberValue::Float(_) if is_integer_literal(literal) => out.extend_from_slice(literal.as_bytes()),
        NumberValue::Float(f) if f.is_finite() => write_f64(f, out),
        NumberValue::Float(_) => out.extend_from_slice(literal.as_bytes()),
    }
}

/// Appends the compact JSON encoding of `value` to `out`.
pub fn write_compact(value: &Value, out: &mut Vec<u8>) {
    match value.get_type() {
        JsonType::Null => out.extend_from_slice(b"null"),
        JsonType::Boolean => out.extend_from_slice(if value.is_true() { b"true" } else { b"false" }),
        JsonType::Number => write_number(value, out),
        JsonType::String => write_str(value.as_str().unwrap_or_default(), out),
        JsonType::Array => {
            out.push(b'[');
            for (i, item) in value.as_array().into_iter().flat_map(|a| a.iter()).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_compact(item, out);
            }
            out.push(b']');
        }
        JsonType::Object => write_object(value, out),
    }
}

fn write_number(value: &Value, out: &mut Vec<u8>) {
    match value.as_raw_number() {
        Some(raw) => write_number_literal(raw.as_str(), out),
        // Numbers built in code rather than parsed.
        None => {
            if let Some(i) = value.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else if let Some(u) = value.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else {
                write_f64(value.as_f64().unwrap_or(0.0), out);
            }
        }
    }
}

/// Shortest round-trip form, written like Python's `repr` / orjson: `1.0`,
/// `0.1`, `1e+22`, `1.5e-07` is `1.5e-7`.
pub fn write_f64(f: f64, out: &mut Vec<u8>) {
    // serde_json formats doubles exactly like orjson (shortest digits, `.0` on
    // integral values, `e+NN` exponents from 1e16 on).
    serde_json::to_writer(&mut *out, &f).expect("writing to a Vec cannot fail");
}

fn write_object(value: &Value, out: &mut Vec<u8>) {
    let Some(object) = value.as_object() else {
        out.extend_from_slice(b"{}");
        return;
    };
    out.push(b'{');
    let pairs: Vec<(&str, &Value)> = object.iter().collect();
    let mut first = true;
    for (i, (key, item)) in pairs.iter().enumerate() {
        // A duplicated key is written once, where it first occurs, with its last value.
        if pairs[..i].iter().any(|(k, _)| k == key) {
            continue;
        }
        let item = pairs[i + 1..].iter().rev().find(|(k, _)| k == key).map_or(*item, |(_, v)| *v);
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(key, out);
        out.push(b':');
        write_compact(item, out);
    }
    out.push(b'}');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string: only `"`, `\` and control characters are
/// escaped; everything else (including non-ASCII) is written as UTF-8.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_escaped(bytes, start) {
        let b = bytes[i];
        out.extend_from_slice(&bytes[start..i]);
        let unicode;
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => {
                unicode = [b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]];
                &unicode
            }
        };
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The position of the first byte from `from` on that a JSON string escapes.
fn next_escaped(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether a byte of `word` is zero (exact as a yes or no).
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    // Most strings have no such byte: eight bytes at a time (a control
    // character, a quote or a backslash in the word), then the byte itself.
    let mut at = from;
    while let Some(block) = bytes.get(at..at + 8) {
        let word = u64::from_ne_bytes(block.try_into().expect("8 bytes"));
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
        if control || has_zero(word ^ (ONES * u64::from(b'"'))) || has_zero(word ^ (ONES * u64::from(b'\\'))) {
            break;
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| escaped(b)).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_like_serde_json() {
        // Every ASCII byte, at every position of the 16-byte blocks, among non-ASCII text.
        let mut texts: Vec<String> = (0u8..0x80).map(|b| (b as char).to_string()).collect();
        for b in 0u8..0x80 {
            for at in [0, 7, 15, 16, 17, 31, 40] {
                let mut text: Vec<char> = "abcdefghijklmnopqrstuvwxyzžluťoučký kůň🐎".chars().collect();
                text.insert(at, b as char);
                texts.push(text.into_iter().collect());
            }
        }
        texts.push("\"\\\n\u{0}\u{1f}\u{7f}\u{2028}".repeat(9));
        texts.push(String::new());
        for text in texts {
            let mut out = Vec::new();
            write_str(&text, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }

    fn roundtrip(s: &str) -> Result<String, String> {
        let v = parse(s.as_bytes())?;
        let mut out = Vec::new();
        write_compact(&v, &mut out);
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn numbers_follow_orjson() {
        let cases = [
            ("-0", "0"),
            ("-0.0", "-0.0"),
            ("[-0, 1]", "[0,1]"),
            ("1.0", "1.0"),
            ("1E2", "100.0"),
            ("0.1", "0.1"),
            ("1e22", "1e+22"),
            ("1e16", "1e+16"),
            ("1.5e-7", "1.5e-7"),
            ("123456789.123456789", "123456789.12345679"),
            ("18446744073709551615", "18446744073709551615"),
            ("18446744073709551616", "18446744073709551616"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("-9223372036854775809", "-9223372036854775809"),
            ("123456789012345678901234567890", "123456789012345678901234567890"),
            ("1180591620717411303424", "1180591620717411303424"),
            ("-0.0e0", "-0.0"),
            ("1e400", "1e400"),
            ("-1E+400", "-1E+400"),
            ("1e-400", "0.0"),
        ];
        for (input, expected) in cases {
            assert_eq!(roundtrip(input).as_deref(), Ok(expected), "input {input}");
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "{\"a\":[".repeat(depth / 2), "]}".repeat(depth / 2))
    }

    #[test]
    fn nesting_is_limited() {
        assert!(crate::limits::on_small_stack(|| parse(nested(MAX_NESTING_DEPTH).as_bytes()).is_ok()));
        let error = parse(nested(MAX_NESTING_DEPTH + 2).as_bytes()).unwrap_err();
        assert_eq!(error, "nested deeper than 1000 levels (the limit of arrays and objects inside each other)");
        // Brackets in strings, escaped quotes and closed containers do not count.
        let flat = format!("[{}]", vec![r#"{"s":"[[{\"[{"}"#; 5000].join(","));
        assert!(parse(flat.as_bytes()).is_ok());
        let wide = format!("[{}]", vec!["[[[]]]"; 5000].join(","));
        assert!(parse(wide.as_bytes()).is_ok());
        // Unparsable input deeper than the limit is refused just as well.
        assert!(check_nesting("[".repeat(100_000).as_bytes()).is_err());
        assert!(check_nesting("\"".repeat(3).as_bytes()).is_ok());
    }

    /// Parsing, writing and dropping a value at the nesting limit on a small stack.
    #[test]
    fn deep_values_fit_a_small_stack() {
        let text = nested(MAX_NESTING_DEPTH);
        let written = crate::limits::on_small_stack(move || {
            let value = parse(text.as_bytes()).unwrap();
            let mut out = Vec::new();
            write_compact(&value, &mut out);
            let path = crate::path::JsonPath::parse("a[0].".repeat(400).trim_end_matches('.')).unwrap();
            assert!(path.lookup(&value).is_some());
            drop(value);
            out.len()
        });
        assert_eq!(written, nested(MAX_NESTING_DEPTH).len());
    }

    #[test]
    fn rejects_what_orjson_rejects() {
        for bad in ["\"\\ud800\"", "[1,]", "{\"a\"}", "", "nul", "\"a\nb\"", "01"] {
            assert!(roundtrip(bad).is_err(), "{bad:?} must be malformed");
        }
    }

    #[test]
    fn strings_and_objects() {
        assert_eq!(roundtrip(r#""\u00e9\/\u2028<>&""#).unwrap(), "\"é/\u{2028}<>&\"");
        assert_eq!(roundtrip(r#""a\"b\\c\n\u0001\t""#).unwrap(), r#""a\"b\\c\n\u0001\t""#);
        assert_eq!(
            roundtrip(r#"{ "a" : 1 , "b":[ true,false,null ], "a": 2 }"#).unwrap(),
            r#"{"a":2,"b":[true,false,null]}"#
        );
        assert_eq!(roundtrip(r#"{"a":1,"b":0,"a":-0}"#).unwrap(), r#"{"a":0,"b":0}"#);
    }
}
