//! `pilot mckp solve`: solve a multiple-choice knapsack given as JSON and print one JSON line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pilot_budget::json::{parse_instance, render_solution};
use pilot_budget::owned::{Exact, Greedy, Lp};
use pilot_core::MckpSolver;

/// Subcommands of `pilot mckp`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Solve an instance file `{"capacity": C, "weights": [[...], ...], "profits": [[...], ...]}`
    /// and print `{"value", "choice", "weight", "bound"}` (exit status 2 on a bad instance).
    Solve(SolveArgs),
}

/// Which solver `pilot mckp solve` runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SolverKind {
    /// Exact: expanding-core dynamic programming with LP bounds.
    Dp,
    /// Greedy over the convex-hull increments (Sinha–Zoltners).
    Greedy,
    /// LP relaxation: its integer part, the bound and the fractional class.
    Lp,
}

/// Arguments of `pilot mckp solve`.
#[derive(clap::Args)]
pub struct SolveArgs {
    /// The solver.
    #[arg(long, value_enum, default_value = "dp")]
    solver: SolverKind,
    /// The instance file (JSON).
    file: PathBuf,
}

/// Runs a `pilot mckp` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Solve(args) => solve(&args),
    }
}

fn solve(args: &SolveArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let parsed = parse_instance(&text)
        .with_context(|| format!("bad instance in {}", args.file.display()))?;
    let instance = parsed.instance.view()?;
    let mut choice = vec![0; instance.class_count()];
    let (solution, fractional) = match args.solver {
        SolverKind::Dp => (Exact::new().solve(&instance, &mut choice)?, None),
        SolverKind::Greedy => (Greedy::new().solve(&instance, &mut choice)?, None),
        SolverKind::Lp => {
            let mut lp = Lp::new();
            let relaxation = lp.relax(&instance, &mut choice)?;
            (lp.solve(&instance, &mut choice)?, relaxation.fractional)
        }
    };
    println!(
        "{}",
        render_solution(
            &solution,
            &choice,
            parsed.integral_profits,
            fractional.as_ref()
        )
    );
    Ok(ExitCode::SUCCESS)
}
