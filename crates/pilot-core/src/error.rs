//! Errors without an allocator: a fieldless kind, the place it happened and one small detail.

use core::fmt;

/// What went wrong, as a category a caller can match on.
///
/// New kinds may be added in minor releases, so matches need a wildcard arm.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A value was NaN or infinite.
    NonFinite,
    /// A slice or matrix had the wrong length or shape.
    DimensionMismatch,
    /// A direction was needed but the vector has (near) zero length.
    ZeroVector,
    /// A matrix that must be symmetric positive definite is not.
    NotPositiveDefinite,
    /// A pool, dataset or instance has no arms, rows or items.
    Empty,
    /// An arm index is not in the pool.
    UnknownArm,
    /// A cost was negative.
    NegativeCost,
    /// A budget or capacity was negative.
    NegativeBudget,
    /// A value lies outside its allowed range (a reward outside the configured range, say).
    OutOfRange,
    /// A hyperparameter or option is invalid; the context names it.
    InvalidParameter,
    /// A caller-provided buffer is too small.
    BufferTooSmall,
    /// A fixed-capacity container is full.
    CapacityExceeded,
    /// Bytes ended before the value they encode.
    Truncated,
    /// Bytes are not a valid encoding of the expected value.
    Corrupt,
    /// Bytes were written by an incompatible format version.
    VersionMismatch,
    /// Bytes do not match their checksum.
    ChecksumMismatch,
    /// Bytes were written for another kind of value (wrong magic number).
    WrongFormat,
    /// No choice satisfies the constraints (a knapsack with no feasible assignment).
    Infeasible,
    /// Malformed input text (a data file, a JSON instance).
    Malformed,
    /// A plugin ran out of fuel.
    PluginOutOfFuel,
    /// A plugin ran past its wall-clock deadline.
    PluginTimeout,
    /// A plugin tried to grow memory past its limit.
    PluginMemoryLimit,
    /// A plugin trapped (panic, unreachable, out-of-bounds access).
    PluginTrap,
    /// A plugin's ABI (WIT package version, world) does not match the host's.
    PluginAbi,
    /// A plugin returned output that fails validation (dimension, NaN, range).
    PluginOutput,
    /// An I/O operation failed (std crates only).
    Io,
    /// The implementation does not support this operation (a policy that cannot grow its pool,
    /// say); the context names the operation.
    Unsupported,
    /// A request id the router has no pending decision for (never routed, already expired or
    /// already answered).
    UnknownRequest,
    /// The operation was already done once for this key (a second feedback for one request,
    /// a request id routed twice); nothing changed.
    Duplicate,
    /// The budget cannot cover what is asked (a reservation or a budget cut below what is
    /// already spent and reserved).
    OverBudget,
}

impl ErrorKind {
    /// A short human description of the kind.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::NonFinite => "value is NaN or infinite",
            Self::DimensionMismatch => "dimension mismatch",
            Self::ZeroVector => "zero-length vector",
            Self::NotPositiveDefinite => "matrix is not positive definite",
            Self::Empty => "empty input",
            Self::UnknownArm => "unknown arm",
            Self::NegativeCost => "negative cost",
            Self::NegativeBudget => "negative budget",
            Self::OutOfRange => "value out of range",
            Self::InvalidParameter => "invalid parameter",
            Self::BufferTooSmall => "buffer too small",
            Self::CapacityExceeded => "capacity exceeded",
            Self::Truncated => "truncated bytes",
            Self::Corrupt => "corrupt bytes",
            Self::VersionMismatch => "format version mismatch",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::WrongFormat => "wrong format",
            Self::Infeasible => "no feasible choice",
            Self::Malformed => "malformed input",
            Self::PluginOutOfFuel => "plugin ran out of fuel",
            Self::PluginTimeout => "plugin exceeded its time limit",
            Self::PluginMemoryLimit => "plugin exceeded its memory limit",
            Self::PluginTrap => "plugin trapped",
            Self::PluginAbi => "plugin ABI mismatch",
            Self::PluginOutput => "invalid plugin output",
            Self::Io => "I/O error",
            Self::Unsupported => "operation not supported",
            Self::UnknownRequest => "unknown request",
            Self::Duplicate => "already done",
            Self::OverBudget => "over budget",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// One small, allocation-free detail that makes an error precise.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Detail {
    /// Nothing beyond the kind and the context.
    #[default]
    None,
    /// A size or version that should have been `expected` was `found`.
    Mismatch {
        /// What was required.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// Position `index` is invalid in a collection of length `len` (or was where it went wrong).
    Index {
        /// The offending position.
        index: usize,
        /// The collection's length.
        len: usize,
    },
    /// The offending value.
    Value(f64),
    /// The offending value and the allowed closed range.
    Range {
        /// The offending value.
        value: f64,
        /// Lower end of the allowed range.
        min: f64,
        /// Upper end of the allowed range.
        max: f64,
    },
}

/// An error: what kind, where (a static context such as `"LinUcb::update: context"`), and
/// one detail. `Display` writes a sentence a user can act on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Error {
    kind: ErrorKind,
    context: &'static str,
    detail: Detail,
}

