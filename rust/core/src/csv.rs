//! Keboola's CSV encoding: every field quoted, `"` doubled, rows end with `\n`,
//! no header.

use memchr::memchr;

use crate::json;

/// Appends one quoted field to `out` (without separator).
#[inline]
pub fn write_field(value: &[u8], out: &mut Vec<u8>) {
    // Worst case every byte is a quote; plus slack for 16-byte block stores.
    out.reserve(2 * value.len() + 2 + 16);
    // SAFETY: `reserve` above makes room for the longest possible output
    // (2 * len + 2) plus the 16 bytes a block copy may write past a segment.
    unsafe {
        let base = out.as_mut_ptr().add(out.len());
        let written = escape_into(value, base);
        out.set_len(out.len() + written);
    }
}

/// Writes `"value"` with quotes doubled to `dst`; returns the bytes written.
///
/// # Safety
/// `dst` must have room for `2 * value.len() + 2 + 16` bytes.
#[inline]
unsafe fn escape_into(value: &[u8], dst: *mut u8) -> usize {
    let mut p = dst;
    *p = b'"';
    p = p.add(1);
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        // JSON bodies have a quote every dozen bytes, so a per-quote memchr is
        // slow. Instead: find all quotes of a 64-byte chunk at once (SSE2), then
        // copy the segments between them with 16-byte block moves.
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8, _mm_storeu_si128,
        };
        #[inline(always)]
        unsafe fn copy_blocks(src: *const u8, dst: *mut u8, len: usize) {
            let mut j = 0;
            while j < len {
                _mm_storeu_si128(dst.add(j) as *mut __m128i, _mm_loadu_si128(src.add(j) as *const __m128i));
                j += 16;
            }
        }
        let quote = _mm_set1_epi8(b'"' as i8);
        let src = value.as_ptr();
        // A segment copy may read up to 15 bytes past its chunk: stay 16 bytes clear of the end.
        while i + 64 + 16 <= value.len() {
            let chunk = src.add(i);
            let mask = |offset: usize| {
                _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(chunk.add(offset) as *const __m128i), quote)) as u16
                    as u64
            };
            let mut quotes = mask(0) | (mask(16) << 16) | (mask(32) << 32) | (mask(48) << 48);
            let mut last = 0usize;
            while quotes != 0 {
                let k = quotes.trailing_zeros() as usize;
                quotes &= quotes - 1;
                let segment = k + 1 - last;
                copy_blocks(chunk.add(last), p, segment);
                p = p.add(segment);
                *p = b'"';
                p = p.add(1);
                last = k + 1;
            }
            copy_blocks(chunk.add(last), p, 64 - last);
            p = p.add(64 - last);
            i += 64;
        }
    }
    for &b in &value[i..] {
        *p = b;
        p = p.add(1);
        if b == b'"' {
            *p = b'"';
            p = p.add(1);
        }
    }
    *p = b'"';
    p = p.add(1);
    p.offset_from(dst) as usize
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
            other => return Err(format!("byte {pos}: expected \",\" or newline, found {other:?}")),
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
        assert_eq!(out, b"\"a\"\"b\",\"x,\ny\",\"\",\"true\",\"-3\",\"1.0\",\"0.1\"\n");
        assert_eq!(parse_rows(&out).unwrap(), vec![vec!["a\"b", "x,\ny", "", "true", "-3", "1.0", "0.1"]]);
    }

    fn simple_field(value: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in value {
            out.push(b);
            if b == b'"' {
                out.push(b'"');
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn field_escaping_matches_the_simple_definition() {
        // Every length around the 64-byte chunking and every quote density.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            for density in [0u64, 1, 4, 16, 64] {
                let value: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        if density > 0 && seed % 64 < density {
                            b'"'
                        } else {
                            b'a' + (seed % 26) as u8
                        }
                    })
                    .collect();
                let mut out = b"prefix".to_vec();
                write_field(&value, &mut out);
                assert_eq!(&out[6..], simple_field(&value).as_slice(), "len {len} density {density}");
            }
        }
        let all_quotes = vec![b'"'; 200];
        let mut out = Vec::new();
        write_field(&all_quotes, &mut out);
        assert_eq!(out, simple_field(&all_quotes));
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
