//! The one error of the filter language: what went wrong and the column
//! (1-based, in characters) where it went wrong, so the CLI, the HTTP API
//! and the web UI can all point at it.
//!
//! Invariant: `column` is between 1 and the input's length in characters
//! plus one (one past the end means "at the end of the input").

use std::fmt;

/// A filter (or a sort key or column name) that could not be parsed or
/// type-checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based character column of the offending token.
    pub column: usize,
    /// What was wrong, for a human.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> ParseError {
        ParseError { column, message: message.into() }
    }

    /// The input on one line and a caret under the column, then the
    /// message:
    ///
    /// ```text
    /// os.name = Ubuntu and
    ///           ^ os.name is text: expected a quoted string, found identifier `Ubuntu`
    /// ```
    ///
    /// Control characters (newlines, tabs) are shown as spaces so the caret
    /// stays under its character.
    pub fn render(&self, input: &str) -> String {
        Rendered { error: self, input }.to_string()
    }
}

struct Rendered<'a> {
    error: &'a ParseError,
    input: &'a str,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.input.chars() {
            write!(f, "{}", if c.is_control() { ' ' } else { c })?;
        }
        writeln!(f)?;
        write!(f, "{:>width$} {}", "^", self.error.message, width = self.error.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_caret_under_the_column() {
        let e = ParseError::new(11, "expected a quoted string");
        assert_eq!(e.render("os.name = Ubuntu"), "os.name = Ubuntu\n          ^ expected a quoted string");
        assert_eq!(ParseError::new(1, "x").render("a\tb"), "a b\n^ x");
        assert_eq!(e.to_string(), "column 11: expected a quoted string");
    }
}
