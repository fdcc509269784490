use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::error::MappingErrorKind;
use crate::limits::on_small_stack;
use crate::mapping::Mapping;
use crate::record::{Record, RecordMeta};

/// 2023-11-14T22:13:20.123Z
const RECEIVED_AT_NS: i64 = 1_700_000_000_123_456_789;

fn record(body: &str) -> Record {
    let meta = RecordMeta::new(
        vec![
            ("content-type".into(), "application/json".into()),
            ("x-foo".into(), "bar".into()),
            ("X-Multi".into(), "1".into()),
            ("x-multi".into(), "2".into()),
        ],
        "10.0.0.1".into(),
        RECEIVED_AT_NS,
    );
    Record::new(Arc::new(meta), body.as_bytes().to_vec())
}

fn eval_raw(content: &str, raw_string: bool, body: &str) -> Result<String, MappingError> {
    let template = Template::compile("t", "jsonnet", content, raw_string).unwrap();
    let record = record(body);
    let ctx = RecordContext::new(record.view());
    let mut out = Vec::new();
    template.evaluate(&ctx, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

fn eval(content: &str, body: &str) -> Result<String, MappingError> {
    eval_raw(content, false, body)
}

fn ok(content: &str, body: &str) -> String {
    eval(content, body).unwrap_or_else(|e| panic!("{content}: {e}"))
}

const BODY: &str =
    r#"{"user":{"name":"Alice","id":7,"tags":["a","b"]},"items":[{"q":1},{"q":2.5}],"n":null,"dup":1,"dup":2}"#;

#[test]
fn globals() {
    assert_eq!(ok("Ip()", BODY), r#""10.0.0.1""#);
    assert_eq!(ok("Body()", "[1, 2.5]"), "[1,2.5]");
    assert_eq!(ok(r#"Body("user.name")"#, BODY), r#""Alice""#);
    assert_eq!(ok(r#"Body("items[1].q")"#, BODY), "2.5");
    assert_eq!(ok(r#"Body("n")"#, BODY), "null");
    assert_eq!(ok(r#"Body("dup")"#, BODY), "2");
    assert_eq!(ok(r#"Body("missing", "dflt")"#, BODY), r#""dflt""#);
    assert_eq!(ok(r#"Body("missing", default={a: 1})"#, BODY), r#"{"a":1}"#);
    // The default is evaluated only when the path is missing.
    assert_eq!(ok(r#"Body("user.id", error "unused")"#, BODY), "7");
    assert_eq!(ok("BodyStr()", r#"{"a": 1}"#), r#""{\"a\": 1}""#);
    assert_eq!(ok("Header()", BODY), r#"{"Content-Type":"application/json","X-Foo":"bar","X-Multi":"1, 2"}"#);
    assert_eq!(ok(r#"Header("X-FOO")"#, BODY), r#""bar""#);
    assert_eq!(ok(r#"Header("x-multi")"#, BODY), r#""1, 2""#);
    assert_eq!(ok(r#"Header("X-Missing", 42)"#, BODY), "42");
    assert_eq!(ok("HeaderStr()", BODY), r#""Content-Type: application/json\nX-Foo: bar\nX-Multi: 1, 2\n""#);
    assert_eq!(ok("Now()", BODY), r#""2023-11-14T22:13:20.123Z""#);
    assert_eq!(ok(r#"Now("%Y/%m/%d %H:%M:%S.%f %a %b %j %%")"#, BODY), r#""2023/11/14 22:13:20.123 Tue Nov 318 %""#);
}

/// Evaluates `content` for a record with exactly these headers and body.
fn eval_with(content: &str, headers: &[(&str, &str)], received_at_ns: i64, body: &str) -> Result<String, MappingError> {
    let template = Template::compile("t", "jsonnet", content, false).unwrap();
    let headers = headers.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned()));
    let record = Record::new(Arc::new(RecordMeta::new(headers, "1.2.3.4".into(), received_at_ns)), body.into());
    let mut out = Vec::new();
    template.evaluate(&RecordContext::new(record.view()), &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

/// The cases of Keboola's own template tests.
#[test]
fn keboola_semantics() {
    let two = [("X-Header-1", "value1"), ("x-header-2", "value2")];
    assert_eq!(eval_with("HeaderStr()", &two, 0, "").unwrap(), r#""X-Header-1: value1\nX-Header-2: value2\n""#);
    assert_eq!(eval_with("HeaderStr()", &[], 0, "").unwrap(), r#""""#);
    assert_eq!(eval_with("Header()", &[], 0, "").unwrap(), "{}");
    assert_eq!(eval_with("BodyStr()", &[], 0, "").unwrap(), r#""""#);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(eval_with("Body()", &form, 0, "").unwrap(), "{}");
    let vendor_json = [("Content-Type", "application/vnd.api+json; charset=utf-8")];
    assert_eq!(eval_with(r#"Body("a")"#, &vendor_json, 0, r#"{"a":1}"#).unwrap(), "1");

    let e = eval_with("Body()", &[], 0, r#"{"a":1}"#).unwrap_err();
    assert_eq!(e.kind, MappingErrorKind::UnsupportedContentType);
    assert_eq!(
        e.reason,
        "cannot parse request body:\n- unsupported content type \"\", supported types: application/json and application/x-www-form-urlencoded"
    );
    let json = [("Content-Type", "application/json")];
    let e = eval_with(r#"Body("foo1.foo2")"#, &json, 0, r#"{"foo1":{}}"#).unwrap_err();
    assert_eq!(e.reason, r#"path "foo1.foo2" not found in the body"#);
    let e = eval_with(r#"Header("x-header-3")"#, &two, 0, "").unwrap_err();
    assert_eq!(e.reason, r#"header "X-Header-3" not found"#);
    assert_eq!(eval_with("local f(x) = f(x); f(1)", &[], 0, "").unwrap_err().reason, "max stack frames exceeded.");

    // 2000-01-01T01:00:00Z: the milliseconds are printed even when they are zero.
    let at = 946_688_400_000_000_000;
    assert_eq!(eval_with("Now()", &[], at, "").unwrap(), r#""2000-01-01T01:00:00.000Z""#);
    assert_eq!(eval_with("Now('%Y-%m-%d')", &[], at, "").unwrap(), r#""2000-01-01""#);
}

#[test]
fn lazy_body_values_behave_like_json() {
    assert_eq!(ok(r#"std.length(Body("items"))"#, BODY), "2");
    assert_eq!(ok("Body().user", BODY), r#"{"id":7,"name":"Alice","tags":["a","b"]}"#);
    assert_eq!(ok("std.objectFields(Body())", BODY), r#"["dup","items","n","user"]"#);
    assert_eq!(ok(r#"std.objectHas(Body().user, "id")"#, BODY), "true");
    assert_eq!(ok(r#"Body().user + {id: 8}"#, BODY), r#"{"id":8,"name":"Alice","tags":["a","b"]}"#);
    assert_eq!(ok(r#"Body().user {tags+: ["c"]}"#, BODY), r#"{"id":7,"name":"Alice","tags":["a","b","c"]}"#);
    assert_eq!(ok(r#"[i.q * 2 for i in Body("items")]"#, BODY), "[2,5]");
    assert_eq!(ok(r#"Body("user") == {name: "Alice", id: 7, tags: ["a", "b"]}"#, BODY), "true");
    assert_eq!(ok("std.manifestJsonMinified(Body().items)", BODY), r#""[{\"q\":1},{\"q\":2.5}]""#);
}

#[test]
fn output_is_compact_json() {
    assert_eq!(ok(r#"{"user": Body("user.name"), "n": std.length(Body("items"))}"#, BODY), r#"{"n":2,"user":"Alice"}"#);
    assert_eq!(ok("{b: 1, a: [true, null], c:: 3}", "{}"), r#"{"a":[true,null],"b":1}"#);
    assert_eq!(ok(r#""é\"\n\u0001""#, "{}"), "\"é\\\"\\n\\u0001\"");
    assert_eq!(
        ok("[1e20, 0.1, -0.5, 1/3, 1e-7, 42, -3]", "{}"),
        "[100000000000000000000,0.1,-0.5,0.3333333333333333,1e-7,42,-3]"
    );
    assert_eq!(ok("std.pow(2, 64)", "{}"), "18446744073709551616");
    assert_eq!(ok(r#""a" + "b""#, "{}"), r#""ab""#);
    assert_eq!(eval_raw(r#""a\"b""#, true, "{}").unwrap(), "a\"b");
    assert_eq!(eval_raw("{a: 1}", true, "{}").unwrap(), r#"{"a":1}"#);
    assert_eq!(eval_raw("std.round(-2.5)", true, "{}").unwrap(), "-2");
}

fn err(content: &str, body: &str) -> MappingError {
    match eval(content, body) {
        Ok(out) => panic!("{content} evaluated to {out}"),
        Err(e) => e,
    }
}

#[test]
fn missing_values_are_mapping_errors() {
    let e = err(r#"{a: Body("a.b")}"#, r#"{"a": {}}"#);
    assert_eq!((e.kind, e.reason.as_str()), (MappingErrorKind::MissingValue, r#"path "a.b" not found in the body"#));
    let e = err(r#"Header("x-bar")"#, BODY);
    assert_eq!((e.kind, e.reason.as_str()), (MappingErrorKind::MissingValue, r#"header "X-Bar" not found"#));
    let e = err(r#"Body("a")"#, "{not json");
    assert_eq!(e.kind, MappingErrorKind::MalformedBody);
}

#[test]
fn runtime_errors_name_the_position() {
    let e = err("{a: 1}\n+ {b: error 'boom'}", "{}");
    assert_eq!(e.kind, MappingErrorKind::Template);
    assert_eq!(e.reason, "runtime error: boom (line 2, column 7)");
    let e = err("Body().nope", "{}");
    assert!(e.reason.starts_with("no such field: nope"), "{}", e.reason);
    let e = err(r#"Body("a..b")"#, "{}");
    assert!(e.reason.contains(r#"path "a..b": empty key at position 3"#), "{}", e.reason);
    let e = err("std.length", "{}");
    assert!(e.reason == "the result contains a function, which has no JSON form", "{}", e.reason);
}

#[test]
fn invalid_templates_are_config_errors() {
    let compile = |content: &str| Template::compile("col", "jsonnet", content, false).unwrap_err();
    let e = compile("{a: }");
    assert_eq!(e.column.as_deref(), Some("col"));
    assert!(e.message.starts_with("syntax error at line 1, column 5: "), "{}", e.message);
    let e = compile("{\n  a: Bodyy()\n}");
    assert!(e.message.starts_with("error at line 2, column 6: "), "{}", e.message);
    for import in ["import 'x.libsonnet'", "{a: importstr 'x'}"] {
        let e = compile(import);
        assert!(e.message.ends_with(": imports are disabled in templates"), "{}", e.message);
    }
    assert_eq!(compile("\n  importbin 'x'").message, "error at line 2, column 3: imports are disabled in templates");
    assert!(validate("jsonnet", "'import is fine in a string'").is_ok());
    assert!(e.message.contains("Bodyy"), "{}", e.message);
    assert_eq!(validate("jsonnet", "").unwrap_err(), "template content must have 1 to 4096 characters, found 0");
    assert_eq!(
        validate("jsonnet", &"1".repeat(4097)).unwrap_err(),
        "template content must have 1 to 4096 characters, found 4097"
    );
    assert!(validate("jsonnet", &format!("1{}", " ".repeat(4095))).is_ok());
    assert_eq!(validate("go", "1").unwrap_err(), "unsupported template language \"go\", expected \"jsonnet\"");
}

#[test]
fn runaway_templates_fail_their_row() {
    let e = err("local f(x) = f(x + 1); f(0)", "{}");
    assert_eq!(e.reason, "max stack frames exceeded.");
    // Deep but bounded recursion is fine.
    assert_eq!(ok("local f(n) = if n == 0 then 0 else 1 + f(n - 1); f(400)", "{}"), "400");
    let e = err("std.length(std.range(0, 1e9))", "{}");
    assert!(e.reason.starts_with("std.range: a result of 1000000001 elements exceeds"), "{}", e.reason);
    let e = err("std.repeat('ab', 1e8)", "{}");
    assert!(e.reason.starts_with("std.repeat: a string of 200000000 bytes"), "{}", e.reason);
    let e = err("local o = {a: o}; o", "{}");
    assert!(e.reason.starts_with("the result is nested more than 500 levels deep"), "{}", e.reason);

    let started = Instant::now();
    let e = err("std.length([a + b for a in std.range(0, 1e5) for b in std.range(0, 1e5)])", "{}");
    assert_eq!(e.reason, "template evaluation exceeded its time budget of 250 ms");
    assert!(started.elapsed() < TIME_BUDGET * 2 + Duration::from_millis(500), "{:?}", started.elapsed());
    // The thread evaluates normally afterwards.
    assert_eq!(ok("local f(n) = if n == 0 then 0 else 1 + f(n - 1); f(400)", "{}"), "400");
}

#[test]
fn deep_values_built_by_a_template_do_not_overflow_the_stack() {
    // A string concatenated a million times is a tree a million levels deep,
    // which the engine flattens and drops recursively.
    let result = on_small_stack(|| {
        eval(r#"std.length(std.foldl(function(a, b) a + "xxxxxxxx", std.range(1, 1000000), ""))"#, "{}")
    });
    match result {
        Ok(length) => assert_eq!(length, "8000000"),
        Err(e) => assert_eq!(e.reason, "template evaluation exceeded its time budget of 250 ms"),
    }
    let result = on_small_stack(|| eval(r#"std.foldl(function(a, b) a + "xxxxxxxx", std.range(1, 3000), "")"#, "{}"));
    assert_eq!(result.unwrap().len(), 24_002);
    // Deep recursion of Jsonnet functions (each level is many native frames).
    let result = on_small_stack(|| eval("local f(n) = if n == 0 then 0 else 1 + f(n - 1); f(450)", "{}"));
    assert_eq!(result.unwrap(), "450");
    // A body at the nesting limit, manifested whole: the engine counts each level
    // against its depth limit and refuses; 400 levels are manifested.
    let depth = crate::limits::MAX_NESTING_DEPTH;
    let body = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let result = on_small_stack(move || eval("std.manifestJsonMinified(Body())", &body));
    assert_eq!(result.unwrap_err().reason, "max stack frames exceeded.");
    let body = format!("{}1{}", "[".repeat(400), "]".repeat(400));
    let expected = body.clone();
    let result = on_small_stack(move || eval("std.manifestJsonMinified(Body())", &body));
    assert_eq!(serde_json::from_str::<String>(&result.unwrap()).unwrap(), expected);
}

#[test]
fn loops_inside_comprehensions_keep_the_time_budget() {
    // Each element indexes a million-character string (linear in the index): no
    // function is called per element, so only the inserted check point can stop it.
    let started = Instant::now();
    let e = err(r#"local s = std.repeat("x", 1000000); std.length([s[i] for i in std.range(0, 999999)])"#, "{}");
    assert_eq!(e.reason, "template evaluation exceeded its time budget of 250 ms");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let e = err(r#"{[std.toString(i)]: std.repeat("x", i) for i in std.range(0, 999999)}"#, "{}");
    assert!(e.reason.contains("time budget") || e.reason.contains("exceeds"), "{}", e.reason);
}

#[test]
fn templates_are_evaluated_on_any_thread() {
    let mapping = Arc::new(
        Mapping::from_json(
            r#"[{"type":"template","name":"t","template":{"language":"jsonnet","content":"Body(\"user.id\") * 2"}}]"#,
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mapping = Arc::clone(&mapping);
            std::thread::spawn(move || {
                let record = record(BODY);
                let mut out = Vec::new();
                for _ in 0..100 {
                    mapping.encode_row(&RecordContext::new(record.view()), &mut out, &mut Vec::new()).unwrap();
                }
                String::from_utf8(out).unwrap()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), "\"14\"\n".repeat(100));
    }
}

#[test]
fn strftime_directives() {
    // 2024-12-30 is a Monday in ISO week 1 of 2025.
    let ns = 1_735_560_245_007_000_000; // 2024-12-30T12:04:05.007Z
    let cases = [
        ("%Y-%m-%dT%H:%M:%S.%fZ", "2024-12-30T12:04:05.007Z"),
        ("%y %C %e %k %I %l %p %P", "24 20 30 12 12 12 PM pm"),
        ("%A %a %B %b %h", "Monday Mon December Dec Dec"),
        ("%j %u %w %U %W %G %g %V", "365 1 1 52 53 2025 25 01"),
        ("%F %T %R %D %x %X", "2024-12-30 12:04:05 12:04 12/30/24 12/30/24 12:04:05"),
        ("%c|%r|%s|%z|%Z|%%|%Q|%", "Mon Dec 30 12:04:05 2024|12:04:05 PM|1735560245|+0000|UTC|%|%Q|%"),
    ];
    for (format, expected) in cases {
        assert_eq!(strftime::format(format, ns), expected, "{format}");
    }
}

/// Loops inside native `std` functions over arrays or strings that were built
/// lazily (no Jsonnet call per element) end at the budget or at a size limit.
#[test]
fn native_loops_over_lazily_built_values_keep_the_budget() {
    let doubled = |seed: &str, times: u32| format!("std.foldl(function(a, b) a + a, std.range(1, {times}), {seed})");
    let over_budget = [
        format!(r#"std.join(",", {})"#, doubled(r#"["x"]"#, 30)),
        format!(r#"std.length(std.join("", {}))"#, doubled(r#"["xxxxxxxx"]"#, 26)),
        format!("std.length(std.sort({}))", doubled("[3, 1, 2]", 29)),
        format!("std.length(std.map(std.length, {}))", doubled(r#"["x"]"#, 30)),
        format!("std.count({}, 1)", doubled("[1]", 30)),
        format!("std.length(std.manifestJson({}))", doubled(r#"["x"]"#, 30)),
        format!("std.length(std.repeat({}, 2))", doubled(r#"["x"]"#, 30)),
        r#"std.length(std.manifestJsonEx(std.makeArray(1000000, function(i) std.repeat("x", 300)), " "))"#.to_owned(),
        r#"std.length(std.join(",", std.makeArray(1000000, std.toString)) + std.repeat("x", 16777216))"#.to_owned(),
    ];
    for template in &over_budget {
        let started = Instant::now();
        let e = err(template, "{}");
        assert!(e.reason.contains("time budget") || e.reason.contains("exceeds the limit"), "{template}: {}", e.reason);
        assert!(started.elapsed() < Duration::from_secs(20), "{template}: {:?}", started.elapsed());
    }
    // A chain of 100,000 concatenations: each element access walks the chain,
    // so joining it takes billions of steps inside one native call.
    let chained = r#"std.foldl(function(a, b) a + [b], std.range(1, 100000), [])"#;
    for template in
        [format!("std.length(std.join(',', std.map(std.toString, {chained})))"), format!("std.sum({chained})")]
    {
        let started = Instant::now();
        let e = err(&template, "{}");
        assert_eq!(e.reason, "template evaluation exceeded its time budget of 250 ms", "{template}");
        assert!(started.elapsed() < Duration::from_secs(20), "{template}: {:?}", started.elapsed());
    }
    let e = err(&doubled(r#"["x"]"#, 30), "{}");
    assert!(e.reason.contains("an array of 1048576 elements exceeds the limit of 1000000"), "{}", e.reason);
    // Strings doubled by `+` stop at the string limit instead of being
    // flattened into gigabytes.
    let e = err(&format!("std.length({})", doubled(r#""xxxxxxxx""#, 30)), "{}");
    assert!(e.reason.contains("bytes exceeds the limit of 16777216"), "{}", e.reason);
    assert_eq!(ok(&format!("std.length({})", doubled(r#""xxxxxxxx""#, 21)), "{}"), "16777216");
    // Joins are refused before they allocate beyond the limits.
    let e =
        err(r#"local s = std.repeat("x", 16777216); std.length(std.join("", std.makeArray(3, function(i) s)))"#, "{}");
    assert!(e.reason.starts_with("std.join: a string of more than 16777216 bytes"), "{}", e.reason);
    let e = err(r#"local a = std.range(1, 1000000); std.length(std.join([0], [a, a]))"#, "{}");
    assert!(e.reason.starts_with("std.join: a result of 2000001 elements"), "{}", e.reason);
    let e = err(r#"std.length(std.lines([std.repeat("x", 16777216)]))"#, "{}");
    assert!(e.reason.starts_with("std.join: a string of more than"), "{}", e.reason);
    assert_eq!(
        ok(r#"[std.join(",", ["a", null, "b"]), std.join([0], [[1], [2]]), std.lines(["a", "b"])]"#, "{}"),
        r#"["a,b",[1,0,2],"a\nb\n"]"#
    );
    // std.makeArray swallows the interrupt (its eager calls fail, it falls back
    // to lazy elements): the evaluation is over budget all the same.
    let e = err(r#"std.length(std.makeArray(1000000, function(i) std.length(std.repeat("x", 1000))))"#, "{}");
    assert_eq!(e.reason, "template evaluation exceeded its time budget of 250 ms");
    // The thread evaluates normally afterwards.
    assert_eq!(ok(&format!("std.length({})", doubled(r#"["x"]"#, 10)), "{}"), "1024");
}

#[test]
fn comprehensions_of_a_bare_outer_variable() {
    // The engine read such a body from the wrong frame once a check point (an
    // `if` clause) was added: `s` came out as the check point's function.
    assert_eq!(ok(r#"local s = "x"; [s for i in [1, 2]]"#, "{}"), r#"["x","x"]"#);
    assert_eq!(ok(r#"local s = "x", u = 1; [s for i in [1, 2] if u == 1]"#, "{}"), r#"["x","x"]"#);
    assert_eq!(ok(r#"local s = "x"; std.join("", [s for i in [1, 2] for j in [1]])"#, "{}"), r#""xx""#);
    assert_eq!(ok(r#"local s = "x"; {[s + i]: s for i in ["a", "b"]}"#, "{}"), r#"{"xa":"x","xb":"x"}"#);
}