/// The result type of the core crates.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// An error of `kind` that happened at `context`.
    pub const fn new(kind: ErrorKind, context: &'static str) -> Self {
        Self {
            kind,
            context,
            detail: Detail::None,
        }
    }

    /// The same error with a detail attached.
    pub const fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// A length or dimension was `found` where `expected` was required.
    pub const fn dimension(context: &'static str, expected: usize, found: usize) -> Self {
        Self::new(ErrorKind::DimensionMismatch, context)
            .with_detail(Detail::Mismatch { expected, found })
    }

    /// A value was NaN or infinite.
    pub fn non_finite(context: &'static str, value: f64) -> Self {
        Self::new(ErrorKind::NonFinite, context).with_detail(Detail::Value(value))
    }

    /// An arm index outside a pool of `len` arms.
    pub const fn unknown_arm(context: &'static str, index: usize, len: usize) -> Self {
        Self::new(ErrorKind::UnknownArm, context).with_detail(Detail::Index { index, len })
    }

    /// A hyperparameter or option named by `context` is invalid.
    pub fn invalid_parameter(context: &'static str, value: f64) -> Self {
        Self::new(ErrorKind::InvalidParameter, context).with_detail(Detail::Value(value))
    }

    /// A value outside `[min, max]`.
    pub fn out_of_range(context: &'static str, value: f64, min: f64, max: f64) -> Self {
        Self::new(ErrorKind::OutOfRange, context).with_detail(Detail::Range { value, min, max })
    }

    /// The category of the error.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where it happened (a function and argument, or a field).
    pub const fn context(&self) -> &'static str {
        self.context
    }

    /// The detail, if any.
    pub const fn detail(&self) -> Detail {
        self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.kind, self.context)?;
        match self.detail {
            Detail::None => Ok(()),
            Detail::Mismatch { expected, found } => {
                write!(f, ": expected {expected}, found {found}")
            }
            Detail::Index { index, len } => write!(f, ": index {index} (length {len})"),
            Detail::Value(v) => write!(f, ": {v}"),
            Detail::Range { value, min, max } => {
                write!(f, ": {value} is outside [{min}, {max}]")
            }
        }
    }
}

impl core::error::Error for Error {}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind, "unspecified")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn display_says_what_and_where() {
        let e = Error::dimension("LinUcb::update: context", 16, 15);
        assert_eq!(
            e.to_string(),
            "dimension mismatch in LinUcb::update: context: expected 16, found 15"
        );
        let e = Error::out_of_range("reward", 2.0, 0.0, 1.0);
        assert_eq!(
            e.to_string(),
            "value out of range in reward: 2 is outside [0, 1]"
        );
        assert_eq!(e.kind(), ErrorKind::OutOfRange);
    }
}
