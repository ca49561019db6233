//! `pilot plugin …` (not implemented yet).

use std::process::ExitCode;

/// Subcommands of `pilot plugin`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs a `pilot plugin` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {}
}
