//! `pilot replay`: replay a full-information bandit log with one policy and write the arm it
//! chooses at each step (`t,arm`), so another tool's decisions compare line by line.
//!
//! The policy sees only the reward of the arm it chose (bandit feedback); the log's other
//! rewards and its costs are not used (no budget).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use pilot_core::{ArmId, ArmScore, Reward};
use pilot_data::BanditLog;
use pilot_router::RoutingPolicy;
use pilot_sim::hyper::{Family, Hyper};
use pilot_sim::lineup;
use rand_core::SeedableRng;

/// Arguments of `pilot replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The full-information bandit log (JSON lines: header, then one step per line).
    #[arg(long)]
    log: PathBuf,
    /// The policy: linucb, pilot, lints, egreedy or random.
    #[arg(long)]
    policy: String,
    /// Exploration weight α (LinUCB, PILOT), posterior scale (LinTS) or ε (ε-greedy).
    #[arg(long)]
    alpha: Option<f32>,
    /// Ridge weight λ.
    #[arg(long, default_value_t = 1.0)]
    lambda: f32,
    /// Seed of the policy's random draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// PILOT's prior: a JSON object mapping each arm name to a vector of dimension d.
    #[arg(long)]
    prior_vectors: Option<PathBuf>,
    /// Where to write `t,arm` per step.
    #[arg(long)]
    decisions: PathBuf,
}

/// Runs `pilot replay`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let log = BanditLog::load(&args.log)?;
    let (k, d) = (log.header.k, log.header.d);
    let mut policy = policy(&args, &log)?;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(args.seed);
    let mut scores = vec![ArmScore::<f32>::default(); k];
    let mut context = vec![0.0f32; d];
    let mut out = String::from("t,arm\n");
    let mut total = 0.0f64;
    for (t, step) in log.steps.iter().enumerate() {
        for (c, &x) in context.iter_mut().zip(&step.x) {
            *c = x as f32;
        }
        let arm = policy
            .select(&context, &mut rng, &mut scores)
            .map_err(|e| anyhow::anyhow!("{}: step {t}: select: {e}", args.log.display()))?;
        let r = step.r.get(arm.index()).copied().unwrap_or(f64::NAN);
        let reward = Reward::new(r as f32)
            .map_err(|e| anyhow::anyhow!("{}: step {t}: reward: {e}", args.log.display()))?;
        policy
            .update(ArmId::new(arm.index()), &context, reward)
            .map_err(|e| anyhow::anyhow!("{}: step {t}: update: {e}", args.log.display()))?;
        total += r;
        out.push_str(&format!("{t},{}\n", arm.index()));
    }
    let mut file = std::fs::File::create(&args.decisions)
        .with_context(|| format!("creating {}", args.decisions.display()))?;
    file.write_all(out.as_bytes())
        .with_context(|| format!("writing {}", args.decisions.display()))?;
    println!(
        "{} steps, mean reward {:.4}; decisions written to {}",
        log.steps.len(),
        total / log.steps.len().max(1) as f64,
        args.decisions.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The policy, from the simulator's line-up ([`pilot_sim::lineup::make_policy`]), so a name
/// means the same policy in `pilot replay` as in `pilot simulate`.
fn policy(args: &Args, log: &BanditLog) -> anyhow::Result<Box<dyn RoutingPolicy>> {
    let (k, d) = (log.header.k, log.header.d);
    let family = match Family::parse(&args.policy) {
        Some(
            f @ (Family::LinUcb
            | Family::Pilot
            | Family::LinTs
            | Family::EpsilonGreedy
            | Family::Random),
        ) => f,
        _ => bail!(
            "--policy {}: expected linucb, pilot, lints, egreedy or random",
            args.policy
        ),
    };
    let mut h = Hyper {
        lambda: args.lambda,
        ..Hyper::UNTUNED
    };
    match family {
        Family::LinTs => h.ts_scale = args.alpha.unwrap_or(1.0),
        Family::EpsilonGreedy => h.epsilon = args.alpha.unwrap_or(0.1),
        _ => h.alpha = args.alpha.unwrap_or(1.0),
    }
    h.check(&args.policy)
        .map_err(|e| anyhow::anyhow!("--alpha/--lambda: {e}"))?;
    let priors = if family == Family::Pilot {
        let Some(path) = &args.prior_vectors else {
            bail!("--policy pilot needs --prior-vectors FILE (arm name → vector of dimension {d})");
        };
        // An arm missing from the file starts at zero (A = λI, b = 0: as if it had no prior).
        let vectors = read_prior_vectors(path, &log.header.arms, d)?;
        Some(
            vectors
                .into_iter()
                .map(|v| v.unwrap_or_else(|| vec![0.0; d]))
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    lineup::make_policy(family, &h, k, d, priors.as_deref())
        .map_err(|e| anyhow::anyhow!("--policy {}: {e}", args.policy))
}

/// Reads `{"arm name": [d floats], ...}`; arms missing from the file start at zero, names
/// not in the log are an error.
fn read_prior_vectors(
    path: &std::path::Path,
    arms: &[String],
    d: usize,
) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    let Some(map) = value.as_object() else {
        bail!(
            "{}: expected a JSON object of arm name → vector",
            path.display()
        );
    };
    let mut vectors = vec![None; arms.len()];
    for (name, v) in map {
        let Some(a) = arms.iter().position(|n| n == name) else {
            bail!(
                "{}: arm '{name}' is not in the log's arms ({})",
                path.display(),
                arms.join(", ")
            );
        };
        let Some(list) = v.as_array() else {
            bail!(
                "{}: arm '{name}': expected an array of {d} numbers",
                path.display()
            );
        };
        if list.len() != d {
            bail!(
                "{}: arm '{name}': expected {d} values, found {}",
                path.display(),
                list.len()
            );
        }
        let mut out = Vec::with_capacity(d);
        for (i, x) in list.iter().enumerate() {
            match x.as_f64() {
                Some(f) if f.is_finite() => out.push(f as f32),
                _ => bail!(
                    "{}: arm '{name}', value {i}: expected a finite number, found {x}",
                    path.display()
                ),
            }
        }
        vectors[a] = Some(out);
    }
    Ok(vectors)
}
