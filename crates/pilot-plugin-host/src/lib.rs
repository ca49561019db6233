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

mod bindings;
mod embedder;
mod engine;
mod error;
mod limits;
pub mod locate;
mod policy;
mod sandbox;

pub use embedder::PluginEmbedder;
pub use engine::{
    ABI_VERSION, CompiledPlugin, EMBEDDER_EXPORT, POLICY_EXPORT, PluginEngine, PluginKind,
};
pub use error::PluginError;
pub use limits::Limits;
pub use policy::PluginPolicy;
