//! The prior's error: a category shared with the core crates and a sentence that says what was
//! wrong, where and what was expected.

use std::fmt;

use pilot_core::ErrorKind;
use pilot_data::DataError;

/// An error from fitting, loading or using a prior.
#[derive(Debug)]
pub struct PriorError {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The result type of this crate.
pub type Result<T, E = PriorError> = std::result::Result<T, E>;

impl PriorError {
    /// An error of `kind` with a message a user can act on.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A core error (dimension, NaN, zero vector...) with what was being done.
    pub fn core(what: impl fmt::Display, err: pilot_core::Error) -> Self {
        // The message already carries the core error; no `source`, so `{:#}` chains do not
        // print it twice.
        Self::new(err.kind(), format!("{what}: {err}"))
    }

    /// The category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PriorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PriorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<DataError> for PriorError {
    fn from(err: DataError) -> Self {
        Self::new(err.kind(), err.to_string())
    }
}
