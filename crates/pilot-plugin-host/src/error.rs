//! The host's detailed plugin error, and its mapping onto pilot-core's allocation-free kinds.

use std::path::PathBuf;
use std::time::Duration;

use pilot_core::{Detail, Error as CoreError, ErrorKind};

/// Everything that can go wrong when loading or calling a plugin, with the full message.
///
/// At a trait boundary (`Embedder`, `Policy`, `Snapshot`) it becomes a [`pilot_core::Error`]
/// through [`PluginError::to_core`]; the plugin wrappers keep the last detailed error, see
/// [`PluginEmbedder::last_error`](crate::PluginEmbedder::last_error).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin file could not be read.
    #[error("cannot read plugin {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why (the I/O error's message).
        message: String,
    },
    /// The bytes are not a WebAssembly component (a core module, or not wasm at all).
    #[error("{what} is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// The file name or "bytes".
        what: String,
        /// What was found instead.
        reason: String,
    },
    /// The component exports another ABI version, another world, or imports what the host lacks.
    #[error("plugin ABI mismatch: {0}")]
    Abi(String),
    /// The plugin used up its fuel (instruction budget) in one call.
    #[error("plugin ran out of fuel in `{call}` (limit {fuel} units per call)")]
    OutOfFuel {
        /// The plugin function.
        call: &'static str,
        /// The fuel limit.
        fuel: u64,
    },
    /// The plugin ran past its wall-clock deadline in one call.
    #[error("plugin exceeded its deadline of {deadline:?} in `{call}`")]
    Timeout {
        /// The plugin function.
        call: &'static str,
        /// The deadline.
        deadline: Duration,
    },
    /// The plugin tried to grow its linear memory past the cap.
    #[error(
        "plugin exceeded its memory limit of {limit} bytes in `{call}` (asked for {requested} bytes)"
    )]
    MemoryLimit {
        /// The plugin function.
        call: &'static str,
        /// The cap.
        limit: usize,
        /// The size it asked to grow to.
        requested: usize,
    },
    /// The plugin tried to grow a linear memory past the memory's own maximum, which for a
    /// wasm32 memory without a declared one is its 4 GiB address space: a stop below the
    /// configured cap.
    #[error(
        "plugin reached its memory's maximum of {maximum} bytes in `{call}` (asked for {requested} \
         bytes): {why}"
    )]
    MemoryCeiling {
        /// The plugin function.
        call: &'static str,
        /// The memory's maximum.
        maximum: usize,
        /// The size it asked to grow to.
        requested: usize,
        /// Which ceiling that is.
        why: String,
    },
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access, …).
    #[error("plugin trapped in `{call}`: {message}")]
    Trap {
        /// The plugin function.
        call: &'static str,
        /// The trap and its wasm backtrace.
        message: String,
    },
    /// The plugin returned something the host rejects (wrong dimension, NaN, out of range).
    #[error("invalid plugin output from `{call}`: {message}")]
    Output {
        /// The plugin function.
        call: &'static str,
        /// What was wrong.
        message: String,
        /// The detail carried over to the core error.
        detail: Detail,
    },
    /// The plugin reported a failure itself (bad input, bad configuration, corrupt snapshot).
    #[error("plugin rejected `{call}` ({kind}): {message}")]
    Reported {
        /// The plugin function.
        call: &'static str,
        /// The kind it reported.
        kind: ErrorKind,
        /// Its message.
        message: String,
    },
    /// The host rejected the input before calling the plugin.
    #[error("{0}")]
    Input(CoreError),
    /// A policy plugin failed for good: its checkpoints kept failing, or its journal of updates
    /// since the last good checkpoint reached its cap. Every later call returns this error.
    #[error("policy plugin {plugin} failed for good: {why}; last checkpoint error: {cause}")]
    CheckpointFailed {
        /// The plugin's name (its file name, say).
        plugin: String,
        /// Which limit was reached.
        why: String,
        /// The last checkpoint's error.
        cause: Box<PluginError>,
    },
    /// What a plugin declared or returned would make the host itself hold more than its limits
    /// allow (an embedder dimension above `max_embed_dim`, a table above
    /// `output_table_bytes`). Refused before anything is allocated.
    #[error("plugin {plugin}: {message}")]
    HostLimit {
        /// The plugin's name (its file name, say).
        plugin: String,
        /// What was asked for and the limit.
        message: String,
    },
    /// The plugin is unusable: a trap poisoned it and re-instantiating failed too.
    #[error("plugin is unusable after a failed restart: {0}")]
    Poisoned(String),
    /// The wasm engine failed outside of any plugin call (configuration, compilation).
    #[error("wasm engine: {0}")]
    Engine(String),
}

impl PluginError {
    /// The pilot-core kind this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { .. } => ErrorKind::Io,
            Self::NotAComponent { .. } => ErrorKind::WrongFormat,
            Self::Abi(_) => ErrorKind::PluginAbi,
            Self::OutOfFuel { .. } => ErrorKind::PluginOutOfFuel,
            Self::Timeout { .. } => ErrorKind::PluginTimeout,
            Self::MemoryLimit { .. } | Self::MemoryCeiling { .. } => ErrorKind::PluginMemoryLimit,
            Self::CheckpointFailed { cause, .. } => cause.kind(),
            Self::HostLimit { .. } => ErrorKind::CapacityExceeded,
            Self::Trap { .. } | Self::Poisoned(_) | Self::Engine(_) => ErrorKind::PluginTrap,
            Self::Output { .. } => ErrorKind::PluginOutput,
            Self::Reported { kind, .. } => *kind,
            Self::Input(e) => e.kind(),
        }
    }

    /// True when the error came from the sandbox tripping (fuel, deadline, memory, trap): the
    /// instance is then poisoned and must be re-instantiated.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            Self::OutOfFuel { .. }
                | Self::Timeout { .. }
                | Self::MemoryLimit { .. }
                | Self::MemoryCeiling { .. }
                | Self::Trap { .. }
        )
    }

    /// The allocation-free error for trait boundaries; `context` says which wrapper call failed.
    pub fn to_core(&self, context: &'static str) -> CoreError {
        match self {
            Self::Input(e) => *e,
            Self::Output { detail, .. } => {
                CoreError::new(self.kind(), context).with_detail(*detail)
            }
            Self::MemoryLimit {
                limit, requested, ..
            } => CoreError::new(self.kind(), context).with_detail(Detail::Mismatch {
                expected: *limit,
                found: *requested,
            }),
            Self::MemoryCeiling {
                maximum, requested, ..
            } => CoreError::new(self.kind(), context).with_detail(Detail::Mismatch {
                expected: *maximum,
                found: *requested,
            }),
            _ => CoreError::new(self.kind(), context),
        }
    }
}

impl From<CoreError> for PluginError {
    fn from(e: CoreError) -> Self {
        Self::Input(e)
    }
}
