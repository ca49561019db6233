//! `pilot mckp …` (not implemented yet).

use std::process::ExitCode;

/// Subcommands of `pilot mckp`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs a `pilot mckp` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {}
}
