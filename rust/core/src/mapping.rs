//! Sink mappings: a list of column definitions compiled once into a `Mapping`
//! that turns records into CSV rows.

use serde::Deserialize;

use crate::csv;
use crate::error::{ConfigError, MappingError, MappingErrorKind};
use crate::json;
use crate::path::JsonPath;
use crate::record::RecordContext;
use crate::template::Template;
use crate::typed::{self, Converted, DataType};

/// Most columns one sink may have.
pub const MAX_COLUMNS: usize = 100;

/// The column types a mapping compiles, as the Stream API names them (`id` is
/// another name of `uuid`).
pub const COLUMN_TYPES: [&str; 8] = ["uuid", "id", "datetime", "ip", "body", "headers", "path", "template"];

/// A column definition as it appears in the Stream API (`table.mapping.columns[]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ColumnDef {
    #[serde(rename = "type")]
    pub column_type: String,
    pub name: String,
    #[serde(default)]
    pub primary_key: Option<bool>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub default_value: Option<String>,
    #[serde(default)]
    pub raw_string: Option<bool>,
    #[serde(default)]
    pub template: Option<TemplateDef>,
    /// One of [`typed::DATA_TYPES`]; omitted is `string` (an untyped column).
    #[serde(default)]
    pub data_type: Option<String>,
    /// Whether a typed column takes NULL (default true); ignored by `string` columns.
    #[serde(default)]
    pub nullable: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TemplateDef {
    pub language: String,
    pub content: String,
}

#[derive(Debug)]
enum Kind {
    Uuid,
    Datetime,
    Ip,
    Body,
    Headers,
    /// `default` is the `defaultValue` as given for a `string` column, and
    /// its canonical text (converted once, when compiled) for a typed one.
    Path {
        path: JsonPath,
        default: Option<Box<str>>,
        raw_string: bool,
    },
    Template(Template),
}

/// One compiled column.
#[derive(Debug)]
pub struct Column {
    name: String,
    type_name: &'static str,
    primary_key: bool,
    data_type: DataType,
    nullable: bool,
    kind: Kind,
}

impl Column {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The canonical type name (`id` is reported as `uuid`).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    pub fn primary_key(&self) -> bool {
        self.primary_key
    }

    /// The type of the column's values (`String` for an untyped column).
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// Whether the column takes NULL (`nullable`, default true).
    pub fn nullable(&self) -> bool {
        self.nullable
    }
}

/// A compiled sink mapping. Immutable and shareable between threads.
#[derive(Debug)]
pub struct Mapping {
    columns: Vec<Column>,
    needs_parsed_body: bool,
    needs_headers: bool,
}

impl Mapping {
    /// Compiles column definitions given as the JSON array of the Stream API.
    pub fn from_json(columns_json: &str) -> Result<Mapping, ConfigError> {
        let defs: Vec<ColumnDef> = serde_json::from_str(columns_json)
            .map_err(|e| ConfigError::new(format!("invalid column definitions: {e}")))?;
        Mapping::compile(&defs)
    }

    pub fn compile(defs: &[ColumnDef]) -> Result<Mapping, ConfigError> {
        if defs.is_empty() {
            return Err(ConfigError::new("a mapping needs at least one column"));
        }
        if defs.len() > MAX_COLUMNS {
            return Err(ConfigError::new(format!(
                "a mapping may have at most {MAX_COLUMNS} columns, found {}",
                defs.len()
            )));
        }
        let mut columns: Vec<Column> = Vec::with_capacity(defs.len());
        for def in defs {
            if def.name.trim().is_empty() {
                return Err(ConfigError::new("column name must not be empty"));
            }
            if columns.iter().any(|c| c.name == def.name) {
                return Err(ConfigError::column(&def.name, format!("duplicate column name \"{}\"", def.name)));
            }
            columns.push(compile_column(def)?);
        }
        let needs_parsed_body = columns.iter().any(|c| matches!(c.kind, Kind::Path { .. } | Kind::Template(_)));
        let needs_headers = columns.iter().any(|c| matches!(c.kind, Kind::Headers | Kind::Template(_)));
        Ok(Mapping { columns, needs_parsed_body, needs_headers })
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// True when a column reads the parsed body (`path`, `template`).
    pub fn needs_parsed_body(&self) -> bool {
        self.needs_parsed_body
    }

    /// True when a column may read request headers other than `Content-Type`
    /// (`headers`; `template`, whose content may call `Header()`). A mapping
    /// without such a column maps the same rows from the `Content-Type` alone.
    pub fn needs_headers(&self) -> bool {
        self.needs_headers
    }

    /// Appends one CSV row for the record to `out`. On error `out` is left as
    /// it was: a row is written whole or not at all.
    pub fn encode_row(
        &self,
        ctx: &RecordContext<'_>,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), MappingError> {
        let start = out.len();
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if let Err(e) = self.encode_field(column, ctx, out, scratch) {
                out.truncate(start);
                return Err(e.with_column(&column.name));
            }
        }
        out.push(b'\n');
        Ok(())
    }

