//! Command-line arguments of `pilot serve` and `pilot upstream-replay` (shared by the `pilot`
//! tool and the `pilot-serve` binary).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;

use crate::replay::Faults;

/// `serve`: the routing proxy.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The configuration file (see pilot.example.toml).
    #[arg(long)]
    pub config: PathBuf,
}

/// `upstream-replay`: an OpenAI-compatible replay of a routing dataset.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The routing dataset (JSON lines with query, quality and cost_usd per LLM).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Listen address (loopback).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Probability of an injected 429/500.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Delay before each answer, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Probability of an answer without `usage`.
    #[arg(long, default_value_t = 0.0)]
    pub missing_usage_rate: f64,
    /// An LLM that always answers 503 (repeatable).
    #[arg(long)]
    pub fail_model: Vec<String>,
    /// Seed of the injected faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write a `pilot serve` config for every LLM of the replay to this file.
    #[arg(long)]
    pub write_config: Option<PathBuf>,
    /// The budget (USD) of the written config.
    #[arg(long, default_value_t = 1.0)]
    pub budget: f64,
}

/// Runs `serve`.
///
/// # Errors
/// Config, state or bind errors.
pub fn serve(args: &ServeArgs) -> Result<()> {
    crate::run_serve(&args.config)
}

/// Runs `upstream-replay`.
///
/// # Errors
/// Dataset, bind or write errors.
pub fn replay(args: &ReplayArgs) -> Result<()> {
    for (name, v) in [
        ("--error-rate", args.error_rate),
        ("--missing-usage-rate", args.missing_usage_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            anyhow::bail!("{name} must be in [0, 1], found {v}");
        }
    }
    crate::replay::run_replay(
        &args.dataset,
        args.listen,
        Faults {
            error_rate: args.error_rate,
            delay_ms: args.delay_ms,
            missing_usage_rate: args.missing_usage_rate,
            fail_models: args.fail_model.clone(),
        },
        args.seed,
        args.write_config.clone().map(|p| (p, args.budget)),
    )
}
