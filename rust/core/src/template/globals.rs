//! The globals of a template (`Ip()`, `Body()`, `Header()`, `Now()`, ...) and
//! the `std` object they are evaluated with.
//!
//! Globals read the record that is bound to the evaluating thread for the time
//! of one evaluation ([`bind`]); a failure that is the record's fault (a
//! missing path or header, an unparsable body) is kept as a [`MappingError`]
//! so that it reaches the caller with its kind and exact message rather than
//! as a Jsonnet runtime error.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use jrsonnet_evaluator::error::{ErrorKind, Result};
use jrsonnet_evaluator::function::builtin::Builtin;
use jrsonnet_evaluator::function::{builtin, CallLocation, FuncVal, FunctionSignature};
use jrsonnet_evaluator::rustc_hash::FxHashMap;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{IStr, InitialContextBuilder, ObjValue, ObjValueBuilder, Source, Thunk, Val};
use jrsonnet_gcmodule::{Acyclic, Cc, Trace};
use jrsonnet_stdlib::{Settings, TracePrinter};

use crate::error::{MappingError, MappingErrorKind};
use crate::path::JsonPath;
use crate::record::{canonical_header_name, RecordContext};

use super::rewrite::TICK;
use super::{strftime, value, MAX_ARRAY_LENGTH, MAX_STRING_LENGTH};

thread_local! {
    /// The record of the evaluation running on this thread (null between evaluations).
    static RECORD: Cell<*const RecordContext<'static>> = const { Cell::new(std::ptr::null()) };
    /// Changes whenever a record is bound or unbound; lazy body values remember
    /// the generation they were made in and refuse to be read in another one.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// The first record-level failure of the running evaluation.
    static FAILURE: RefCell<Option<MappingError>> = const { RefCell::new(None) };
    /// Parsed `Body(path)` arguments: templates pass literals, so a handful of
    /// paths are parsed once per thread instead of once per record.
    static PATHS: RefCell<FxHashMap<Box<str>, Rc<JsonPath>>> = RefCell::new(FxHashMap::default());
}

/// Keeps a record bound to this thread; unbinds it when dropped (also on unwinding).
pub(super) struct Binding(());

