//! `pilot prior …` (not implemented yet).

use std::process::ExitCode;

/// Subcommands of `pilot prior`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs a `pilot prior` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {}
}
