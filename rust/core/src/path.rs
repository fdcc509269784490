//! Keboola path syntax (`a.b[0].c`) — parsed once when a mapping is compiled,
//! then applied to the parsed body of every record.

use std::fmt;

use sonic_rs::{JsonContainerTrait, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A compiled path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `a.b[0].c`: keys separated by dots, each optionally followed by
    /// `[n]` array indices. Keys may hold any character except `.`, `[` and `]`
    /// (so `user-id`, `_x`, `2024` and `název` are keys). A path may start with
    /// an index (`[0].id`) to address a top-level array.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        if text.is_empty() {
            return Err("path must not be empty".into());
        }
        let mut segments = Vec::new();
        let bytes = text.as_bytes();
        let mut pos = 0;
        // `expect_key` is true at the start and after a dot.
        let mut expect_key = true;
        while pos < bytes.len() {
            match bytes[pos] {
                b'[' => {
                    let close = text[pos..]
                        .find(']')
                        .map(|i| pos + i)
                        .ok_or_else(|| format!("path \"{text}\": unclosed \"[\" at position {}", pos + 1))?;
                    let digits = &text[pos + 1..close];
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!(
                            "path \"{text}\": index \"[{digits}]\" at position {} must be a non-negative integer",
                            pos + 1
                        ));
                    }
                    let index = digits
                        .parse::<usize>()
                        .map_err(|_| format!("path \"{text}\": index \"[{digits}]\" is too large"))?;
                    if expect_key && pos != 0 {
                        return Err(format!("path \"{text}\": empty key before \"[\" at position {}", pos + 1));
                    }
                    segments.push(Segment::Index(index));
                    expect_key = false;
                    pos = close + 1;
                    if pos < bytes.len() && !matches!(bytes[pos], b'.' | b'[') {
                        return Err(format!("path \"{text}\": expected \".\" or \"[\" at position {}", pos + 1));
                    }
                }
                b'.' => {
                    if expect_key {
                        return Err(format!("path \"{text}\": empty key at position {}", pos + 1));
                    }
                    expect_key = true;
                    pos += 1;
                    if pos == bytes.len() {
                        return Err(format!("path \"{text}\": must not end with \".\""));
                    }
                }
                b']' => return Err(format!("path \"{text}\": unexpected \"]\" at position {}", pos + 1)),
                _ => {
                    if !expect_key {
                        return Err(format!("path \"{text}\": expected \".\" or \"[\" at position {}", pos + 1));
                    }
                    let end = text[pos..].find(['.', '[', ']']).map_or(bytes.len(), |i| pos + i);
                    segments.push(Segment::Key(text[pos..end].to_owned()));
                    expect_key = false;
                    pos = end;
                }
            }
        }
        Ok(JsonPath { text: text.to_owned(), segments })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value at this path, or `None` when any step is missing or of the
    /// wrong kind. A duplicated object key resolves to its last occurrence,
    /// as in JavaScript, Python and Go.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut current = root;
        for segment in &self.segments {
            current = match segment {
                Segment::Key(key) => last_member(current, key)?,
                Segment::Index(index) => current.as_array()?.get(*index)?,
            };
        }
        Some(current)
    }
}

pub(crate) fn last_member<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    let mut found = None;
    for (k, v) in object.iter() {
        if k == key {
            found = Some(v);
        }
    }
    found
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: &str) -> Vec<Segment> {
        JsonPath::parse(path).unwrap().segments
    }

    #[test]
    fn parses_keys_and_indices() {
        use Segment::*;
        assert_eq!(keys("a"), vec![Key("a".into())]);
        assert_eq!(keys("a.b[0].c"), vec![Key("a".into()), Key("b".into()), Index(0), Key("c".into())]);
        assert_eq!(keys("user-id._x.2024"), vec![Key("user-id".into()), Key("_x".into()), Key("2024".into())]);
        assert_eq!(keys("m[1][22]"), vec![Key("m".into()), Index(1), Index(22)]);
        assert_eq!(keys("[3].id"), vec![Index(3), Key("id".into())]);
        assert_eq!(keys("název.kůň"), vec![Key("název".into()), Key("kůň".into())]);
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in ["", ".", "a.", ".a", "a..b", "a[", "a[]", "a[x]", "a[-1]", "a]", "a[0]b", "a.[0]", "a[0]]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(JsonPath::parse("a..b").unwrap_err(), "path \"a..b\": empty key at position 3");
    }

    #[test]
    fn looks_up_values() {
        let doc: Value = sonic_rs::from_str(r#"{"a":{"b":[{"c":1},{"c":"x"}]},"k":1,"k":2}"#).unwrap();
        let get = |p: &str| JsonPath::parse(p).unwrap().lookup(&doc).map(|v| v.to_string());
        assert_eq!(get("a.b[1].c").as_deref(), Some("\"x\""));
        assert_eq!(get("a.b[0]").as_deref(), Some("{\"c\":1}"));
        assert_eq!(get("a.b[2]"), None);
        assert_eq!(get("a.c"), None);
        assert_eq!(get("a.b.c"), None);
        assert_eq!(get("k").as_deref(), Some("2"));
    }
}
