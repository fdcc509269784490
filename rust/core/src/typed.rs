//! Typed columns: the `dataType` of a column, the conversion of a mapped JSON
//! value to it and the canonical text the staging CSV carries for it (the
//! targets parse exactly these forms).
//!
//! | dataType    | accepts                                                       | canonical text                  |
//! |-------------|---------------------------------------------------------------|---------------------------------|
//! | `integer`   | a JSON integer within i64, a string `-?[0-9]+` within i64     | `-?[0-9]+`                      |
//! | `number`    | any finite JSON number, a string that parses as one           | shortest round-trip f64 (`49.28`, `1.0`, `1e+300`) |
//! | `boolean`   | `true` / `false`, the strings `"true"` / `"false"`            | `true` / `false`                |
//! | `timestamp` | an RFC 3339 / ISO 8601 string, a JSON number of epoch seconds | `YYYY-MM-DDTHH:MM:SS.ffffffZ`   |
//! | `date`      | a `YYYY-MM-DD` string                                         | `YYYY-MM-DD`                    |
//! | `json`      | any JSON value                                                | compact JSON                    |
//!
//! JSON `null` is NULL (the empty field) for every typed column; `string`
//! columns are not converted at all (they keep the bytes of untyped columns).
//! Numbers follow the reference's (orjson's) reading of a literal: an integer
//! literal that fits 64 bits is an integer (`-0` is `0`), anything else a double.
//! Dates and timestamps cover the years 0001 to 9999 (what PostgreSQL's
//! `date` and `timestamptz` and every ISO reader take); fractions of a second
//! beyond microseconds are cut off (towards the past), never rounded.

use sonic_rs::{JsonType, JsonValueTrait, Value};

use crate::json::{self, NumberValue};
use crate::record::civil_from_days;

/// The data types of typed columns, as the Stream API names them (`dataType`).
pub const DATA_TYPES: [&str; 7] = ["string", "integer", "number", "boolean", "timestamp", "date", "json"];

/// The type of the values of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Untyped: the value is written as today (JSON text, or raw with `rawString`).
    String,
    Integer,
    Number,
    Boolean,
    Timestamp,
    Date,
    Json,
}

impl DataType {
    /// Every data type, in the order of [`DATA_TYPES`].
    pub const ALL: [DataType; 7] = [
        DataType::String,
        DataType::Integer,
        DataType::Number,
        DataType::Boolean,
        DataType::Timestamp,
        DataType::Date,
        DataType::Json,
    ];

