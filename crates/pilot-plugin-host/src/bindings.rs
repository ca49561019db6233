//! Host bindings generated from `wit/plugin.wit`, one module per world.

/// The embedder world: `pilot:plugin/embedder@0.1.0`.
pub(crate) mod embedder {
    #![allow(missing_docs, clippy::all)]
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "embedder-plugin",
    });
}

/// The policy world: `pilot:plugin/policy@0.1.0`.
pub(crate) mod policy {
    #![allow(missing_docs, clippy::all)]
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "policy-plugin",
    });
}

/// Maps a plugin-reported failure onto the host error, for both worlds' copies of the type.
macro_rules! impl_failure {
    ($module:ident) => {
        impl $module::pilot::plugin::types::Failure {
            /// The host error for this failure, reported by the plugin function `call`.
            pub(crate) fn into_error(self, call: &'static str) -> crate::PluginError {
                use pilot_core::ErrorKind as E;
                use $module::pilot::plugin::types::FailureKind as K;
                let kind = match self.kind {
                    K::DimensionMismatch => E::DimensionMismatch,
                    K::NonFinite => E::NonFinite,
                    K::ZeroVector => E::ZeroVector,
                    K::NotPositiveDefinite => E::NotPositiveDefinite,
                    K::Empty => E::Empty,
                    K::UnknownArm => E::UnknownArm,
                    K::OutOfRange => E::OutOfRange,
                    K::InvalidParameter => E::InvalidParameter,
                    K::Truncated => E::Truncated,
                    K::Corrupt => E::Corrupt,
                    K::VersionMismatch => E::VersionMismatch,
                    K::ChecksumMismatch => E::ChecksumMismatch,
                    K::WrongFormat => E::WrongFormat,
                    K::Other => E::PluginOutput,
                };
                // The message is the plugin's: escaped and capped before anyone prints it.
                crate::PluginError::Reported {
                    call,
                    kind,
                    message: crate::text::sanitize(&self.message, crate::text::MAX_MESSAGE_CHARS),
                }
            }
        }
    };
}

impl_failure!(embedder);
impl_failure!(policy);
