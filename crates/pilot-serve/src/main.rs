//! The `pilot-serve` binary: `serve`, `upstream-replay` and `load` (the load/fault figures),
//! the same as `pilot serve` / `pilot upstream-replay`, without the rest of the `pilot` tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// PILOT routing proxy.
#[derive(Parser)]
#[command(name = "pilot-serve", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The OpenAI-compatible routing proxy.
    Serve(pilot_serve::cli::ServeArgs),
    /// An OpenAI-compatible replay of a routing dataset on loopback.
    UpstreamReplay(pilot_serve::cli::ReplayArgs),
    /// Load and fault figures against a replay (bounded, loopback).
    Load(pilot_serve::load::LoadArgs),
    /// Checks a state directory: its snapshot + tail equals the replay of every event.
    CheckState(pilot_serve::cli::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve(a) => pilot_serve::cli::serve(&a),
        Command::UpstreamReplay(a) => pilot_serve::cli::replay(&a),
        Command::Load(a) => pilot_serve::load::run(&a),
        Command::CheckState(a) => pilot_serve::Config::load(&a.config)
            .map_err(anyhow::Error::from)
            .and_then(|c| pilot_serve::engine::check_replay(&c))
            .map(|n| println!("state ok: snapshot + tail = replay of all {n} events")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