    /// The data type of a `dataType` name.
    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The Stream API name (`"integer"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Integer => "integer",
            DataType::Number => "number",
            DataType::Boolean => "boolean",
            DataType::Timestamp => "timestamp",
            DataType::Date => "date",
            DataType::Json => "json",
        }
    }

    /// Whether values are converted (every type but `string`).
    pub fn is_typed(self) -> bool {
        self != DataType::String
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converted {
    /// The canonical text of a value.
    Value,
    /// Nothing: the value is JSON `null`, the column's NULL.
    Null,
}

/// The value cannot be read as the data type. The caller names column and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unconvertible;

/// Appends the canonical text of `value` read as `data_type` (nothing for
/// `null`). On error `out` is left as it was. `data_type` must be typed: a
/// `string` column is written by the mapping as it always was.
pub fn convert(data_type: DataType, value: &Value, out: &mut Vec<u8>) -> Result<Converted, Unconvertible> {
    if value.is_null() {
        return Ok(Converted::Null);
    }
    match data_type {
        DataType::Integer => write_integer(value, out)?,
        DataType::Number => write_number(value, out)?,
        DataType::Boolean => write_boolean(value, out)?,
        DataType::Timestamp => write_timestamp(timestamp_micros(value).ok_or(Unconvertible)?, out),
        DataType::Date => {
            let text = value.as_str().ok_or(Unconvertible)?;
            parse_date(text.as_bytes()).ok_or(Unconvertible)?;
            out.extend_from_slice(text.as_bytes());
        }
        DataType::Json => json::write_compact(value, out),
        DataType::String => {
            debug_assert!(false, "string columns are not converted");
            json::write_compact(value, out)
        }
    }
    Ok(Converted::Value)
}

/// The reason of a conversion error: `cannot convert "abc" to integer`, the
/// value as JSON text, cut after [`MAX_SHOWN_VALUE_CHARS`] characters.
pub fn unconvertible_reason(data_type: DataType, value: &Value) -> String {
    // A number is shown as it was sent (`1e3`, not `1000.0`).
    let text = match value.as_raw_number() {
        Some(raw) => raw.as_str().to_owned(),
        None => {
            let mut text = Vec::new();
            json::write_compact(value, &mut text);
            String::from_utf8_lossy(&text).into_owned()
        }
    };
    format!("cannot convert {} to {}", shortened(&text), data_type.as_str())
}

/// Longest part of a value an error message shows.
pub const MAX_SHOWN_VALUE_CHARS: usize = 100;

fn shortened(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_SHOWN_VALUE_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]).into(),
        None => text.into(),
    }
}

/// The literal text of a JSON number (numbers built in code have none).
fn number_literal(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    if let Some(raw) = value.as_raw_number() {
        return Some(raw.as_str().to_owned().into());
    }
    value.as_number().map(|n| n.to_string().into())
}

fn write_integer(value: &Value, out: &mut Vec<u8>) -> Result<(), Unconvertible> {
    let integer = match value.get_type() {
        JsonType::Number => {
            let literal = value.as_raw_number().ok_or(Unconvertible)?;
            let literal = literal.as_str();
            // `1.0` and `1e3` are refused: a literal with a fraction or an
            // exponent is a double (orjson), and a double is not silently truncated.
            if !json::is_integer_literal(literal) {
                return Err(Unconvertible);
            }
            literal.parse::<i64>().map_err(|_| Unconvertible)?
        }
        JsonType::String => parse_integer_text(value.as_str().unwrap_or_default()).ok_or(Unconvertible)?,
        _ => return Err(Unconvertible),
    };
    out.extend_from_slice(itoa::Buffer::new().format(integer).as_bytes());
    Ok(())
}

/// `-?[0-9]+` within i64 (leading zeros allowed: `007` is 7, `-0` is 0).
fn parse_integer_text(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

fn write_number(value: &Value, out: &mut Vec<u8>) -> Result<(), Unconvertible> {
    let number = match value.get_type() {
        JsonType::Number => number_from_literal(&number_literal(value).ok_or(Unconvertible)?),
        JsonType::String => parse_number_text(value.as_str().unwrap_or_default()),
        _ => None,
    }
    .ok_or(Unconvertible)?;
    json::write_f64(number, out);
    Ok(())
}

/// The double of a JSON number literal, read like the reference reads it:
/// integer literals as integers first (`-0` is `0.0`, not `-0.0`).
fn number_from_literal(literal: &str) -> Option<f64> {
    let number = match json::number_value(literal) {
        NumberValue::Int(i) => i as f64,
        NumberValue::UInt(u) => u as f64,
        NumberValue::Float(f) => f,
    };
    number.is_finite().then_some(number)
}

/// A string holding a finite number: a JSON number literal (read as
/// [`number_from_literal`] reads it, so `"-0"` and `-0` agree), or what Rust's
/// float parser takes in full (`+1.5`, `.5`, `1.`). `NaN`, `inf` and numbers
/// beyond the double range are refused.
fn parse_number_text(text: &str) -> Option<f64> {
    let number_like = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if !number_like {
        return None;
    }
    let number = text.parse::<f64>().ok()?;
    if !number.is_finite() {
        return None;
    }
    if json::is_integer_literal(text) && !text.starts_with('+') {
        return number_from_literal(text);
    }
    Some(number)
}

fn write_boolean(value: &Value, out: &mut Vec<u8>) -> Result<(), Unconvertible> {
    let flag = match value.get_type() {
        JsonType::Boolean => value.is_true(),
        JsonType::String => match value.as_str() {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(Unconvertible),
        },
        _ => return Err(Unconvertible),
    };
    out.extend_from_slice(if flag { b"true" } else { b"false" });
    Ok(())
}

// Dates and timestamps.

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// First and last year of a date or timestamp.
pub const MIN_YEAR: i64 = 1;
pub const MAX_YEAR: i64 = 9999;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, in microseconds since the epoch.
const MIN_MICROS: i64 = days_from_civil(MIN_YEAR, 1, 1) * MICROS_PER_DAY;
const MAX_MICROS: i64 = days_from_civil(MAX_YEAR + 1, 1, 1) * MICROS_PER_DAY - 1;

/// The instant of a timestamp value, in microseconds since the Unix epoch (UTC).
pub fn timestamp_micros(value: &Value) -> Option<i64> {
    let micros = match value.get_type() {
        JsonType::String => parse_timestamp(value.as_str()?.as_bytes())?,
        JsonType::Number => epoch_seconds_to_micros(&number_literal(value)?)?,
        _ => return None,
    };
    (MIN_MICROS..=MAX_MICROS).contains(&micros).then_some(micros)
}

/// Howard Hinnant's `days_from_civil`: (year, month, day) → days since 1970-01-01.
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (month as i64, day as i64);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The value of `count` ASCII digits at `at`, or `None`.
fn digits(text: &[u8], at: usize, count: usize) -> Option<u32> {
    let part = text.get(at..at + count)?;
    part.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

/// `YYYY-MM-DD` (exactly), a real calendar day of the years 0001–9999 → days since the epoch.
pub fn parse_date(text: &[u8]) -> Option<i64> {
    if text.len() != 10 {
        return None;
    }
    parse_date_prefix(text)
}

fn parse_date_prefix(text: &[u8]) -> Option<i64> {
    let year = i64::from(digits(text, 0, 4)?);
    let month = digits(text, 5, 2)?;
    let day = digits(text, 8, 2)?;
    if text[4] != b'-' || text[7] != b'-' || year < MIN_YEAR || !(1..=12).contains(&month) {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// An RFC 3339 / ISO 8601 timestamp (extended format) → microseconds since the epoch:
///
/// - `YYYY-MM-DD` alone is midnight UTC;
/// - then `T`, `t` or a space, `HH:MM`, optionally `:SS` and a fraction of
///   one or more digits after `.` or `,` (cut off after microseconds);
/// - then `Z`/`z`, an offset `±HH:MM`, `±HHMM` or `±HH`, or nothing (UTC).
pub fn parse_timestamp(text: &[u8]) -> Option<i64> {
    let days = parse_date_prefix(text.get(..10)?)?;
    if text.len() == 10 {
        return Some(days * MICROS_PER_DAY);
    }
    if !matches!(text[10], b'T' | b't' | b' ') {
        return None;
    }
    let hour = i64::from(digits(text, 11, 2)?);
    let minute = i64::from(digits(text, 14, 2)?);
    if text[13] != b':' || hour > 23 || minute > 59 {
        return None;
    }
    let mut at = 16;
    let mut second = 0;
    let mut fraction_micros = 0;
    if text.get(at) == Some(&b':') {
        second = i64::from(digits(text, at + 1, 2)?);
        if second > 59 {
            return None;
        }
        at += 3;
        if matches!(text.get(at), Some(b'.' | b',')) {
            at += 1;
            let start = at;
            while text.get(at).is_some_and(u8::is_ascii_digit) {
                if at - start < 6 {
                    fraction_micros = fraction_micros * 10 + i64::from(text[at] - b'0');
                }
                at += 1;
            }
            let count = at - start;
            if count == 0 {
                return None;
            }
            for _ in count..6 {
                fraction_micros *= 10;
            }
        }
    }
    let offset_minutes = match text.get(at) {
        None => 0,
        Some(b'Z' | b'z') if at + 1 == text.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &text[at + 1..];
            let (hours, minutes) = match rest.len() {
                2 => (digits(rest, 0, 2)?, 0),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = i64::from(hours * 60 + minutes);
            if sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * MICROS_PER_SECOND + fraction_micros)
}

/// A JSON number literal of seconds since the epoch → microseconds, computed on
/// the decimal digits (no rounding through a double: `1714564800.000001` is
/// exact). Digits beyond microseconds are cut off towards the past.
fn epoch_seconds_to_micros(literal: &str) -> Option<i64> {
    let (negative, unsigned) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => {
            let text = &unsigned[i + 1..];
            // An exponent beyond i64 is saturated: the number is then 0 or out of range.
            let exponent = text.parse::<i64>().unwrap_or(if text.starts_with('-') { -(1 << 40) } else { 1 << 40 });
            (&unsigned[..i], exponent.clamp(-(1 << 40), 1 << 40))
        }
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if integer.is_empty() || !integer.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The digits of the number, and how many of them are whole microseconds.
    let all_digits = integer.bytes().chain(fraction.bytes());
    let total = (integer.len() + fraction.len()) as i64;
    let whole_digits = integer.len() as i64 + exponent + 6;
    let mut micros: i64 = 0;
    let mut cut_off = false;
    for (i, digit) in all_digits.enumerate() {
        let digit = i64::from(digit - b'0');
        if (i as i64) < whole_digits {
            micros = micros.checked_mul(10)?.checked_add(digit)?;
        } else if digit != 0 {
            cut_off = true;
        }
    }
    if micros != 0 {
        for _ in total..whole_digits {
            micros = micros.checked_mul(10)?;
        }
    }
    Some(if negative { -micros - i64::from(cut_off) } else { micros })
}

/// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC) of an instant within the years 0001–9999.
pub fn write_timestamp(micros: i64, out: &mut Vec<u8>) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = of_day / MICROS_PER_SECOND;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], year.clamp(0, 9999) as u64);
    put_digits(&mut text[5..7], u64::from(month));
    put_digits(&mut text[8..10], u64::from(day));
    put_digits(&mut text[11..13], (seconds / 3600) as u64);
    put_digits(&mut text[14..16], (seconds / 60 % 60) as u64);
    put_digits(&mut text[17..19], (seconds % 60) as u64);
    put_digits(&mut text[20..26], (of_day % MICROS_PER_SECOND) as u64);
    out.extend_from_slice(&text);
}

fn put_digits(slots: &mut [u8], mut value: u64) {
    for slot in slots.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical text of a JSON value read as `data_type`, `Ok(None)` for NULL.
    fn typed(data_type: DataType, json_text: &str) -> Result<Option<String>, String> {
        let value = json::parse(json_text.as_bytes()).unwrap();
        let mut out = b"keep".to_vec();
        match convert(data_type, &value, &mut out) {
            Ok(Converted::Value) => Ok(Some(String::from_utf8(out[4..].to_vec()).unwrap())),
            Ok(Converted::Null) => {
                assert_eq!(out, b"keep");
                Ok(None)
            }
            Err(Unconvertible) => {
                assert_eq!(out, b"keep", "a failed conversion writes nothing");
                Err(unconvertible_reason(data_type, &value))
            }
        }
    }

    fn ok(data_type: DataType, json_text: &str) -> String {
        typed(data_type, json_text).unwrap_or_else(|e| panic!("{json_text}: {e}")).expect("not null")
    }

    fn refused(data_type: DataType, json_text: &str) {
        assert!(typed(data_type, json_text).is_err(), "{json_text} must not convert to {}", data_type.as_str());
    }

    #[test]
    fn names() {
        assert_eq!(DataType::ALL.map(DataType::as_str), DATA_TYPES);
        for name in DATA_TYPES {
            assert_eq!(DataType::from_name(name).unwrap().as_str(), name);
        }
        assert_eq!(DataType::from_name("Integer"), None);
        assert_eq!(DataType::from_name("int"), None);
        assert!(!DataType::String.is_typed() && DataType::Json.is_typed());
    }

    #[test]
    fn null_is_null_for_every_typed_type() {
        for data_type in &DataType::ALL[1..] {
            assert_eq!(typed(*data_type, "null"), Ok(None), "{}", data_type.as_str());
        }
    }

    #[test]
    fn integers() {
        use DataType::Integer;
        for (input, expected) in [
            ("0", "0"),
            ("-0", "0"),
            ("42", "42"),
            ("-7", "-7"),
            ("9223372036854775807", "9223372036854775807"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("\"42\"", "42"),
            ("\"-0\"", "0"),
            ("\"007\"", "7"),
            ("\"-9223372036854775808\"", "-9223372036854775808"),
        ] {
            assert_eq!(ok(Integer, input), expected, "{input}");
        }
        for input in [
            "1.5",
            "1.0",
            "-0.0",
            "1e3",
            "1E0",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "123456789012345678901234567890",
            "true",
            "[1]",
            "{\"a\":1}",
            "\"\"",
            "\"-\"",
            "\"+5\"",
            "\" 5\"",
            "\"5 \"",
            "\"1.5\"",
            "\"1e3\"",
            "\"0x10\"",
            "\"9223372036854775808\"",
            "\"abc\"",
        ] {
            refused(Integer, input);
        }
        assert_eq!(typed(Integer, "\"abc\""), Err("cannot convert \"abc\" to integer".to_owned()));
        assert_eq!(typed(Integer, "1.5"), Err("cannot convert 1.5 to integer".to_owned()));
        assert_eq!(typed(Integer, "1e3"), Err("cannot convert 1e3 to integer".to_owned()));
    }

    #[test]
    fn numbers() {
        use DataType::Number;
        for (input, expected) in [
            ("49.28", "49.28"),
            ("-0.5", "-0.5"),
            ("5", "5.0"),
            ("-0", "0.0"),
            ("-0.0", "-0.0"),
            ("1e300", "1e+300"),
            ("1E2", "100.0"),
            ("1.5e-7", "1.5e-7"),
            ("0.1", "0.1"),
            ("1e-400", "0.0"),
            ("9223372036854775807", "9.223372036854776e+18"),
            ("18446744073709551615", "1.8446744073709552e+19"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("123456789.123456789", "123456789.12345679"),
            ("\"49.28\"", "49.28"),
            ("\"-0\"", "0.0"),
            ("\"-0.0\"", "-0.0"),
            ("\"5\"", "5.0"),
            ("\"1e3\"", "1000.0"),
            ("\"+1.5\"", "1.5"),
            ("\".5\"", "0.5"),
            ("\"1.\"", "1.0"),
        ] {
            assert_eq!(ok(Number, input), expected, "{input}");
        }
        for input in [
            "1e400",
            "-1E+400",
            "true",
            "[]",
            "\"\"",
            "\"abc\"",
            "\"NaN\"",
            "\"nan\"",
            "\"inf\"",
            "\"-Infinity\"",
            "\"1e400\"",
            "\" 1\"",
            "\"1_000\"",
            "\"1,5\"",
            "\"--1\"",
            "\"e5\"",
            "\".\"",
        ] {
            refused(Number, input);
        }
        assert_eq!(typed(Number, "\"NaN\""), Err("cannot convert \"NaN\" to number".to_owned()));
    }

    #[test]
    fn booleans() {
        use DataType::Boolean;
        for (input, expected) in [("true", "true"), ("false", "false"), ("\"true\"", "true"), ("\"false\"", "false")] {
            assert_eq!(ok(Boolean, input), expected);
        }
        for input in ["1", "0", "\"True\"", "\"TRUE\"", "\"yes\"", "\"1\"", "\"\"", "[true]", "\" true\""] {
            refused(Boolean, input);
        }
    }

    #[test]
    fn dates() {
        use DataType::Date;
        for input in ["\"2024-05-01\"", "\"2024-02-29\"", "\"2000-02-29\"", "\"0001-01-01\"", "\"9999-12-31\""] {
            assert_eq!(ok(Date, input), input.trim_matches('"'));
        }
        for input in [
            "\"2023-02-29\"",
            "\"1900-02-29\"",
            "\"2024-04-31\"",
            "\"2024-13-01\"",
            "\"2024-00-10\"",
            "\"2024-01-00\"",
            "\"0000-01-01\"",
            "\"2024-5-1\"",
            "\"2024/05/01\"",
            "\"20240501\"",
            "\"2024-05-01T00:00:00Z\"",
            "\"2024-05-01 \"",
            "\"+2024-05-01\"",
            "\"２０２４-05-01\"",
            "20240501",
            "true",
        ] {
            refused(Date, input);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in [-719_162, -1, 0, 11_016, 11_017, 19_844, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn timestamps_from_strings() {
        use DataType::Timestamp;
        for (input, expected) in [
            ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000000Z"),
            ("2024-05-01t12:00:00z", "2024-05-01T12:00:00.000000Z"),
            ("2024-05-01 12:00:00", "2024-05-01T12:00:00.000000Z"),
            ("2024-05-01T12:00", "2024-05-01T12:00:00.000000Z"),
            ("2024-05-01", "2024-05-01T00:00:00.000000Z"),
            ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.000000Z"),
            ("2024-05-01T12:00:00-0530", "2024-05-01T17:30:00.000000Z"),
            ("2024-05-01T12:00:00+01", "2024-05-01T11:00:00.000000Z"),
            ("2024-05-01T00:30:00+01:00", "2024-04-30T23:30:00.000000Z"),
            ("2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00.000000Z"),
            ("2024-05-01T12:00:00.1Z", "2024-05-01T12:00:00.100000Z"),
            ("2024-05-01T12:00:00,25Z", "2024-05-01T12:00:00.250000Z"),
            ("2024-05-01T12:00:00.123456Z", "2024-05-01T12:00:00.123456Z"),
            ("2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.123456Z"),
            ("2024-05-01T12:00:00.9999999999999+00:00", "2024-05-01T12:00:00.999999Z"),
            ("2024-02-29T23:59:59.999999Z", "2024-02-29T23:59:59.999999Z"),
            ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
            ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
            ("0001-01-01T00:30:00-00:30", "0001-01-01T01:00:00.000000Z"),
        ] {
            assert_eq!(ok(Timestamp, &format!("\"{input}\"")), expected, "{input}");
        }
        for input in [
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:60Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12Z",
            "2024-05-01T12:00:00ZZ",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00+02:60",
            "2024-05-01T12:00:00+02:0",
            "2024-05-01T12:00:00 +02:00",
            "2024-05-01T12:00:00 UTC",
            "2024-05-01_12:00:00",
            "2024-05-01T",
            "20240501T120000Z",
            "0000-12-31T23:00:00Z",
            // Out of range once the offset is applied.
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "May 1, 2024",
            "",
        ] {
            refused(Timestamp, &format!("\"{input}\""));
        }
        refused(Timestamp, "true");
        refused(Timestamp, "{}");
    }

    #[test]
    fn timestamps_from_epoch_numbers() {
        use DataType::Timestamp;
        for (input, expected) in [
            ("0", "1970-01-01T00:00:00.000000Z"),
            ("-0", "1970-01-01T00:00:00.000000Z"),
            ("1714564800", "2024-05-01T12:00:00.000000Z"),
            ("1714564800.5", "2024-05-01T12:00:00.500000Z"),
            ("1714564800.000001", "2024-05-01T12:00:00.000001Z"),
            ("1714564800.1234569", "2024-05-01T12:00:00.123456Z"),
            ("1.7145648e9", "2024-05-01T12:00:00.000000Z"),
            ("17145648E+2", "2024-05-01T12:00:00.000000Z"),
            ("1714564800123e-3", "2024-05-01T12:00:00.123000Z"),
            ("-1", "1969-12-31T23:59:59.000000Z"),
            ("-1.5", "1969-12-31T23:59:58.500000Z"),
            ("-0.0000001", "1969-12-31T23:59:59.999999Z"),
            ("0.0000001", "1970-01-01T00:00:00.000000Z"),
            ("951782400", "2000-02-29T00:00:00.000000Z"),
            ("253402300799.999999", "9999-12-31T23:59:59.999999Z"),
            ("-62135596800", "0001-01-01T00:00:00.000000Z"),
            ("0e99999999999999999999", "1970-01-01T00:00:00.000000Z"),
            ("1e-99999999999999999999", "1970-01-01T00:00:00.000000Z"),
        ] {
            assert_eq!(ok(Timestamp, input), expected, "{input}");
        }
        for input in
            ["253402300800", "-62135596801", "1e300", "1e99999999999999999999", "-1e20", "99999999999999999999"]
        {
            refused(Timestamp, input);
        }
        // Epoch seconds are numbers; digits in a string are not (`20240501` is a basic-format date).
        refused(Timestamp, "\"1714564800\"");
    }

    #[test]
    fn json_values() {
        use DataType::Json;
        for (input, expected) in [
            ("{ \"b\" : [1, 2.50, -0], \"a\": \"x\" }", "{\"b\":[1,2.5,0],\"a\":\"x\"}"),
            ("\"text\"", "\"text\""),
            ("1e2", "100.0"),
            ("true", "true"),
            ("[]", "[]"),
        ] {
            assert_eq!(ok(Json, input), expected);
        }
    }

    /// The canonical text of every type reads back as itself (the targets parse it, and a
    /// CSV ingested again maps to the same row).
    #[test]
    fn canonical_text_converts_to_itself() {
        let samples: [(DataType, &[&str]); 5] = [
            (DataType::Integer, &["0", "-0", "\"007\"", "-9223372036854775808"]),
            (DataType::Number, &["49.28", "5", "-0.0", "1e300", "1.5e-7", "\".5\"", "123456789012345678901234567890"]),
            (DataType::Boolean, &["true", "\"false\""]),
            (DataType::Timestamp, &["\"2024-05-01 14:00:00.1234567+02:00\"", "-1.5", "\"0001-01-01\"", "1714564800"]),
            (DataType::Date, &["\"2024-02-29\"", "\"9999-12-31\""]),
        ];
        for (data_type, inputs) in samples {
            for input in inputs {
                let canonical = ok(data_type, input);
                assert_eq!(ok(data_type, &format!("\"{canonical}\"")), canonical, "{input}");
            }
        }
        // Every instant of the range, written and parsed again (a fixed pseudo-random walk).
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(15);
        for _ in 0..100_000 {
            let micros = rand::Rng::random_range(&mut rng, MIN_MICROS..=MAX_MICROS);
            let mut text = Vec::new();
            write_timestamp(micros, &mut text);
            assert_eq!(parse_timestamp(&text), Some(micros), "{}", String::from_utf8_lossy(&text));
            assert_eq!(parse_date(&text[..10]), Some(micros.div_euclid(MICROS_PER_DAY)));
            let (sign, magnitude) = (if micros < 0 { "-" } else { "" }, micros.unsigned_abs());
            let epoch = format!("{sign}{}.{:06}", magnitude / 1_000_000, magnitude % 1_000_000);
            assert_eq!(epoch_seconds_to_micros(&epoch), Some(micros), "{epoch}");
        }
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = format!("\"{}\"", "é".repeat(150));
        let reason = typed(DataType::Integer, &long).unwrap_err();
        assert_eq!(reason, format!("cannot convert \"{}... to integer", "é".repeat(99)));
        let exact = format!("\"{}\"", "x".repeat(98));
        assert_eq!(typed(DataType::Date, &exact).unwrap_err(), format!("cannot convert {exact} to date"));
    }
}
