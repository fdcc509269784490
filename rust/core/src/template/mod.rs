//! `template` columns: Jsonnet templates compiled once per sink and evaluated
//! per record inside the core.
//!
//! # Engine
//!
//! Two Rust implementations of Jsonnet were compared on a corpus of ~220
//! templates (std functions used in practice, string formatting, numbers,
//! unicode, objects) against the C++ reference (`jsonnet` on PyPI):
//!
//! - `jrsonnet-evaluator` and `rsjsonnet-lang` both agreed with the reference
//!   on all but 8 cases. Both print non-integral numbers converted to strings in
//!   shortest form (`"" + 0.1` is `"0.1"`, the C++ and Go implementations say
//!   `"0.10000000000000001"`); jrsonnet's `std.round` rounds half away from zero
//!   (overridden below to match the reference), rsjsonnet's `"%.0f" % 2.5` gives
//!   `2` where both references give `3`.
//! - jrsonnet was about twice as fast per evaluation (`{a: 1}`: 0.8 µs vs
//!   1.3 µs; the benchmark template: 4 µs vs 11 µs with eagerly converted
//!   bodies), and it is the only one that lets a host define globals directly
//!   (no source prelude shifting error positions), pass optional arguments
//!   lazily (`Body(path, default)` evaluates `default` only when the path is
//!   missing) and expose host data as lazy arrays and objects, so a record's
//!   parsed body reaches Jsonnet without converting what the template does not
//!   read.
//!
//! jrsonnet it is (pinned exactly: its 0.5 line is only published as pre-releases).
//!
//! # Threads
//!
//! Jsonnet values are reference counted without atomics and live in
//! thread-local heaps, so a compiled [`Template`] holds the validated source,
//! and each thread that evaluates it parses and analyses it once into a
//! thread-local cache (see `engine`). Per record only the record is bound and
//! the prepared program is run.
//!
//! # Limits
//!
//! A runaway template must fail its row, never hang or crash the receiver:
//! function calls nest at most [`MAX_STACK_DEPTH`] deep (unbounded recursion is
//! the only way to loop forever in Jsonnet); a watchdog interrupts evaluations
//! running longer than [`TIME_BUDGET`] (see `budget`); `std.range`,
//! `std.makeArray`, `std.repeat` and `+` refuse results beyond
//! [`MAX_ARRAY_LENGTH`] elements / [`MAX_STRING_LENGTH`] bytes; the result is
//! at most [`MAX_OUTPUT_BYTES`] and [`MAX_OUTPUT_DEPTH`] levels deep.

mod budget;
mod engine;
mod globals;
mod rewrite;
mod stack;
mod strftime;
mod value;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, MappingError};
use crate::record::RecordContext;

/// Maximum length of a template's source, in characters (Keboola's limit).
pub const MAX_TEMPLATE_LENGTH: usize = 4096;
/// Deepest nesting of function calls while evaluating one record (the default
/// of the C++ and Go implementations).
pub const MAX_STACK_DEPTH: usize = 500;
/// Wall-clock time one record may spend in a template. Evaluations are
/// interrupted between this and twice this time.
pub const TIME_BUDGET: Duration = Duration::from_millis(250);
/// Largest array `std.range`, `std.makeArray`, `std.repeat` and `+` may build.
pub const MAX_ARRAY_LENGTH: usize = 1_000_000;
/// Largest string `std.repeat` and `+` may build, in bytes.
pub const MAX_STRING_LENGTH: usize = 16 << 20;
/// Largest value a template may produce, in bytes of compact JSON.
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;
/// Deepest nesting of arrays and objects in a template's result.
pub const MAX_OUTPUT_DEPTH: usize = 500;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled Jsonnet template. Cheap to share between threads: each thread
/// prepares its own copy of the program on first use.
pub struct Template {
    id: u64,
    source: Arc<str>,
    raw_string: bool,
    /// Dropped with the template; thread-local caches hold a `Weak` to it and
    /// forget prepared programs of templates that are gone.
    alive: Arc<()>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").field("source", &self.source).field("raw_string", &self.raw_string).finish()
    }
}

impl Template {
    /// Checks the template (language, length, syntax, unknown variables) and
    /// prepares it for the calling thread.
    pub fn compile(column: &str, language: &str, content: &str, raw_string: bool) -> Result<Template, ConfigError> {
        check_definition(language, content).map_err(|m| ConfigError::column(column, m))?;
        let template = Template {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            source: content.into(),
            raw_string,
            alive: Arc::new(()),
        };
        engine::prepare(&template).map_err(|m| ConfigError::column(column, m))?;
        Ok(template)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Appends the value of the template for one record (compact JSON, or the
    /// bare string when `rawString` is set). On error `out` is left as it was.
    pub fn evaluate(&self, ctx: &RecordContext<'_>, out: &mut Vec<u8>) -> Result<(), MappingError> {
        let start = out.len();
        engine::evaluate(self, ctx, out).inspect_err(|_| out.truncate(start))
    }
}

/// Checks a template definition: the language, the length and that the
/// content parses and refers only to known variables. The error is the message
/// to show to the user, with line and column for syntax errors.
pub fn validate(language: &str, content: &str) -> Result<(), String> {
    check_definition(language, content)?;
    engine::check(content)
}

fn check_definition(language: &str, content: &str) -> Result<(), String> {
    if language != "jsonnet" {
        return Err(format!("unsupported template language \"{language}\", expected \"jsonnet\""));
    }
    let length = content.chars().count();
    if length == 0 || length > MAX_TEMPLATE_LENGTH {
        return Err(format!("template content must have 1 to {MAX_TEMPLATE_LENGTH} characters, found {length}"));
    }
    Ok(())
}
