//! One module per subcommand; each owns its arguments and its `run`.

pub mod embed;
pub mod mckp;
pub mod ope;
pub mod plugin;
#[cfg(feature = "plugins")]
pub mod plugin_trace;
pub mod prior;
pub mod replay;
#[cfg(feature = "serve")]
pub mod serve;
pub mod simulate;
pub mod simulate_checks;
pub mod simulate_log;
pub mod simulate_minilm;
pub mod simulate_plugins;
