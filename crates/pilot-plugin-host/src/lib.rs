//! WebAssembly plugin host for PILOT router: embedders and policies as wasmtime components with
//! fuel, deadline and memory limits.
//!
//! ```text
//! PluginEngine::new(Limits)        one wasmtime Engine + the epoch timer thread
//!   └─ load_file("x.wasm")         compile once, check world and ABI version → CompiledPlugin
//!        ├─ PluginEmbedder::new    instantiate; implements pilot_core::Embedder
//!        └─ PluginPolicy::new      instantiate; implements pilot_core::Policy<f32> + Snapshot
//! ```
//!
//! Every call into a plugin gets fresh fuel and a fresh wall-clock deadline; memory is capped by
//! `StoreLimits`. A plugin that trips a limit or traps is dropped and re-instantiated; a policy
//! plugin's learned state is restored from the host's last checkpoint plus the updates since.
//! Outputs are validated like untrusted input. See `docs/plugins.md`.
//!
//! Features: `runtime` (default) is the wasmtime host itself; without it only the error type,
//! [`validate`] (what the host accepts from a plugin, as pure functions) and [`locate`] remain,
//! which is what the `testkit` feature's fuzz oracle needs.

#[cfg(feature = "runtime")]
mod bindings;
#[cfg(feature = "runtime")]
mod embedder;
#[cfg(feature = "runtime")]
mod engine;
mod error;
#[cfg(feature = "runtime")]
mod grow;
#[cfg(feature = "runtime")]
mod limits;
pub mod locate;
#[cfg(feature = "runtime")]
mod policy;
#[cfg(feature = "runtime")]
mod sandbox;
#[cfg(feature = "runtime")]
mod signature;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod text;
pub mod validate;

#[cfg(feature = "runtime")]
pub use embedder::PluginEmbedder;
#[cfg(feature = "runtime")]
pub use engine::{
    ABI_VERSION, CompiledPlugin, EMBEDDER_EXPORT, POLICY_EXPORT, PluginEngine, PluginKind,
};
pub use error::PluginError;
#[cfg(feature = "runtime")]
pub use limits::Limits;
#[cfg(feature = "runtime")]
pub use policy::PluginPolicy;
