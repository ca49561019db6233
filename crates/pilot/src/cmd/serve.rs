//! `pilot serve` (the OpenAI-compatible routing proxy), `pilot serve export` (its stored events
//! as the JSON-lines decision log `pilot ope` reads) and `pilot upstream-replay` (a replay
//! upstream for tests): thin wrappers over the `pilot-serve` crate.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
pub use pilot_serve::cli::{ReplayArgs, ServeArgs};

/// `pilot serve --config FILE`, or one of its subcommands.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Serve {
    #[command(subcommand)]
    sub: Option<ServeCommand>,
    /// The configuration file (see pilot.example.toml).
    #[arg(long, required = true)]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum ServeCommand {
    /// Writes the stored events of a state directory as JSON lines (the decision log of
    /// `pilot ope --log`, see docs/ope.md); safe while the server runs.
    Export(ExportArgs),
}

/// Arguments of `pilot serve export`.
#[derive(clap::Args)]
struct ExportArgs {
    /// The state directory (`[state] dir` of the configuration) or its pilot.sqlite.
    #[arg(long)]
    state: PathBuf,
    /// The JSON-lines file to write.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `pilot serve` or `pilot serve export`.
///
/// # Errors
/// Config, state or bind errors; for `export`, a state that cannot be read or a file that
/// cannot be written.
pub fn run_serve(args: Serve) -> anyhow::Result<ExitCode> {
    match args.sub {
        Some(ServeCommand::Export(e)) => {
            let file = std::fs::File::create(&e.out)
                .with_context(|| format!("cannot create {}", e.out.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let n = pilot_serve::export::export(&e.state, &mut out)?;
            println!(
                "wrote {n} events of {} to {}",
                e.state.display(),
                e.out.display()
            );
        }
        None => {
            let Some(config) = args.config else {
                anyhow::bail!("pilot serve needs --config FILE");
            };
            pilot_serve::cli::serve(&ServeArgs { config })?;
        }
    }
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
