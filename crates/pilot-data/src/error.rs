//! The loaders' error: which file, which line, which field, what was expected and what was found.

use std::fmt;
use std::path::{Path, PathBuf};

use pilot_core::ErrorKind;

/// A data-file error precise enough to fix the file by hand.
///
/// `Display` writes `FILE:LINE: field `F`: MESSAGE`, leaving out the parts that do not apply
/// (a size error has no line, a JSON syntax error may have no field).
#[derive(Debug)]
pub struct DataError {
    kind: ErrorKind,
    path: PathBuf,
    line: Option<usize>,
    field: Option<String>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The result type of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// An error of `kind` in the file at `path`, with a message saying what is wrong.
    pub fn new(kind: ErrorKind, path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.as_ref().to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: impl AsRef<Path>, err: std::io::Error) -> Self {
        // The message carries the I/O error; it is not also the `source`, so `{:#}` chains
        // (anyhow) do not print it twice.
        Self::new(
            ErrorKind::Io,
            path,
            format!("cannot read or write the file: {err}"),
        )
    }

    /// The same error located at a 1-based line.
    #[must_use]
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// The same error located at a field (`quality["gpt-4"]`, `x[3]`, ...).
    #[must_use]
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The category, shared with the core crates' errors.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file the error is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line, when the error is on one line.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The field, when the error is in one field.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What was wrong, with the expected and the found value where there are some.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Describes a JSON value briefly for "expected X, found Y" messages.
pub(crate) fn describe_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_string(),
        serde_json::Value::Bool(b) => format!("boolean {b}"),
        serde_json::Value::Number(n) => format!("number {n}"),
        serde_json::Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            if short.len() < s.len() {
                format!("string \"{short}…\"")
            } else {
                format!("string \"{short}\"")
            }
        }
        serde_json::Value::Array(a) => format!("an array of {} values", a.len()),
        serde_json::Value::Object(o) => format!("an object with {} keys", o.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_field_and_message() {
        let e = DataError::new(
            ErrorKind::OutOfRange,
            "data.jsonl",
            "expected [0, 1], found 2",
        )
        .at_line(7)
        .in_field("quality[\"a\"]");
        assert_eq!(
            e.to_string(),
            "data.jsonl:7: field `quality[\"a\"]`: expected [0, 1], found 2"
        );
        assert_eq!(e.kind(), ErrorKind::OutOfRange);
        assert_eq!(e.line(), Some(7));
    }
}
