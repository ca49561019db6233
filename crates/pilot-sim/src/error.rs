//! The simulator's error: what went wrong, in words a user can act on.

use std::path::PathBuf;

/// An error from building or running a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A core routine (a policy, a cost policy, a solver) refused its input.
    #[error("{what}: {source}")]
    Core {
        /// Where in the simulator it happened (a policy name, a step).
        what: String,
        /// The core error.
        #[source]
        source: pilot_core::Error,
    },
    /// The input data or a setting is invalid; the message names the field and the values.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Drawing a plot failed.
    #[error("plot {path}: {message}")]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What the plotting backend said.
        message: String,
    },
}

/// The simulator's result type.
pub type Result<T, E = SimError> = std::result::Result<T, E>;

impl SimError {
    /// Wraps a core error with a description of where it happened.
    pub fn core(what: impl Into<String>, source: pilot_core::Error) -> Self {
        Self::Core {
            what: what.into(),
            source,
        }
    }

    /// An invalid-input error with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

/// Adds a description to core results.
pub(crate) trait CoreContext<T> {
    /// Maps a core error into [`SimError::Core`] with `what` computed lazily.
    fn within(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> CoreContext<T> for pilot_core::Result<T> {
    fn within(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| SimError::core(what(), e))
    }
}
