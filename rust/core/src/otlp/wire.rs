//! OTLP protobuf log requests flattened straight from the wire: the records
//! of the busiest signal without building prost's messages first (an
//! allocation for every string, attribute, value and record), which took more
//! time than flattening.
//!
//! Takes only bodies that prost accepts, and writes the records that
//! [`Flattener::logs`] writes from prost's messages (the layout is shared).
//! Whatever protobuf gives a meaning this reader leaves to prost — a singular
//! field sent twice (merged or replaced), a group, values nested deeper than
//! [`MAX_DEPTH`] — and any error (malformed, over a limit) returns
//! [`Unusual`]: the caller then decodes the body with prost from scratch, and
//! that decides the records or the error.

use super::flatten::{base64_str, double, integer, null, object, scope_fields_json, Flattener, LogFields};
use super::OtlpError;
use crate::json::write_str;

/// Deepest nesting of any-values read here (prost allows about 95 below a log record).
const MAX_DEPTH: usize = 32;

/// The body needs prost's decoding: something this reader does not take.
#[derive(Debug)]
pub(super) struct Unusual;

impl From<OtlpError> for Unusual {
    fn from(_: OtlpError) -> Unusual {
        Unusual
    }
}

type Wire<T> = Result<T, Unusual>;

/// One field of a message as it is on the wire.
#[derive(Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one message, in wire order.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn of(buf: &'a [u8]) -> Fields<'a> {
        Fields { buf }
    }

    /// prost's `decode_varint`: at most ten bytes, the value within 64 bits.
    #[inline(always)]
    fn varint(&mut self) -> Wire<u64> {
        // Keys and most lengths and numbers take one byte.
        match self.buf.first() {
            Some(&byte) if byte < 0x80 => {
                self.buf = &self.buf[1..];
                Ok(u64::from(byte))
            }
            _ => self.long_varint(),
        }
    }

    fn long_varint(&mut self) -> Wire<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().take(10).enumerate() {
            if i == 9 && byte > 1 {
                return Err(Unusual);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(Unusual)
    }

    fn take(&mut self, n: usize) -> Wire<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Unusual);
        }
        let (taken, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(taken)
    }

    /// The next field (its number and value), `None` at the end of the message.
    #[inline]
    fn next(&mut self) -> Wire<Option<(u32, Field<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        // prost's `decode_key`: the key within 32 bits, the field number from 1.
        let key = u32::try_from(self.varint()?).map_err(|_| Unusual)?;
        let number = key >> 3;
        if number == 0 {
            return Err(Unusual);
        }
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Unusual)?;
                Field::Len(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            // Groups (3, 4) are prost's to skip; 6 and 7 are no wire type.
            _ => return Err(Unusual),
        };
        Ok(Some((number, field)))
    }
}

/// A string field: UTF-8, as prost checks it.
fn text(bytes: &[u8]) -> Wire<&str> {
    // Most strings are ASCII, which a word-at-a-time look confirms sooner.
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| Unusual)
}

/// Records that a singular field was seen; a second time is prost's to merge
/// or replace.
fn once(seen: &mut bool) -> Wire<()> {
    if std::mem::replace(seen, true) {
        return Err(Unusual);
    }
    Ok(())
}

/// Sets a singular field, once (see [`once`]).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Wire<()> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(Unusual),
    }
}

/// The singular field 1 (the resource, the scope) of a `ResourceLogs` or
/// `ScopeLogs` message, checking that fields 1 and 2 (its children) are
/// length-delimited: the message may carry it after its children.
fn header(message: &[u8]) -> Wire<Option<&[u8]>> {
    let mut found = None;
    let mut fields = Fields::of(message);
    while let Some(field) = fields.next()? {
        match field {
            (1, Field::Len(bytes)) => set_once(&mut found, bytes)?,
            (2, Field::Len(_)) => {}
            (1 | 2, _) => return Err(Unusual),
            _ => {}
        }
    }
    Ok(found)
}

/// The repeated field 2 (scope logs, log records) of a message that
/// [`header`] has checked: its fields are known to read without error.
fn children(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut fields = Fields::of(message);
    std::iter::from_fn(move || fields.next().ok().flatten()).filter_map(|field| match field {
        (2, Field::Len(child)) => Some(child),
        _ => None,
    })
}

/// Every record of an `ExportLogsServiceRequest`.
pub(super) fn logs(flattener: &mut Flattener, body: &[u8]) -> Wire<()> {
    let mut request = Fields::of(body);
    while let Some(field) = request.next()? {
        match field {
            (1, Field::Len(resource_logs)) => self::resource_logs(flattener, resource_logs)?,
            (1, _) => return Err(Unusual),
            _ => {}
        }
    }
    Ok(())
}

fn resource_logs(flattener: &mut Flattener, message: &[u8]) -> Wire<()> {
    // The resource may follow its records on the wire: found first.
    let resource = header(message)?;
    let mut resource_json = Vec::new();
    let mut pairs = Vec::new();
    if let Some(resource) = resource {
        let mut fields = Fields::of(resource);
        while let Some(field) = fields.next()? {
            match field {
                (1, Field::Len(pair)) => pairs.push(key_value(pair)?),
                (1, _) => return Err(Unusual),
                _ => {}
            }
        }
    }
    attributes(&pairs, &mut resource_json, 0)?;
    for scope_logs in children(message) {
        self::scope_logs(flattener, scope_logs, &resource_json)?;
    }
    Ok(())
}

