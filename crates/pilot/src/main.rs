//! The `pilot` command-line tool: simulate, replay, fit priors, solve knapsacks, check plugins.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Adaptive, budget-aware LLM routing (PILOT).
#[derive(Parser)]
#[command(name = "pilot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The simulate arguments are large, but the enum is built once per run.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Replay routing data with bandit feedback and compare policies under budgets.
    Simulate(cmd::simulate::Args),
    /// Replay a full-information bandit log and write each step's chosen arm.
    Replay(cmd::replay::Args),
    /// Learn or inspect a preference prior.
    #[command(subcommand)]
    Prior(cmd::prior::Command),
    /// Multiple-choice knapsack tools.
    #[command(subcommand)]
    Mckp(cmd::mckp::Command),
    /// WebAssembly plugin tools.
    #[command(subcommand)]
    Plugin(cmd::plugin::Command),
    /// Embed the queries of a JSON-lines file into raw little-endian f32 rows.
    Embed(cmd::embed::Args),
    /// The OpenAI-compatible routing proxy (see docs/serve.md); `serve export` writes its events
    /// as a decision log.
    #[cfg(feature = "serve")]
    Serve(cmd::serve::Serve),
    /// An OpenAI-compatible replay of a routing dataset on loopback (for tests).
    #[cfg(feature = "serve")]
    UpstreamReplay(cmd::serve::ReplayArgs),
    /// Off-policy evaluation: how a target policy would have done on a router decision log.
    Ope(cmd::ope::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Prior(c) => cmd::prior::run(c),
        Command::Mckp(c) => cmd::mckp::run(c),
        Command::Plugin(c) => cmd::plugin::run(c),
        Command::Embed(args) => cmd::embed::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => cmd::serve::run_serve(args),
        #[cfg(feature = "serve")]
        Command::UpstreamReplay(args) => cmd::serve::run_replay(args),
        Command::Ope(args) => cmd::ope::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
