//! The per-thread engine: one jrsonnet state and std object per thread, and
//! the prepared programs of the templates this thread has evaluated.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use jrsonnet_evaluator::error::ErrorKind;
use jrsonnet_evaluator::rustc_hash::FxHashMap;
use jrsonnet_evaluator::{Error, PreparedSnippet, Span, State};

use crate::error::{MappingError, MappingErrorKind};
use crate::record::RecordContext;

use super::globals::{self, Globals};
use super::rewrite::{first_import, rewrite, Rewritten};
use super::{budget, stack, value, Template, TIME_BUDGET};

struct Engine {
    state: State,
    globals: Globals,
    programs: FxHashMap<u64, Program>,
}

struct Program {
    prepared: Rc<Prepared>,
    template: Weak<()>,
}

struct Prepared {
    snippet: PreparedSnippet,
    rewritten: Rewritten,
}

thread_local! {
    /// Leaked on purpose: engine values must not be dropped when the thread
    /// exits, because the engine's own thread-locals (string interner, cycle
    /// collector) may already be gone by then.
    static ENGINE: &'static RefCell<Option<Engine>> = Box::leak(Box::new(RefCell::new(None)));
}

fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    ENGINE.with(|engine| {
        let mut engine = engine.borrow_mut();
        let engine = engine.get_or_insert_with(|| Engine {
            state: State::default(),
            globals: Globals::new(),
            programs: FxHashMap::default(),
        });
        f(engine)
    })
}

impl Engine {
    /// Parses and analyses `source` with the template globals in scope.
    fn prepare(&self, source: &str) -> Result<Prepared, String> {
        if let Some(offset) = first_import(source) {
            let (line, column) = position(source, offset);
            return Err(format!("error at line {line}, column {column}: imports are disabled in templates"));
        }
        let rewritten = rewrite(source);
        match self.state.prepare_snippet_with("template", rewritten.source.as_str(), &self.globals) {
            Ok(snippet) => Ok(Prepared { snippet, rewritten }),
            Err(e) => Err(describe(&e, source, &rewritten)),
        }
    }

    fn program(&mut self, template: &Template) -> Result<Rc<Prepared>, String> {
        if let Some(program) = self.programs.get(&template.id) {
            return Ok(Rc::clone(&program.prepared));
        }
        let prepared = Rc::new(self.prepare(&template.source)?);
        // Programs of dropped templates (sinks updated or deleted) go when new ones come.
        self.programs.retain(|_, p| p.template.strong_count() > 0);
        self.programs
            .insert(template.id, Program { prepared: Rc::clone(&prepared), template: Arc::downgrade(&template.alive) });
        Ok(prepared)
    }
}

/// Syntax and static checks of a template source (not cached).
pub(super) fn check(source: &str) -> Result<(), String> {
    stack::run(|| with_engine(|engine| engine.prepare(source).map(drop)))
}

/// Prepares `template` for this thread.
pub(super) fn prepare(template: &Template) -> Result<(), String> {
    stack::run(|| with_engine(|engine| engine.program(template).map(drop)))
}

pub(super) fn evaluate(template: &Template, ctx: &RecordContext<'_>, out: &mut Vec<u8>) -> Result<(), MappingError> {
    // Everything the evaluation made is dropped before `run` returns, so deep
    // values are also taken apart on the evaluation stack.
    stack::run(|| evaluate_here(template, ctx, out))
}

fn evaluate_here(template: &Template, ctx: &RecordContext<'_>, out: &mut Vec<u8>) -> Result<(), MappingError> {
    let (state, prepared) =
        with_engine(|engine| engine.program(template).map(|prepared| (engine.state.clone(), prepared)))
            .map_err(|reason| failure(MappingErrorKind::Template, reason))?;
    let binding = globals::bind(ctx);
    let budget = budget::start();
    let result = state
        .evaluate_prepared_snippet(&prepared.snippet)
        .and_then(|value| value::write_result(&value, template.raw_string, out));
    drop(budget);
    drop(binding);
    if result.is_ok() && budget::tripped() {
        // Some std functions swallow errors (`std.makeArray` falls back to lazy
        // elements when an eager call fails), so an interrupted evaluation can
        // still produce a value: it is over budget all the same.
        return Err(failure(MappingErrorKind::Template, over_budget()));
    }
    result.map_err(|error| {
        if let Some(failure) = globals::take_failure() {
            return failure;
        }
        let reason = if budget::tripped() {
            over_budget()
        } else if matches!(error.error(), ErrorKind::StackOverflow) {
            // Keboola's (go-jsonnet's) wording; the depth is MAX_STACK_DEPTH.
            "max stack frames exceeded.".to_owned()
        } else {
            describe(&error, &template.source, &prepared.rewritten)
        };
        failure(MappingErrorKind::Template, reason)
    })
}

fn over_budget() -> String {
    format!("template evaluation exceeded its time budget of {} ms", TIME_BUDGET.as_millis())
}

fn failure(kind: MappingErrorKind, reason: String) -> MappingError {
    MappingError { kind, column: None, reason }
}

/// One-line message of an engine error, with the position in the template.
fn describe(error: &Error, source: &str, rewritten: &Rewritten) -> String {
    let position = |span: &Span| position(source, rewritten.original_offset(span.1 as usize));
    match error.error() {
        ErrorKind::ImportSyntaxError { error, .. } => {
            let (line, column) = position(&error.location);
            format!("syntax error at line {line}, column {column}: {}", error.message)
        }
        ErrorKind::StaticAnalysisError(diagnostics) => {
            let first = diagnostics.first();
            let message = first.map_or("invalid template", |d| d.message.as_str());
            match first.and_then(|d| d.span.as_ref()) {
                Some(span) => {
                    let (line, column) = position(span);
                    format!("error at line {line}, column {column}: {message}")
                }
                None => message.to_owned(),
            }
        }
        ErrorKind::ImportNotSupported(..) | ErrorKind::CantImportFromVirtualFile => {
            "imports are disabled in templates".to_owned()
        }
        kind => {
            let message = kind.to_string();
            let message = message.lines().next().unwrap_or_default();
            let location = error.trace().0.iter().find_map(|element| element.location.as_ref());
            match location {
                Some(span) => {
                    let (line, column) = position(span);
                    format!("{message} (line {line}, column {column})")
                }
                None => message.to_owned(),
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
