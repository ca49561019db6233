//! `pilot simulate` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `pilot simulate`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `pilot simulate`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`pilot simulate` is not implemented yet")
}
