//! `pilot mckp solve`: solve a multiple-choice knapsack given as JSON and print one JSON line;
//! `pilot mckp generate`: write a generated benchmark instance in that JSON form.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pilot_budget::InstanceKind;
use pilot_budget::json::{parse_instance, render_solution};
use pilot_budget::owned::{Exact, Greedy, Lp, OwnedInstance};
use pilot_core::MckpSolver;
use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// Subcommands of `pilot mckp`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Solve an instance file `{"capacity": C, "weights": [[...], ...], "profits": [[...], ...]}`
    /// and print `{"value", "choice", "weight", "bound"}` (exit status 2 on a bad instance).
    Solve(SolveArgs),
    /// Print a generated instance (the benchmark suite's kinds, Pisinger 1995) as JSON, for
    /// `pilot mckp solve`.
    Generate(GenerateArgs),
}

/// The correlation of a generated instance's weights and profits.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    /// Weights and profits independent in 1..=R.
    Uncorrelated,
    /// Profit within ±10 of the weight.
    Weak,
    /// Prefix sums of items whose profit is their weight (up to 2R/n) plus 10.
    Strong,
    /// Prefix sums of items whose weight is their profit (up to 2R/n) plus 10.
    InverseStrong,
    /// Profit equals weight.
    SubsetSum,
}

impl From<Kind> for InstanceKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Uncorrelated => Self::Uncorrelated,
            Kind::Weak => Self::WeaklyCorrelated,
            Kind::Strong => Self::StronglyCorrelated,
            Kind::InverseStrong => Self::InverseStronglyCorrelated,
            Kind::SubsetSum => Self::SubsetSum,
        }
    }
}

/// Arguments of `pilot mckp generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The kind of instance.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Number of classes.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Items per class.
    #[arg(long, default_value_t = 50)]
    items: usize,
    /// Coefficient range R.
    #[arg(long, default_value_t = 100_000)]
    range: u64,
    /// Capacity: this share of the way from the lightest choice of every class to the
    /// heaviest.
    #[arg(long, default_value_t = 0.5)]
    ratio: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
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
    /// Memory budget of the exact solver (`dp`) in MB (2^20 bytes) for its state lists and
    /// records; an instance that needs more fails with a message giving the size reached.
    /// Default: no budget (as much as the instance needs).
    #[arg(long, value_name = "MB")]
    memory_mb: Option<usize>,
    /// The instance file (JSON).
    file: PathBuf,
}

/// Runs a `pilot mckp` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Solve(args) => solve(&args),
        Command::Generate(args) => generate(&args),
    }
}

fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    // Through `seed_from_u64`: `Pcg64Mcg::new` makes its state odd, so seeds 2k and 2k + 1
    // would print the same instance.
    let mut rng = Pcg64Mcg::seed_from_u64(args.seed);
    let mut instance = OwnedInstance::generate(
        args.kind.into(),
        args.classes,
        args.items,
        args.range,
        &mut rng,
    )?;
    instance.set_capacity_ratio(args.ratio)?;
    let view = instance.view()?;
    let (weights, profits): (Vec<_>, Vec<_>) = (0..view.class_count())
        .map(|c| {
            let (w, p) = view.class(c);
            // Generated profits are whole numbers: print them as integers.
            (w.to_vec(), p.iter().map(|&p| p as u64).collect::<Vec<_>>())
        })
        .unzip();
    println!(
        "{}",
        serde_json::json!({"capacity": instance.capacity, "weights": weights, "profits": profits})
    );
    Ok(ExitCode::SUCCESS)
}

fn solve(args: &SolveArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let parsed = parse_instance(&text)
        .with_context(|| format!("bad instance in {}", args.file.display()))?;
    let instance = parsed.instance.view()?;
    let mut choice = vec![0; instance.class_count()];
    let (solution, fractional) = match args.solver {
        SolverKind::Dp => {
            let mut exact = match args.memory_mb {
                Some(mb) => Exact::with_memory_budget(mb.saturating_mul(1 << 20)),
                None => Exact::new(),
            };
            let solution = exact.solve(&instance, &mut choice).map_err(|e| {
                let budget = args
                    .memory_mb
                    .map_or(String::new(), |mb| format!(" (--memory-mb {mb})"));
                anyhow::anyhow!(
                    "{e}{budget}; the solver held {:.1} MB of states and records when it stopped",
                    exact.memory_bytes() as f64 / f64::from(1 << 20)
                )
            })?;
            (solution, None)
        }
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
