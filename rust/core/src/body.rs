//! Request bodies: which content types are parsed, and how.

use sonic_rs::Value;

use crate::error::{MappingError, MappingErrorKind};
use crate::json;
use crate::limits::MAX_NESTING_DEPTH;

/// How a record's body is read by `path` and `template` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json` or `application/*+json` (parameters such as charset allowed).
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// Anything else: the body can be stored (`body` column) but not parsed.
    Unsupported,
}

impl BodyFormat {
    /// Classifies a `Content-Type` header value (`None` when the header is missing).
    pub fn from_content_type(content_type: Option<&str>) -> BodyFormat {
        let Some(value) = content_type else {
            return BodyFormat::Unsupported;
        };
        let media = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media == "application/json" || (media.starts_with("application/") && media.ends_with("+json")) {
            BodyFormat::Json
        } else if media == "application/x-www-form-urlencoded" {
            BodyFormat::Form
        } else {
            BodyFormat::Unsupported
        }
    }
}

/// Parses a body once; the result is shared by every sink and column.
pub fn parse_body(format: BodyFormat, content_type: Option<&str>, body: &[u8]) -> Result<Value, MappingError> {
    match format {
        BodyFormat::Json => json::parse(body).map_err(|e| MappingError::body(MappingErrorKind::MalformedBody, format!("malformed JSON body: {e}"))),
        BodyFormat::Form => parse_form(body),
        BodyFormat::Unsupported => Err(MappingError::body(
            MappingErrorKind::UnsupportedContentType,
            // Keboola's wording, a list of one cause under a heading.
            format!(
                "cannot parse request body:\n- unsupported content type \"{}\", supported types: application/json and application/x-www-form-urlencoded",
                content_type.unwrap_or("")
            ),
        )),
    }
}

/// Parses form data into a JSON object of strings, PHP/qs style:
/// `a=1` → `{"a":"1"}`, `k[]=a&k[]=b` → `{"k":["a","b"]}`, `u[name]=x` →
/// `{"u":{"name":"x"}}`. A repeated plain key keeps its last value.
pub fn parse_form(body: &[u8]) -> Result<Value, MappingError> {
    if std::str::from_utf8(body).is_err() {
        return Err(MappingError::body(MappingErrorKind::MalformedBody, "malformed form body: not valid UTF-8"));
    }
    let mut root = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(body) {
        let (base, brackets) = split_form_key(&key);
        if brackets.len() >= MAX_NESTING_DEPTH {
            return Err(MappingError::body(
                MappingErrorKind::MalformedBody,
                format!("malformed form body: key \"{base}\" is nested deeper than {MAX_NESTING_DEPTH} levels"),
            ));
        }
        insert_form_value(&mut root, base, &brackets, serde_json::Value::String(value.into_owned()));
    }
    // Built as text and parsed: sonic-rs keeps key order only in parsed documents.
    json::parse(serde_json::Value::Object(root).to_string().as_bytes())
        .map_err(|e| MappingError::body(MappingErrorKind::MalformedBody, format!("malformed form body: {e}")))
}

/// `a[b][]` → (`a`, [`b`, ``]). A key with unbalanced brackets is taken literally.
fn split_form_key(key: &str) -> (&str, Vec<&str>) {
    let Some(open) = key.find('[') else {
        return (key, Vec::new());
    };
    if open == 0 {
        return (key, Vec::new());
    }
    let mut parts = Vec::new();
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else {
            return (key, Vec::new());
        };
        parts.push(&stripped[..close]);
        rest = &stripped[close + 1..];
    }
    if !rest.is_empty() {
        return (key, Vec::new());
    }
    (&key[..open], parts)
}

/// Inserts `value` at `key` followed by `brackets` (a loop, not recursion: the
/// depth of a key is up to the client).
fn insert_form_value(
    root: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    brackets: &[&str],
    value: serde_json::Value,
) {
    let (mut target, mut key, mut brackets) = (root, key, brackets);
    loop {
        let Some((&next, rest)) = brackets.split_first() else {
            target.insert(key.to_owned(), value);
            return;
        };
        if next.is_empty() {
            let slot = target.entry(key.to_owned()).or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = serde_json::Value::Array(Vec::new());
            }
            let array = slot.as_array_mut().expect("just made an array");
            let Some((&child_key, child_rest)) = rest.split_first() else {
                array.push(value);
                return;
            };
            array.push(serde_json::Value::Object(serde_json::Map::new()));
            target = array.last_mut().and_then(serde_json::Value::as_object_mut).expect("just pushed an object");
            (key, brackets) = (child_key, child_rest);
        } else {
            let slot =
                target.entry(key.to_owned()).or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !slot.is_object() {
                *slot = serde_json::Value::Object(serde_json::Map::new());
            }
            target = slot.as_object_mut().expect("just made an object");
            (key, brackets) = (next, rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_content_types() {
        use BodyFormat::*;
        assert_eq!(BodyFormat::from_content_type(Some("application/json")), Json);
        assert_eq!(BodyFormat::from_content_type(Some("Application/JSON; charset=utf-8")), Json);
        assert_eq!(BodyFormat::from_content_type(Some("application/vnd.github+json")), Json);
        assert_eq!(BodyFormat::from_content_type(Some("application/x-www-form-urlencoded")), Form);
        assert_eq!(BodyFormat::from_content_type(Some("text/plain")), Unsupported);
        assert_eq!(BodyFormat::from_content_type(Some("application/jsonx")), Unsupported);
        assert_eq!(BodyFormat::from_content_type(None), Unsupported);
    }

    fn form(body: &str) -> String {
        let mut out = Vec::new();
        json::write_compact(&parse_form(body.as_bytes()).unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_forms() {
        assert_eq!(form("a=1&b=x+y&c=%C3%A9"), r#"{"a":"1","b":"x y","c":"é"}"#);
        assert_eq!(form("k[]=a&k[]=b"), r#"{"k":["a","b"]}"#);
        assert_eq!(form("u[name]=x&u[tags][]=1&u[tags][]=2"), r#"{"u":{"name":"x","tags":["1","2"]}}"#);
        assert_eq!(form("a=1&a=2"), r#"{"a":"2"}"#);
        assert_eq!(form("weird[=1&[x]=2"), r#"{"weird[":"1","[x]":"2"}"#);
        assert_eq!(form(""), "{}");
    }

    #[test]
    fn form_nesting_is_limited() {
        let deep = format!("a{}=1", "[b]".repeat(MAX_NESTING_DEPTH - 1));
        assert!(crate::limits::on_small_stack(move || parse_form(deep.as_bytes()).is_ok()));
        let too_deep = format!("a{}=1", "[b]".repeat(MAX_NESTING_DEPTH));
        let error = parse_form(too_deep.as_bytes()).unwrap_err();
        assert_eq!(error.reason, "malformed form body: key \"a\" is nested deeper than 1000 levels");
        let very_deep = format!("a{}=1", "[]".repeat(100_000));
        assert!(parse_form(very_deep.as_bytes()).is_err());
    }
}
