//! `template` columns (Jsonnet). Compiled once per sink, evaluated per record.
//!
//! The evaluator is not wired in yet: compiling a template column fails with a
//! clear "not supported yet" error, so a sink that uses one is rejected up front
//! instead of failing on every record.

use crate::error::{ConfigError, MappingError};
use crate::record::RecordContext;

/// Maximum length of a template's source, in characters (Keboola's limit).
pub const MAX_TEMPLATE_LENGTH: usize = 4096;

/// A compiled Jsonnet template.
#[derive(Debug)]
pub struct Template {
    raw_string: bool,
}

impl Template {
    pub fn compile(column: &str, language: &str, content: &str, raw_string: bool) -> Result<Template, ConfigError> {
        validate(language, content).map_err(|message| ConfigError::column(column, message))?;
        let _ = raw_string;
        Err(ConfigError::column(column, "template columns are not supported yet"))
    }

    /// Appends the value of the template for one record (compact JSON, or the
    /// bare string when `rawString` is set).
    pub fn evaluate(&self, _ctx: &RecordContext<'_>, _out: &mut Vec<u8>) -> Result<(), MappingError> {
        let _ = self.raw_string;
        unreachable!("templates cannot be compiled yet")
    }
}

/// Checks a template definition without compiling a column from it.
pub fn validate(language: &str, content: &str) -> Result<(), String> {
    if language != "jsonnet" {
        return Err(format!("unsupported template language \"{language}\", expected \"jsonnet\""));
    }
    let length = content.chars().count();
    if length == 0 || length > MAX_TEMPLATE_LENGTH {
        return Err(format!("template content must have 1 to {MAX_TEMPLATE_LENGTH} characters, found {length}"));
    }
    Ok(())
}
