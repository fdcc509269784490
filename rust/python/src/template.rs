use pushstream_core::template;
use pyo3::prelude::*;

/// Checks the content of a Jsonnet template column: 1 to 4096 characters, valid
/// syntax, only known variables. Returns the message to show (with line and
/// column) or `None` when the template is valid. The GIL is released while parsing.
#[pyfunction]
pub fn validate_template(py: Python<'_>, content: &str) -> Option<String> {
    let content = content.to_owned();
    py.detach(move || template::validate("jsonnet", &content).err())
}