fn scope_logs(flattener: &mut Flattener, message: &[u8], resource: &[u8]) -> Wire<()> {
    let scope = header(message)?;
    let (mut name, mut version) = (None, None);
    if let Some(scope) = scope {
        let mut fields = Fields::of(scope);
        while let Some(field) = fields.next()? {
            match field {
                (1, Field::Len(bytes)) => set_once(&mut name, text(bytes)?)?,
                (2, Field::Len(bytes)) => set_once(&mut version, text(bytes)?)?,
                (1 | 2, _) => return Err(Unusual),
                _ => {}
            }
        }
    }
    let scope_json = scope_fields_json(name.unwrap_or(""), version.unwrap_or(""));
    for log in children(message) {
        log_record(flattener, log, resource, &scope_json)?;
    }
    Ok(())
}

fn log_record(flattener: &mut Flattener, message: &[u8], resource: &[u8], scope: &[u8]) -> Wire<()> {
    let mut log = LogFields {
        time_unix_nano: 0,
        observed_time_unix_nano: 0,
        severity_number: 0,
        severity_text: "",
        flags: 0,
        trace_id: &[],
        span_id: &[],
    };
    let mut body = None;
    let mut pairs = Vec::new();
    // Every field but the attributes (6) is singular.
    let mut seen = [false; 12];
    let mut fields = Fields::of(message);
    while let Some((number, field)) = fields.next()? {
        if let Some(seen) = seen.get_mut(number as usize).filter(|_| number != 6) {
            once(seen)?;
        }
        match (number, field) {
            (1, Field::Fixed64(value)) => log.time_unix_nano = value,
            (11, Field::Fixed64(value)) => log.observed_time_unix_nano = value,
            // int32 is a varint truncated to 32 bits, as prost reads it.
            (2, Field::Varint(value)) => log.severity_number = value as i32,
            (3, Field::Len(bytes)) => log.severity_text = text(bytes)?,
            (5, Field::Len(bytes)) => body = Some(bytes),
            (6, Field::Len(pair)) => pairs.push(key_value(pair)?),
            (8, Field::Fixed32(value)) => log.flags = value,
            (9, Field::Len(bytes)) => log.trace_id = bytes,
            (10, Field::Len(bytes)) => log.span_id = bytes,
            (1 | 2 | 3 | 5 | 6 | 8 | 9 | 10 | 11, _) => return Err(Unusual),
            _ => {}
        }
    }
    flattener.log_record(
        &log,
        |out| match body {
            Some(value) => any_value(value, out, 0),
            None => null(out),
        },
        |out| attributes(&pairs, out, 0),
        (resource, scope),
    )
}

/// A `KeyValue`: its key and the bytes of its value (`None`: not set).
fn key_value(message: &[u8]) -> Wire<(&str, Option<&[u8]>)> {
    let (mut key, mut value) = (None, None);
    let mut fields = Fields::of(message);
    while let Some(field) = fields.next()? {
        match field {
            (1, Field::Len(bytes)) => set_once(&mut key, text(bytes)?)?,
            (2, Field::Len(bytes)) => set_once(&mut value, bytes)?,
            (1 | 2, _) => return Err(Unusual),
            _ => {}
        }
    }
    Ok((key.unwrap_or(""), value))
}

fn attributes(pairs: &[(&str, Option<&[u8]>)], out: &mut Vec<u8>, depth: usize) -> Wire<()> {
    let value = |value: Option<&[u8]>, out: &mut Vec<u8>| match value {
        Some(value) => any_value(value, out, depth + 1),
        None => null(out),
    };
    let written = object(pairs, |(key, _)| key, |(_, bytes), out| value(*bytes, out), out)?;
    if written < pairs.len() {
        // The values of a repeated key are not written, but prost reads them all.
        let mut unused = Vec::new();
        for (_, bytes) in pairs {
            value(*bytes, &mut unused)?;
            unused.clear();
        }
    }
    Ok(())
}

/// An `AnyValue` as JSON (`null` when no value is set).
fn any_value(message: &[u8], out: &mut Vec<u8>, depth: usize) -> Wire<()> {
    if depth > MAX_DEPTH {
        return Err(Unusual);
    }
    let mut value = None;
    let mut fields = Fields::of(message);
    while let Some((number, field)) = fields.next()? {
        if (1..=7).contains(&number) && value.replace((number, field)).is_some() {
            // A second value of the oneof: prost replaces or merges.
            return Err(Unusual);
        }
    }
    match value {
        None => out.extend_from_slice(b"null"),
        Some((1, Field::Len(bytes))) => write_str(text(bytes)?, out),
        Some((2, Field::Varint(value))) => out.extend_from_slice(if value != 0 { b"true" } else { b"false" }),
        Some((3, Field::Varint(value))) => integer(value as i64, out),
        Some((4, Field::Fixed64(bits))) => double(f64::from_bits(bits), out),
        Some((5, Field::Len(array))) => {
            out.push(b'[');
            let mut first = true;
            let mut fields = Fields::of(array);
            while let Some(field) = fields.next()? {
                match field {
                    (1, Field::Len(item)) => {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        any_value(item, out, depth + 1)?;
                    }
                    (1, _) => return Err(Unusual),
                    _ => {}
                }
            }
            out.push(b']');
        }
        Some((6, Field::Len(list))) => {
            let mut pairs = Vec::new();
            let mut fields = Fields::of(list);
            while let Some(field) = fields.next()? {
                match field {
                    (1, Field::Len(pair)) => pairs.push(key_value(pair)?),
                    (1, _) => return Err(Unusual),
                    _ => {}
                }
            }
            attributes(&pairs, out, depth + 1)?;
        }
        Some((7, Field::Len(bytes))) => base64_str(bytes, out),
        Some(_) => return Err(Unusual),
    }
    Ok(())
}
