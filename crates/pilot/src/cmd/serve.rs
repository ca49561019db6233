//! `pilot serve` (the OpenAI-compatible routing proxy) and `pilot upstream-replay` (a replay
//! upstream for tests): thin wrappers over the `pilot-serve` crate.

use std::process::ExitCode;

pub use pilot_serve::cli::{ReplayArgs, ServeArgs};

/// Runs `pilot serve`.
///
/// # Errors
/// Config, state or bind errors.
pub fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    pilot_serve::cli::serve(&args)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `pilot upstream-replay`.
///
/// # Errors
/// Dataset, bind or write errors.
pub fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    pilot_serve::cli::replay(&args)?;
    Ok(ExitCode::SUCCESS)
}