/// Binds `ctx` for the globals of the evaluation that follows.
pub(super) fn bind(ctx: &RecordContext<'_>) -> Binding {
    let ptr = (ctx as *const RecordContext<'_>).cast::<RecordContext<'static>>();
    RECORD.set(ptr);
    GENERATION.set(GENERATION.get().wrapping_add(1));
    FAILURE.with_borrow_mut(|f| *f = None);
    Binding(())
}

impl Drop for Binding {
    fn drop(&mut self) {
        RECORD.set(std::ptr::null());
        GENERATION.set(GENERATION.get().wrapping_add(1));
    }
}

/// The generation of the current binding, `None` when no record is bound.
pub(super) fn current_generation() -> Option<u64> {
    (!RECORD.get().is_null()).then(|| GENERATION.get())
}

/// Runs `f` with the bound record.
fn with_record<R>(f: impl FnOnce(&RecordContext<'_>) -> Result<R>) -> Result<R> {
    let ptr = RECORD.get();
    if ptr.is_null() {
        return Err(ErrorKind::RuntimeError("no record is bound to this template evaluation".into()).into());
    }
    // SAFETY: the pointer is set by `bind` from a live reference and cleared by
    // the `Binding` before that reference can end (the binding is dropped at
    // the end of `engine::evaluate`, which borrows the context for its whole body).
    f(unsafe { &*ptr })
}

/// Takes the record-level failure of the evaluation that just ended.
pub(super) fn take_failure() -> Option<MappingError> {
    FAILURE.with_borrow_mut(Option::take)
}

/// Remembers a record-level failure and turns it into a Jsonnet error that
/// unwinds the evaluation.
fn fail(error: MappingError) -> jrsonnet_evaluator::Error {
    let message = error.reason.clone();
    FAILURE.with_borrow_mut(|f| {
        if f.is_none() {
            *f = Some(error);
        }
    });
    ErrorKind::RuntimeError(message.into()).into()
}

/// A template exceeded one of the limits of the module.
pub(super) fn over_limit(reason: String) -> jrsonnet_evaluator::Error {
    fail(MappingError { kind: MappingErrorKind::Template, column: None, reason })
}

fn missing(reason: String) -> jrsonnet_evaluator::Error {
    fail(MappingError { kind: MappingErrorKind::MissingValue, column: None, reason })
}

fn parsed_body<'c>(ctx: &'c RecordContext<'_>) -> Result<&'c sonic_rs::Value> {
    ctx.parsed_body().map_err(fail)
}

fn json_path(text: &IStr) -> Result<Rc<JsonPath>> {
    if let Some(path) = PATHS.with_borrow(|paths| paths.get(text.as_str()).cloned()) {
        return Ok(path);
    }
    let path = Rc::new(JsonPath::parse(text).map_err(|e| ErrorKind::RuntimeError(e.into()))?);
    PATHS.with_borrow_mut(|paths| {
        if paths.len() >= 1024 {
            paths.clear();
        }
        paths.insert(text.as_str().into(), Rc::clone(&path));
    });
    Ok(path)
}

#[builtin]
fn builtin_ip() -> Result<Val> {
    with_record(|ctx| Ok(Val::string(ctx.meta().ip())))
}

#[builtin]
fn builtin_body(path: Option<IStr>, default: Option<Thunk<Val>>) -> Result<Val> {
    with_record(|ctx| {
        let body = parsed_body(ctx)?;
        let Some(path) = path else {
            return Ok(value::from_json(body));
        };
        let parsed = json_path(&path)?;
        match parsed.lookup(body) {
            Some(found) => Ok(value::from_json(found)),
            None => match default {
                Some(default) => default.evaluate(),
                None => Err(missing(format!("path \"{path}\" not found in the body"))),
            },
        }
    })
}

#[builtin]
fn builtin_body_str() -> Result<Val> {
    with_record(|ctx| Ok(Val::string(String::from_utf8_lossy(ctx.body()).as_ref())))
}

#[builtin]
fn builtin_header(name: Option<IStr>, default: Option<Thunk<Val>>) -> Result<Val> {
    with_record(|ctx| {
        let meta = ctx.meta();
        let Some(name) = name else {
            let mut object = ObjValueBuilder::with_capacity(meta.headers().len());
            for (header, value) in meta.headers() {
                object.field(header.as_str()).value(Val::string(value.as_str()));
            }
            return Ok(Val::Obj(object.build()));
        };
        match meta.header(&name) {
            Some(value) => Ok(Val::string(value)),
            None => match default {
                Some(default) => default.evaluate(),
                None => Err(missing(format!("header \"{}\" not found", canonical_header_name(&name)))),
            },
        }
    })
}

#[builtin]
fn builtin_header_str() -> Result<Val> {
    with_record(|ctx| {
        // Every line ends with a newline, the last one too (as in Keboola).
        let mut text = String::new();
        for (name, value) in ctx.meta().headers() {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push('\n');
        }
        Ok(Val::string(text))
    })
}

#[builtin]
fn builtin_now(format: Option<IStr>) -> Result<Val> {
    with_record(|ctx| {
        let meta = ctx.meta();
        Ok(match format {
            None => Val::string(meta.datetime()),
            Some(format) => Val::string(strftime::format(&format, meta.received_at_ns())),
        })
    })
}

/// Called between the `for` clauses of comprehensions (see `rewrite`).
#[builtin]
fn builtin_tick() -> Result<bool> {
    Ok(true)
}

/// `std.round` of the reference implementation: `std.floor(x + 0.5)`, so
/// halves round up (`-2.5` → `-2`).
#[builtin]
fn builtin_round(x: f64) -> f64 {
    (x + 0.5).floor()
}

/// Checks the arguments of a std function that allocates in proportion to them.
type SizeCheck = fn(&[Option<Thunk<Val>>]) -> Result<()>;

/// A std function behind a size check (see [`SizeCheck`]).
#[derive(Trace)]
struct Capped {
    inner: FuncVal,
    #[trace(skip)]
    check: SizeCheck,
}

impl Builtin for Capped {
    fn name(&self) -> &str {
        match &self.inner {
            FuncVal::Builtin(b) => b.name(),
            FuncVal::Normal(_) => "<std>",
        }
    }

    fn params(&self) -> FunctionSignature {
        self.inner.params()
    }

    fn call(&self, loc: CallLocation<'_>, args: &[Option<Thunk<Val>>]) -> Result<Val> {
        (self.check)(args)?;
        match &self.inner {
            FuncVal::Builtin(b) => b.call(loc, args),
            FuncVal::Normal(_) => unreachable!("only native std functions are capped"),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn number_arg(args: &[Option<Thunk<Val>>], index: usize) -> Result<Option<f64>> {
    match args.get(index) {
        Some(Some(thunk)) => Ok(thunk.evaluate()?.as_num()),
        _ => Ok(None),
    }
}

fn too_large(function: &str, size: f64, limit: usize) -> jrsonnet_evaluator::Error {
    over_limit(format!("std.{function}: a result of {size} elements exceeds the limit of {limit}"))
}

fn check_range(args: &[Option<Thunk<Val>>]) -> Result<()> {
    if let (Some(from), Some(to)) = (number_arg(args, 0)?, number_arg(args, 1)?) {
        let size = to - from + 1.0;
        if size > MAX_ARRAY_LENGTH as f64 {
            return Err(too_large("range", size, MAX_ARRAY_LENGTH));
        }
    }
    Ok(())
}

fn check_make_array(args: &[Option<Thunk<Val>>]) -> Result<()> {
    if let Some(size) = number_arg(args, 0)? {
        if size > MAX_ARRAY_LENGTH as f64 {
            return Err(too_large("makeArray", size, MAX_ARRAY_LENGTH));
        }
    }
    Ok(())
}

fn check_repeat(args: &[Option<Thunk<Val>>]) -> Result<()> {
    let (Some(Some(what)), Some(count)) = (args.first(), number_arg(args, 1)?) else {
        return Ok(());
    };
    match what.evaluate()? {
        Val::Str(s) => {
            let size = s.len() as f64 * count;
            if size > MAX_STRING_LENGTH as f64 {
                return Err(over_limit(format!(
                    "std.repeat: a string of {size} bytes exceeds the limit of {MAX_STRING_LENGTH}"
                )));
            }
        }
        Val::Arr(a) => {
            let size = f64::from(a.len()) * count;
            if size > MAX_ARRAY_LENGTH as f64 {
                return Err(too_large("repeat", size, MAX_ARRAY_LENGTH));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Refuses a `std.join` (or `std.lines`) whose result would exceed the string
/// or array limit before it is built: joining a million references to one
/// 16 MiB string would otherwise allocate gigabytes within the time budget.
fn check_joined(separator: Option<&Val>, items: &Val) -> Result<()> {
    let Val::Arr(items) = items else { return Ok(()) };
    let (separator_size, strings) = match separator {
        None => (1, true),
        Some(Val::Str(s)) => (s.len(), true),
        Some(Val::Arr(a)) => (a.len() as usize, false),
        Some(_) => return Ok(()),
    };
    let mut size = 0usize;
    let mut joined = 0usize;
    for item in items.iter() {
        let item_size = match item? {
            Val::Str(s) if strings => s.len(),
            Val::Arr(a) if !strings => a.len() as usize,
            _ => continue,
        };
        // `std.lines` ends every line with a newline, `std.join` separates items.
        let separated = joined > 0 || separator.is_none();
        size = size.saturating_add(item_size).saturating_add(if separated { separator_size } else { 0 });
        joined += 1;
        if strings && size > MAX_STRING_LENGTH {
            return Err(over_limit(format!(
                "std.join: a string of more than {MAX_STRING_LENGTH} bytes exceeds the limit"
            )));
        }
        if !strings && size > MAX_ARRAY_LENGTH {
            return Err(too_large("join", size as f64, MAX_ARRAY_LENGTH));
        }
    }
    Ok(())
}

fn check_join(args: &[Option<Thunk<Val>>]) -> Result<()> {
    match (args.first(), args.get(1)) {
        (Some(Some(separator)), Some(Some(items))) => check_joined(Some(&separator.evaluate()?), &items.evaluate()?),
        _ => Ok(()),
    }
}

fn check_lines(args: &[Option<Thunk<Val>>]) -> Result<()> {
    match args.first() {
        Some(Some(items)) => check_joined(None, &items.evaluate()?),
        _ => Ok(()),
    }
}

/// `std.trace` would write to the receiver's stderr once per record.
#[derive(Acyclic)]
struct SilentTrace;

impl TracePrinter for SilentTrace {
    fn print_trace(&self, _loc: CallLocation<'_>, _value: IStr) {}
}

/// The global variables of every template on one thread.
#[derive(Trace)]
pub(super) struct Globals {
    bindings: Vec<(IStr, Thunk<Val>)>,
}

impl Globals {
    pub(super) fn new() -> Globals {
        let settings = Settings {
            ext_vars: HashMap::new(),
            ext_natives: HashMap::new(),
            trace_printer: Rc::new(SilentTrace),
            path_resolver: PathResolver::FileName,
        };
        let base = jrsonnet_stdlib::stdlib_uncached(Cc::new(RefCell::new(settings)));
        let std = std_object(&base);
        let function = |f: FuncVal| Thunk::evaluated(Val::Func(f));
        let bindings = vec![
            ("std".into(), Thunk::evaluated(Val::Obj(std))),
            ("Ip".into(), function(FuncVal::builtin(builtin_ip {}))),
            ("Body".into(), function(FuncVal::builtin(builtin_body {}))),
            ("BodyStr".into(), function(FuncVal::builtin(builtin_body_str {}))),
            ("Header".into(), function(FuncVal::builtin(builtin_header {}))),
            ("HeaderStr".into(), function(FuncVal::builtin(builtin_header_str {}))),
            ("Now".into(), function(FuncVal::builtin(builtin_now {}))),
            (TICK.into(), function(FuncVal::builtin(builtin_tick {}))),
        ];
        Globals { bindings }
    }
}

fn std_object(base: &ObjValue) -> ObjValue {
    let mut std = ObjValueBuilder::new();
    std.with_super(base.clone());
    let capped: [(&str, SizeCheck); 5] = [
        ("range", check_range),
        ("makeArray", check_make_array),
        ("repeat", check_repeat),
        ("join", check_join),
        ("lines", check_lines),
    ];
    for (name, check) in capped {
        let inner = base
            .get(name.into())
            .ok()
            .flatten()
            .and_then(|v| v.as_func())
            .unwrap_or_else(|| panic!("std.{name} exists"));
        std.method(name, Capped { inner, check });
    }
    std.method("round", builtin_round {});
    std.field("thisFile").hide().value(Val::string("template"));
    std.build()
}

impl jrsonnet_evaluator::ContextInitializer for Globals {
    fn populate(&self, _for_file: Source, builder: &mut InitialContextBuilder) {
        for (name, value) in &self.bindings {
            builder.bind(name.clone(), value.clone());
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
