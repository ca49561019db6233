//! `pilot replay` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `pilot replay`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `pilot replay`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`pilot replay` is not implemented yet")
}