    fn encode_field(
        &self,
        column: &Column,
        ctx: &RecordContext<'_>,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), MappingError> {
        if column.data_type.is_typed() {
            scratch.clear();
            write_typed_value(column, ctx, scratch)?;
            csv::write_field(scratch, out);
            return Ok(());
        }
        // Values that cannot contain a quote skip the scratch buffer.
        match &column.kind {
            Kind::Body => csv::write_field(ctx.body(), out),
            Kind::Datetime => {
                out.push(b'"');
                out.extend_from_slice(ctx.meta().datetime().as_bytes());
                out.push(b'"');
            }
            Kind::Uuid => {
                out.push(b'"');
                write_uuid(ctx, out);
                out.push(b'"');
            }
            _ => {
                scratch.clear();
                write_value(column, ctx, scratch)?;
                csv::write_field(scratch, out);
            }
        }
        Ok(())
    }

    /// The row as decoded strings (the `test` endpoint and debugging); the
    /// NULL of a typed column is the empty string, as in the CSV.
    pub fn map_values(&self, ctx: &RecordContext<'_>) -> Result<Vec<String>, MappingError> {
        let mut values = Vec::with_capacity(self.columns.len());
        let mut buffer = Vec::new();
        for column in &self.columns {
            buffer.clear();
            let written = if column.data_type.is_typed() {
                write_typed_value(column, ctx, &mut buffer)
            } else {
                write_value(column, ctx, &mut buffer)
            };
            written.map_err(|e| e.with_column(&column.name))?;
            values.push(String::from_utf8_lossy(&buffer).into_owned());
        }
        Ok(values)
    }
}

thread_local! {
    static UUID_RNG: std::cell::RefCell<rand::rngs::SmallRng> =
        std::cell::RefCell::new(rand::SeedableRng::from_os_rng());
}

/// A UUIDv7 whose timestamp is the record's receive time (so ids sort by
/// arrival) and whose 74 random bits come from a per-thread generator seeded
/// by the OS: no clock read and no syscall per row.
fn write_uuid(ctx: &RecordContext<'_>, out: &mut Vec<u8>) {
    let millis = ctx.meta().received_at_ns().max(0) as u64 / 1_000_000;
    let random: [u8; 10] = UUID_RNG.with(|rng| rand::Rng::random(&mut *rng.borrow_mut()));
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let mut buffer = uuid::Uuid::encode_buffer();
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buffer).as_bytes());
}

/// Writes the unquoted value of one column.
fn write_value(column: &Column, ctx: &RecordContext<'_>, out: &mut Vec<u8>) -> Result<(), MappingError> {
    match &column.kind {
        Kind::Uuid => write_uuid(ctx, out),
        Kind::Datetime => out.extend_from_slice(ctx.meta().datetime().as_bytes()),
        Kind::Ip => out.extend_from_slice(ctx.meta().ip().as_bytes()),
        Kind::Body => out.extend_from_slice(ctx.body()),
        Kind::Headers => out.extend_from_slice(ctx.meta().headers_json().as_bytes()),
        Kind::Path { path, default, raw_string } => {
            let body = ctx.parsed_body()?;
            match path.lookup(body) {
                Some(value) => match value.as_str() {
                    Some(s) if *raw_string => out.extend_from_slice(s.as_bytes()),
                    _ => json::write_compact(value, out),
                },
                None => match default {
                    Some(default) if *raw_string => out.extend_from_slice(default.as_bytes()),
                    Some(default) => json::write_str(default, out),
                    None => {
                        return Err(MappingError {
                            kind: MappingErrorKind::MissingValue,
                            column: None,
                            reason: format!("path \"{path}\" not found in the body"),
                        })
                    }
                },
            }
        }
        Kind::Template(template) => template.evaluate(ctx, out)?,
    }
    Ok(())
}

