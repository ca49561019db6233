//! `pilot embed` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `pilot embed`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `pilot embed`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`pilot embed` is not implemented yet")
}