/// Writes the canonical text of a typed column's value (nothing for NULL).
fn write_typed_value(column: &Column, ctx: &RecordContext<'_>, out: &mut Vec<u8>) -> Result<(), MappingError> {
    let data_type = column.data_type;
    match &column.kind {
        // Compiling allows only `string` and `timestamp` here.
        Kind::Datetime => typed::write_timestamp(ctx.meta().received_at_ns().div_euclid(1000), out),
        // ... and only `string` and `json` here: the headers are a JSON object already.
        Kind::Headers => out.extend_from_slice(ctx.meta().headers_json().as_bytes()),
        Kind::Path { path, default, .. } => {
            let body = ctx.parsed_body()?;
            match path.lookup(body) {
                Some(value) => convert_value(column, value, out)?,
                None => match default {
                    Some(canonical) => out.extend_from_slice(canonical.as_bytes()),
                    None => no_value(column)?,
                },
            }
        }
        Kind::Template(template) => {
            let start = out.len();
            template.evaluate(ctx, out)?;
            // The result is compact JSON; `json` keeps it as it is (but `null`).
            if data_type == DataType::Json {
                if &out[start..] == b"null" {
                    out.truncate(start);
                    no_value(column)?;
                }
                return Ok(());
            }
            let value = json::parse(&out[start..]);
            out.truncate(start);
            let value = value.map_err(|e| MappingError {
                kind: MappingErrorKind::Template,
                column: None,
                reason: format!("the template's result is not JSON: {e}"),
            })?;
            convert_value(column, &value, out)?;
        }
        Kind::Uuid | Kind::Ip | Kind::Body => unreachable!("compiling refuses a dataType other than string here"),
    }
    Ok(())
}

fn convert_value(column: &Column, value: &sonic_rs::Value, out: &mut Vec<u8>) -> Result<(), MappingError> {
    match typed::convert(column.data_type, value, out) {
        Ok(Converted::Value) => Ok(()),
        Ok(Converted::Null) => no_value(column),
        Err(typed::Unconvertible) => Err(MappingError {
            kind: MappingErrorKind::InvalidValue,
            column: None,
            reason: typed::unconvertible_reason(column.data_type, value),
        }),
    }
}

/// The NULL of a nullable column (nothing is written), or the error of a column that is not.
fn no_value(column: &Column) -> Result<(), MappingError> {
    if column.nullable {
        return Ok(());
    }
    Err(MappingError {
        kind: MappingErrorKind::MissingValue,
        column: None,
        reason: "no value, the column is not nullable".to_owned(),
    })
}

/// The data types each column type may carry: values of `path` and
/// `template` columns convert to any; the receive time is a timestamp, the
/// headers a JSON object; ids, IPs and raw bodies stay text.
fn allowed_data_types(type_name: &str) -> &'static [DataType] {
    match type_name {
        "path" | "template" => &DataType::ALL,
        "datetime" => &[DataType::String, DataType::Timestamp],
        "headers" => &[DataType::String, DataType::Json],
        _ => &[DataType::String],
    }
}

fn compile_data_type(def: &ColumnDef, type_name: &str) -> Result<DataType, ConfigError> {
    let name = def.name.as_str();
    let Some(text) = def.data_type.as_deref() else {
        return Ok(DataType::String);
    };
    let data_type = DataType::from_name(text).ok_or_else(|| {
        ConfigError::column(
            name,
            format!("unknown dataType \"{text}\", expected one of {}", typed::DATA_TYPES.join(", ")),
        )
    })?;
    let allowed = allowed_data_types(type_name);
    if !allowed.contains(&data_type) {
        let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
        return Err(ConfigError::column(
            name,
            format!(
                "dataType \"{text}\" is not allowed for a column of type \"{}\", expected {}",
                def.column_type,
                names.join(" or ")
            ),
        ));
    }
    if data_type.is_typed() && def.raw_string == Some(true) {
        // The canonical text of a typed value has no JSON quotes to remove.
        return Err(ConfigError::column(
            name,
            format!("\"rawString\" is not allowed for a column of dataType \"{text}\""),
        ));
    }
    Ok(data_type)
}

/// The canonical text of a typed column's `defaultValue` (a string, converted
/// like a string value of the body), or why it has none.
fn typed_default(name: &str, data_type: DataType, default: &str) -> Result<Box<str>, ConfigError> {
    let mut quoted = Vec::new();
    json::write_str(default, &mut quoted);
    let value = json::parse(&quoted).map_err(|e| ConfigError::column(name, e))?;
    let mut canonical = Vec::new();
    match typed::convert(data_type, &value, &mut canonical) {
        Ok(_) => Ok(String::from_utf8(canonical).expect("canonical text is UTF-8").into_boxed_str()),
        Err(typed::Unconvertible) => Err(ConfigError::column(
            name,
            format!("\"defaultValue\": {}", typed::unconvertible_reason(data_type, &value)),
        )),
    }
}

use sonic_rs::JsonValueTrait;

fn compile_column(def: &ColumnDef) -> Result<Column, ConfigError> {
    let name = def.name.as_str();
    let forbid = |field: &str, present: bool| -> Result<(), ConfigError> {
        if present {
            Err(ConfigError::column(
                name,
                format!("\"{field}\" is not allowed for a column of type \"{}\"", def.column_type),
            ))
        } else {
            Ok(())
        }
    };
    let (type_name, kind) = match def.column_type.as_str() {
        "uuid" | "id" => ("uuid", Kind::Uuid),
        "datetime" => ("datetime", Kind::Datetime),
        "ip" => ("ip", Kind::Ip),
        "body" => ("body", Kind::Body),
        "headers" => ("headers", Kind::Headers),
        "path" => {
            let text =
                def.path.as_deref().ok_or_else(|| ConfigError::column(name, "a \"path\" column needs \"path\""))?;
            let path = JsonPath::parse(text).map_err(|e| ConfigError::column(name, e))?;
            forbid("template", def.template.is_some())?;
            (
                "path",
                Kind::Path {
                    path,
                    default: def.default_value.as_deref().map(Into::into),
                    raw_string: def.raw_string.unwrap_or(false),
                },
            )
        }
        "template" => {
            let template = def
                .template
                .as_ref()
                .ok_or_else(|| ConfigError::column(name, "a \"template\" column needs \"template\""))?;
            forbid("path", def.path.is_some())?;
            forbid("defaultValue", def.default_value.is_some())?;
            (
                "template",
                Kind::Template(Template::compile(
                    name,
                    &template.language,
                    &template.content,
                    def.raw_string.unwrap_or(false),
                )?),
            )
        }
        other => {
            // `id` is left out: it is `uuid` by another name.
            let expected: Vec<&str> = COLUMN_TYPES.into_iter().filter(|t| *t != "id").collect();
            return Err(ConfigError::column(
                name,
                format!("unknown column type \"{other}\", expected one of {}", expected.join(", ")),
            ));
        }
    };
    if !matches!(kind, Kind::Path { .. } | Kind::Template(_)) {
        forbid("path", def.path.is_some())?;
        forbid("defaultValue", def.default_value.is_some())?;
        forbid("rawString", def.raw_string.is_some())?;
        forbid("template", def.template.is_some())?;
    }
    let data_type = compile_data_type(def, type_name)?;
    let kind = match kind {
        Kind::Path { path, default: Some(default), raw_string } if data_type.is_typed() => {
            Kind::Path { path, default: Some(typed_default(name, data_type, &default)?), raw_string }
        }
        kind => kind,
    };
    Ok(Column {
        name: def.name.clone(),
        type_name,
        primary_key: def.primary_key.unwrap_or(false),
        data_type,
        nullable: def.nullable.unwrap_or(true),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::{Record, RecordMeta};

    fn record(body: &str, content_type: &str) -> Record {
        let meta = RecordMeta::new(
            vec![("content-type".into(), content_type.into())],
            "10.0.0.1".into(),
            1_700_000_000_123_000_000,
        );
        Record::new(Arc::new(meta), body.as_bytes().to_vec())
    }

    fn row(columns: &str, body: &str) -> Result<String, MappingError> {
        let mapping = Mapping::from_json(columns).unwrap();
        let record = record(body, "application/json");
        let ctx = RecordContext::new(record.view());
        let mut out = Vec::new();
        mapping.encode_row(&ctx, &mut out, &mut Vec::new())?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn static_columns() {
        let out = row(r#"[{"type":"datetime","name":"t"},{"type":"ip","name":"ip"},{"type":"body","name":"b"},{"type":"headers","name":"h"}]"#, r#"{"a":"x"}"#).unwrap();
        assert_eq!(out, "\"2023-11-14T22:13:20.123Z\",\"10.0.0.1\",\"{\"\"a\"\":\"\"x\"\"}\",\"{\"\"Content-Type\"\":\"\"application/json\"\"}\"\n");
    }

    #[test]
    fn uuid_columns_are_v7() {
        let out = row(r#"[{"type":"id","name":"id"},{"type":"uuid","name":"u"}]"#, "{}").unwrap();
        let fields: Vec<&str> = out.trim_end().split(',').map(|f| f.trim_matches('"')).collect();
        for field in &fields {
            let parsed = uuid::Uuid::parse_str(field).unwrap();
            assert_eq!(parsed.get_version_num(), 7);
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
            // The timestamp is the receive time of the record (1_700_000_000_123 ms).
            let (secs, nanos) = parsed.get_timestamp().unwrap().to_unix();
            assert_eq!((secs, nanos / 1_000_000), (1_700_000_000, 123));
        }
        assert_ne!(fields[0], fields[1]);
    }

    #[test]
    fn path_columns() {
        let cols = r#"[{"type":"path","name":"s","path":"a"},{"type":"path","name":"r","path":"a","rawString":true},{"type":"path","name":"o","path":"o"},{"type":"path","name":"n","path":"o.n[1]"},{"type":"path","name":"d","path":"missing","defaultValue":"dflt"},{"type":"path","name":"dr","path":"missing","defaultValue":"dflt","rawString":true},{"type":"path","name":"num","path":"o.n[0]","rawString":true}]"#;
        let out = row(cols, r#"{"a":"x\"y","o":{"n":[1.5,true]}}"#).unwrap();
        assert_eq!(
            out,
            "\"\"\"x\\\"\"y\"\"\",\"x\"\"y\",\"{\"\"n\"\":[1.5,true]}\",\"true\",\"\"\"dflt\"\"\",\"dflt\",\"1.5\"\n"
        );
    }

    #[test]
    fn mapping_errors() {
        let err = row(r#"[{"type":"path","name":"p","path":"a.b"}]"#, r#"{"a":1}"#).unwrap_err();
        assert_eq!(err.kind, MappingErrorKind::MissingValue);
        assert_eq!(err.to_string(), "column \"p\": path \"a.b\" not found in the body");
        let err = row(r#"[{"type":"path","name":"p","path":"a"}]"#, r#"{"a":1"#).unwrap_err();
        assert_eq!(err.kind, MappingErrorKind::MalformedBody);
        assert_eq!(err.column, None);

        let mapping =
            Mapping::from_json(r#"[{"type":"body","name":"b"},{"type":"path","name":"p","path":"a"}]"#).unwrap();
        let rec = record("a=1", "text/plain");
        let err = mapping.encode_row(&RecordContext::new(rec.view()), &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, MappingErrorKind::UnsupportedContentType);
        // A static mapping stores any body.
        let mapping = Mapping::from_json(r#"[{"type":"body","name":"b"}]"#).unwrap();
        let mut out = b"keep".to_vec();
        mapping.encode_row(&RecordContext::new(rec.view()), &mut out, &mut Vec::new()).unwrap();
        assert_eq!(out, b"keep\"a=1\"\n");
    }

    #[test]
    fn failed_row_leaves_buffer_untouched() {
        let mapping =
            Mapping::from_json(r#"[{"type":"body","name":"b"},{"type":"path","name":"p","path":"zzz"}]"#).unwrap();
        let rec = record("{}", "application/json");
        let mut out = b"previous\n".to_vec();
        assert!(mapping.encode_row(&RecordContext::new(rec.view()), &mut out, &mut Vec::new()).is_err());
        assert_eq!(out, b"previous\n");
    }

    #[test]
    fn every_column_type_compiles() {
        for column_type in COLUMN_TYPES {
            let extra = match column_type {
                "path" => r#","path":"a""#,
                "template" => r#","template":{"language":"jsonnet","content":"Ip()"}"#,
                _ => "",
            };
            let json = format!(r#"[{{"type":"{column_type}","name":"c"{extra}}}]"#);
            let mapping = Mapping::from_json(&json).unwrap_or_else(|e| panic!("{column_type}: {e}"));
            let canonical = if column_type == "id" { "uuid" } else { column_type };
            assert_eq!(mapping.columns()[0].type_name(), canonical);
        }
    }

    #[test]
    fn what_a_mapping_reads() {
        let reads = |columns: &str| {
            let mapping = Mapping::from_json(columns).unwrap();
            (mapping.needs_parsed_body(), mapping.needs_headers())
        };
        let statics = r#"[{"type":"id","name":"a"},{"type":"datetime","name":"b"},{"type":"ip","name":"c"},{"type":"body","name":"d"}]"#;
        assert_eq!(reads(statics), (false, false));
        assert_eq!(reads(r#"[{"type":"headers","name":"h"}]"#), (false, true));
        assert_eq!(reads(r#"[{"type":"path","name":"p","path":"a"}]"#), (true, false));
        let template = r#"[{"type":"template","name":"t","template":{"language":"jsonnet","content":"Body()"}}]"#;
        assert_eq!(reads(template), (true, true));
    }

    #[test]
    fn typed_columns_write_canonical_text() {
        let cols = r#"[
            {"type":"path","name":"i","path":"i","dataType":"integer"},
            {"type":"path","name":"n","path":"n","dataType":"number"},
            {"type":"path","name":"b","path":"b","dataType":"boolean"},
            {"type":"path","name":"t","path":"t","dataType":"timestamp"},
            {"type":"path","name":"d","path":"d","dataType":"date"},
            {"type":"path","name":"j","path":"j","dataType":"json"},
            {"type":"datetime","name":"at","dataType":"timestamp"},
            {"type":"headers","name":"h","dataType":"json"},
            {"type":"template","name":"x","dataType":"number","template":{"language":"jsonnet","content":"Body('n') * 2"}}
        ]"#;
        let body = r#"{"i":"42","n":49.28,"b":"true","t":"2024-05-01T12:00:00.5+02:00","d":"2024-02-29","j":{"k":[1,"q\"s"]}}"#;
        assert_eq!(
            row(cols, body).unwrap(),
            "\"42\",\"49.28\",\"true\",\"2024-05-01T10:00:00.500000Z\",\"2024-02-29\",\"{\"\"k\"\":[1,\"\"q\\\"\"s\"\"]}\",\
             \"2023-11-14T22:13:20.123000Z\",\"{\"\"Content-Type\"\":\"\"application/json\"\"}\",\"98.56\"\n"
        );
    }

    #[test]
    fn string_columns_keep_their_bytes() {
        let untyped = r#"[{"type":"path","name":"p","path":"a"},{"type":"path","name":"r","path":"a","rawString":true},{"type":"datetime","name":"t"},{"type":"headers","name":"h"},{"type":"path","name":"z","path":"z"}]"#;
        let explicit = untyped.replace(r#""name":"#, r#""dataType":"string","nullable":false,"name":"#);
        let body = r#"{"a":"x\"y","z":null}"#;
        let expected = "\"\"\"x\\\"\"y\"\"\",\"x\"\"y\",\"2023-11-14T22:13:20.123Z\",\"{\"\"Content-Type\"\":\"\"application/json\"\"}\",\"null\"\n";
        assert_eq!(row(untyped, body).unwrap(), expected);
        assert_eq!(row(&explicit, body).unwrap(), expected);
        // A missing path of a string column is the error it always was.
        let err = row(&explicit, r#"{"a":1}"#).unwrap_err();
        assert_eq!(err.to_string(), "column \"z\": path \"z\" not found in the body");
    }

    #[test]
    fn typed_nulls_and_missing_values() {
        let cols = r#"[{"type":"path","name":"a","path":"a","dataType":"integer"},{"type":"path","name":"j","path":"j","dataType":"json","nullable":true},{"type":"template","name":"t","dataType":"json","template":{"language":"jsonnet","content":"Body('j', null)"}}]"#;
        assert_eq!(row(cols, r#"{"a":null,"j":null}"#).unwrap(), "\"\",\"\",\"\"\n");
        assert_eq!(row(cols, "{}").unwrap(), "\"\",\"\",\"\"\n");
        assert_eq!(row(cols, r#"{"a":7,"j":[null]}"#).unwrap(), "\"7\",\"[null]\",\"[null]\"\n");

        let strict = r#"[{"type":"path","name":"x","path":"x","dataType":"number","nullable":false}]"#;
        for body in [r#"{"x":null}"#, "{}"] {
            let err = row(strict, body).unwrap_err();
            assert_eq!(err.kind, MappingErrorKind::MissingValue);
            assert_eq!(err.to_string(), "column \"x\": no value, the column is not nullable");
        }
        let strict_template = r#"[{"type":"template","name":"x","dataType":"date","nullable":false,"template":{"language":"jsonnet","content":"null"}}]"#;
        assert_eq!(
            row(strict_template, "{}").unwrap_err().to_string(),
            "column \"x\": no value, the column is not nullable"
        );
    }

    #[test]
    fn typed_defaults_are_converted_once() {
        let cols = r#"[{"type":"path","name":"q","path":"q","dataType":"integer","defaultValue":"007"},{"type":"path","name":"s","path":"s","dataType":"json","defaultValue":"none"},{"type":"path","name":"t","path":"t","dataType":"timestamp","defaultValue":"2024-01-01"}]"#;
        assert_eq!(row(cols, "{}").unwrap(), "\"7\",\"\"\"none\"\"\",\"2024-01-01T00:00:00.000000Z\"\n");
        assert_eq!(row(cols, r#"{"q":1,"s":null,"t":0}"#).unwrap(), "\"1\",\"\",\"1970-01-01T00:00:00.000000Z\"\n");
        let err =
            Mapping::from_json(r#"[{"type":"path","name":"q","path":"q","dataType":"integer","defaultValue":"x"}]"#)
                .unwrap_err();
        assert_eq!(
            (err.column.as_deref(), err.message.as_str()),
            (Some("q"), "\"defaultValue\": cannot convert \"x\" to integer")
        );
    }

    #[test]
    fn unconvertible_values_fail_the_row() {
        let cols = r#"[{"type":"body","name":"b"},{"type":"path","name":"qty","path":"qty","dataType":"integer"}]"#;
        let err = row(cols, r#"{"qty":"abc"}"#).unwrap_err();
        assert_eq!(err.kind, MappingErrorKind::InvalidValue);
        assert_eq!(err.column.as_deref(), Some("qty"));
        assert_eq!(err.to_string(), "column \"qty\": cannot convert \"abc\" to integer");
        assert_eq!(
            row(cols, r#"{"qty":1.5}"#).unwrap_err().to_string(),
            "column \"qty\": cannot convert 1.5 to integer"
        );
        let long = format!(r#"{{"qty":[{}]}}"#, vec!["1"; 80].join(","));
        let message = row(cols, &long).unwrap_err().to_string();
        assert_eq!(message, format!("column \"qty\": cannot convert [{}1... to integer", "1,".repeat(49)));
        // A template's result is converted like a path's value.
        let template = r#"[{"type":"template","name":"t","dataType":"boolean","template":{"language":"jsonnet","content":"Body('v')"}}]"#;
        assert_eq!(row(template, r#"{"v":"false"}"#).unwrap(), "\"false\"\n");
        assert_eq!(row(template, r#"{"v":1}"#).unwrap_err().to_string(), "column \"t\": cannot convert 1 to boolean");
        let mapping = Mapping::from_json(cols).unwrap();
        let rec = record(r#"{"qty":"x"}"#, "application/json");
        let mut out = b"previous\n".to_vec();
        assert!(mapping.encode_row(&RecordContext::new(rec.view()), &mut out, &mut Vec::new()).is_err());
        assert_eq!(out, b"previous\n");
    }

    #[test]
    fn typed_values_of_the_test_endpoint() {
        let mapping = Mapping::from_json(
            r#"[{"type":"path","name":"n","path":"n","dataType":"number"},{"type":"path","name":"z","path":"z","dataType":"date"}]"#,
        )
        .unwrap();
        let rec = record(r#"{"n":"1e3"}"#, "application/json");
        assert_eq!(mapping.map_values(&RecordContext::new(rec.view())).unwrap(), ["1000.0", ""]);
        let columns = mapping.columns();
        assert_eq!((columns[0].data_type(), columns[0].nullable()), (DataType::Number, true));
    }

    #[test]
    fn data_types_each_column_type_takes() {
        let compiles = |column_type: &str, data_type: &str| {
            let extra = match column_type {
                "path" => r#","path":"a""#,
                "template" => r#","template":{"language":"jsonnet","content":"1"}"#,
                _ => "",
            };
            let json = format!(r#"[{{"type":"{column_type}","name":"c","dataType":"{data_type}"{extra}}}]"#);
            Mapping::from_json(&json).map(|m| m.columns()[0].data_type().as_str()).map_err(|e| e.to_string())
        };
        let mut allowed = Vec::new();
        for column_type in COLUMN_TYPES {
            for data_type in typed::DATA_TYPES {
                if let Ok(compiled) = compiles(column_type, data_type) {
                    assert_eq!(compiled, data_type);
                    allowed.push(format!("{column_type}:{data_type}"));
                }
            }
        }
        let mut expected: Vec<String> = [
            "uuid:string",
            "id:string",
            "datetime:string",
            "datetime:timestamp",
            "ip:string",
            "body:string",
            "headers:string",
            "headers:json",
        ]
        .map(String::from)
        .to_vec();
        for column_type in ["path", "template"] {
            expected.extend(typed::DATA_TYPES.map(|t| format!("{column_type}:{t}")));
        }
        assert_eq!(allowed, expected);
        assert_eq!(
            compiles("uuid", "integer").unwrap_err(),
            "dataType \"integer\" is not allowed for a column of type \"uuid\", expected string"
        );
        assert_eq!(
            compiles("datetime", "date").unwrap_err(),
            "dataType \"date\" is not allowed for a column of type \"datetime\", expected string or timestamp"
        );
    }

    #[test]
    fn invalid_typed_definitions() {
        let err = |json: &str| {
            let e = Mapping::from_json(json).unwrap_err();
            (e.column.unwrap_or_default(), e.message)
        };
        assert_eq!(
            err(r#"[{"type":"path","name":"q","path":"a","dataType":"int"}]"#),
            (
                "q".into(),
                "unknown dataType \"int\", expected one of string, integer, number, boolean, timestamp, date, json"
                    .into()
            )
        );
        assert_eq!(
            err(r#"[{"type":"path","name":"q","path":"a","dataType":"integer","rawString":true}]"#),
            ("q".into(), "\"rawString\" is not allowed for a column of dataType \"integer\"".into())
        );
        assert!(Mapping::from_json(r#"[{"type":"path","name":"q","path":"a","dataType":"string","rawString":true}]"#)
            .is_ok());
        assert!(Mapping::from_json(
            r#"[{"type":"path","name":"q","path":"a","dataType":"integer","rawString":false}]"#
        )
        .is_ok());
        assert!(err(r#"[{"type":"path","name":"q","path":"a","dataType":1}]"#)
            .1
            .starts_with("invalid column definitions"));
        assert!(err(r#"[{"type":"path","name":"q","path":"a","nullable":"no"}]"#)
            .1
            .starts_with("invalid column definitions"));
    }

    #[test]
    fn invalid_definitions() {
        let err = |json: &str| Mapping::from_json(json).unwrap_err().to_string();
        assert_eq!(err("[]"), "a mapping needs at least one column");
        assert_eq!(
            err(r#"[{"type":"foo","name":"a"}]"#),
            "unknown column type \"foo\", expected one of uuid, datetime, ip, body, headers, path, template"
        );
        assert_eq!(err(r#"[{"type":"body","name":"a"},{"type":"ip","name":"a"}]"#), "duplicate column name \"a\"");
        assert_eq!(err(r#"[{"type":"path","name":"a"}]"#), "a \"path\" column needs \"path\"");
        assert_eq!(err(r#"[{"type":"path","name":"a","path":"x..y"}]"#), "path \"x..y\": empty key at position 3");
        assert_eq!(
            err(r#"[{"type":"body","name":"a","path":"x"}]"#),
            "\"path\" is not allowed for a column of type \"body\""
        );
        assert!(err(r#"[{"name":"a"}]"#).starts_with("invalid column definitions: missing field `type`"));
    }
}
