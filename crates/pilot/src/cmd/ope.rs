//! `pilot ope`: off-policy evaluation of a target policy on a router decision log (JSON lines of
//! `pilot_router::Record`, or a `pilot serve` state read directly): one table of estimates,
//! intervals and effective sample sizes. The target is a line-up policy built by
//! `pilot_sim::lineup::make_policy` (the same constructor the simulator runs) or a policy plugin.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use pilot_core::{ArmId, Policy, Reward};
use pilot_ope::{
    Estimator, IntervalMethod, Log, Logged, OpeConfig, PolicyTarget, Report, Verdict, evaluate,
    read_log,
};
use pilot_prior::{Expect, Prior};
use pilot_router::Exploration;
use pilot_sim::hyper::{Family, FamilyParams};
use pilot_sim::lineup::make_policy;
use rand_pcg::Pcg64;
use serde_json::json;

/// Arguments of `pilot ope`.
#[derive(clap::Args)]
pub struct Args {
    /// The decision log: JSON lines of router events (`Router::drain_events` through
    /// `pilot_router::log::to_line`, `pilot simulate --log-decisions`, `pilot serve export`),
    /// or a `pilot serve` state (its directory or its pilot.sqlite), read directly.
    #[arg(long)]
    log: PathBuf,
    /// Target policy from the line-up: pilot (needs --prior), prior-only (needs --prior),
    /// linucb, random (lints and egreedy score by random draws and knn-full-info reads offline
    /// predictions: refused with the reason).
    #[arg(long, required_unless_present = "policy_plugin")]
    policy: Option<String>,
    /// Target policy from a policy plugin (a WebAssembly component, as
    /// `pilot simulate --policy-plugin` runs), evaluated on the scores its `select` returns.
    /// Needs the `plugins` feature.
    #[arg(long, conflicts_with = "policy")]
    policy_plugin: Option<PathBuf>,
    /// The plugin's configuration [default: the LinUCB plugin's keys for the log's dimension
    /// and pool at linucb's settings, or at pilot's with --prior].
    #[arg(long, requires = "policy_plugin")]
    plugin_config: Option<String>,
    /// Prior file from `pilot prior fit`: the per-LLM start vectors of pilot and prior-only
    /// (with --policy-plugin: one `prior.<arm>` key per LLM, as `--plugin-prior` in
    /// `pilot simulate`). Its map must be the one the log's contexts came from.
    #[arg(long)]
    prior: Option<PathBuf>,
    /// Estimators, comma-separated: ips, snips, dm, dr, switch-dr, replay [default: all].
    #[arg(long = "estimator", value_delimiter = ',')]
    estimators: Vec<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Exploration weight α of pilot and linucb [default: the tuned one].
    #[arg(long)]
    alpha: Option<f32>,
    /// Ridge weight λ of pilot (on its prior) and linucb [default: the tuned one].
    #[arg(long)]
    lambda: Option<f32>,
    /// The target draws ε-mix (1 − ε on its argmax, ε uniform over the candidates).
    #[arg(long, conflicts_with = "temperature")]
    epsilon: Option<f64>,
    /// The target draws softmax over its scores at this temperature.
    #[arg(long)]
    temperature: Option<f64>,
    /// The target ranks by score − weight × estimated cost (currency).
    #[arg(long, default_value_t = 0.0)]
    cost_weight: f64,
    /// Names of the log's starting pool, in arm order (the log names only LLMs added later)
    /// [default: the prior's LLM order when the counts match].
    #[arg(long, value_delimiter = ',')]
    llms: Vec<String>,
    /// The target learns from the first N logged decisions (their chosen LLM and reward), then
    /// is evaluated frozen on the rest: a snapshot instead of its start state.
    #[arg(long, default_value_t = 0)]
    warm: usize,
    /// Clip importance weights at this value (ips, snips, dr).
    #[arg(long)]
    clip: Option<f64>,
    /// Switch-DR's weight threshold τ.
    #[arg(long, default_value_t = 20.0)]
    switch_tau: f64,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    level: f64,
    /// Bootstrap intervals with this many resamples instead of the estimators' variances.
    #[arg(long)]
    bootstrap: Option<usize>,
    /// Replay's acceptance scale c in (0, 1] (accept with probability π·c/μ) [default: the
    /// smallest logged propensity, unbiased]; larger accepts more, biased toward the logging
    /// policy where π·c/μ > 1.
    #[arg(long)]
    replay_scale: Option<f64>,
    /// Seed of the bootstrap and of replay's acceptance draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `pilot ope`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut log = load_log(&args.log)?;
    let Some(first) = log.decisions.first() else {
        bail!(
            "{}: no decision with both a chosen LLM and a reward ({} decision events)",
            args.log.display(),
            log.counts.decisions
        );
    };
    let dim = first.context.len();
    let k = log.first_pool + log.added_arms.len();
    let config = config(&args)?;
    let exploration = match (args.epsilon, args.temperature) {
        (Some(epsilon), _) => Exploration::EpsilonMix { epsilon },
        (_, Some(temperature)) => Exploration::Softmax { temperature },
        _ => Exploration::Argmax,
    };
    let built = build(&args, &log, dim, k)?;
    let exploration = if built.uniform {
        Exploration::EpsilonMix { epsilon: 1.0 }
    } else {
        exploration
    };
    let mut warm = Vec::new();
    if args.warm > 0 {
        if !built.learns {
            bail!(
                "--warm: {} does not learn, so it has no snapshot to warm",
                built.name
            );
        }
        if args.warm >= log.decisions.len() {
            bail!(
                "--warm {}: the log has only {} rewarded decisions (some must be left to evaluate)",
                args.warm,
                log.decisions.len()
            );
        }
        warm = log.decisions.drain(..args.warm).collect();
    }
    // The frozen target and (for replay) a learning copy: two instances from the same start,
    // both warmed on the same decisions.
    let mut target = PolicyTarget::frozen(warmed(&built, &warm)?, exploration)?
        .with_cost_weight(args.cost_weight)?;
    let mut learner = if built.learns {
        Some(
            PolicyTarget::learning(warmed(&built, &warm)?, exploration)?
                .with_cost_weight(args.cost_weight)?,
        )
    } else {
        None
    };
    let mut rng = Pcg64::new(
        u128::from(args.seed),
        0x0a02_bdbf_7bb3_c0a7_ac28_fa16_a64a_bf96,
    );
    let mut report = evaluate(
        &log,
        &mut target,
        learner.as_mut().map(|l| l as &mut dyn pilot_ope::Target),
        &config,
        &mut rng,
    )?;
    if let Some(note) = &built.note {
        report.notes.insert(0, note.clone());
    }
    let draw = match exploration {
        Exploration::Argmax => "argmax".to_owned(),
        Exploration::EpsilonMix { epsilon } => format!("ε-mix {epsilon}"),
        Exploration::Softmax { temperature } => format!("softmax T {temperature}"),
    };
    let mut description = format!("{} ({}, {draw}", built.name, built.settings);
    if args.cost_weight > 0.0 {
        description.push_str(&format!(", cost weight {}", args.cost_weight));
    }
    if args.warm > 0 {
        description.push_str(&format!(", warmed on the first {} decisions", args.warm));
    }
    description.push(')');
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&args, &log, &description, &report))?
        );
    } else {
        print_table(&args, &log, &description, &report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The decision log at `path`: JSON lines, or a `pilot serve` state (directory or database).
fn load_log(path: &std::path::Path) -> anyhow::Result<Log> {
    if is_serve_state(path) {
        return serve_log(path);
    }
    if path.is_dir() {
        bail!(
            "{}: a directory without pilot.sqlite; --log takes a JSON-lines log or a pilot \
             serve state",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read_log(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(feature = "serve")]
fn is_serve_state(path: &std::path::Path) -> bool {
    pilot_serve::export::is_state(path)
}

#[cfg(not(feature = "serve"))]
fn is_serve_state(path: &std::path::Path) -> bool {
    path.join("pilot.sqlite").is_file()
        || std::fs::read(path).is_ok_and(|b| b.starts_with(b"SQLite format 3\0"))
}

#[cfg(feature = "serve")]
fn serve_log(path: &std::path::Path) -> anyhow::Result<Log> {
    let records = pilot_serve::export::read_events(path)?;
    pilot_ope::join(&records).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(not(feature = "serve"))]
fn serve_log(path: &std::path::Path) -> anyhow::Result<Log> {
    bail!(
        "{}: a pilot serve state, and this `pilot` was built without the `serve` feature; \
         rebuild with it (the default) or export the log with `pilot serve export`",
        path.display()
    )
}

/// A fresh instance of the target, warmed on `warm` (their chosen LLM and reward).
fn warmed(built: &Built, warm: &[Logged]) -> anyhow::Result<Box<dyn Policy<f32>>> {
    let mut policy = (built.make)()?;
    for d in warm {
        let r = Reward::new(d.reward.unwrap_or(0.0))?;
        policy
            .update(ArmId::new(d.chosen), &d.context, r)
            .with_context(|| format!("--warm: {} update", built.name))?;
    }
    Ok(policy)
}

fn config(args: &Args) -> anyhow::Result<OpeConfig> {
    let estimators = if args.estimators.is_empty() {
        Estimator::ALL.to_vec()
    } else {
        args.estimators
            .iter()
            .map(|s| {
                Estimator::parse(s.trim()).with_context(|| {
                    format!("--estimator {s}: expected ips, snips, dm, dr, switch-dr or replay")
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(OpeConfig {
        estimators,
        level: args.level,
        interval: match args.bootstrap {
            Some(resamples) => IntervalMethod::Bootstrap { resamples },
            None => IntervalMethod::Variance,
        },
        clip: args.clip,
        switch_tau: args.switch_tau,
        replay_scale: args.replay_scale,
        ..OpeConfig::default()
    })
}

/// Makes a fresh instance of the target policy.
type Make = Box<dyn Fn() -> anyhow::Result<Box<dyn Policy<f32>>>>;

/// The target: how to make it, its name and settings in words, whether it learns (for replay
/// and --warm), whether it draws uniformly, and a note on how its propensities are formed.
struct Built {
    make: Make,
    name: String,
    settings: String,
    learns: bool,
    uniform: bool,
    note: Option<String>,
}

/// The target's policy: a line-up family through `lineup::make_policy`, or a plugin.
fn build(args: &Args, log: &Log, dim: usize, k: usize) -> anyhow::Result<Built> {
    let tuned = FamilyParams::tuned();
    if let Some(path) = &args.policy_plugin {
        return build_plugin(args, path, log, dim, k, &tuned);
    }
    let name = args.policy.clone().unwrap_or_default();
    let Some(family) = Family::parse(&name) else {
        bail!(
            "--policy {name}: expected pilot, prior-only, linucb or random (or \
             --policy-plugin FILE)"
        );
    };
    let mut hyper = tuned.get(&name);
    if let Some(alpha) = args.alpha {
        hyper.alpha = alpha;
    }
    if let Some(lambda) = args.lambda {
        hyper.lambda = lambda;
    }
    let (learns, settings, uniform) = match family {
        Family::Pilot | Family::LinUcb => (
            true,
            format!("α {}, λ {}", hyper.alpha, hyper.lambda),
            false,
        ),
        Family::PriorOnly => (false, "its prior's mean".to_owned(), false),
        Family::EpsilonGreedy => (true, format!("λ {}", hyper.lambda), false),
        Family::LinTs => (
            true,
            format!("scale {}, λ {}", hyper.ts_scale, hyper.lambda),
            false,
        ),
        // Its scores are random draws; its probabilities are uniform over the candidates.
        Family::Random => (false, "uniform over the candidates".to_owned(), true),
        Family::KnnFullInfo => bail!(
            "--policy knn-full-info: it reads per-LLM predictions made offline from full \
             information, not the logged contexts, so it cannot be evaluated on a decision log"
        ),
    };
    let priors = match family {
        Family::Pilot | Family::PriorOnly => {
            let Some(path) = &args.prior else {
                bail!("--policy {name} needs --prior FILE (from `pilot prior fit`)");
            };
            Some(prior_vectors(args, log, &load_prior(path, log, dim)?, k)?)
        }
        _ => None,
    };
    // Random's scores are drawn from its RNG; the draw is ε-mix 1 over any policy's scores.
    let (family, hyper) = if uniform {
        (Family::LinUcb, hyper)
    } else {
        (family, hyper)
    };
    let make: Make = Box::new(move || {
        let p: Box<dyn Policy<f32>> = make_policy(family, &hyper, k, dim, priors.as_deref())
            .map_err(|e| anyhow::anyhow!("--policy {}: {e}", family.name()))?;
        Ok(p)
    });
    Ok(Built {
        make,
        name,
        settings,
        learns,
        uniform,
        note: None,
    })
}

/// The prior at `path`, checked against the log's embedder and context dimension.
fn load_prior(path: &std::path::Path, log: &Log, dim: usize) -> anyhow::Result<Prior> {
    let embedder = log
        .versions
        .last()
        .map(|v| v.embedder.as_str())
        .filter(|e| !e.is_empty());
    let prior = Prior::load(
        path,
        Expect {
            embedder_id: embedder,
            d_in: None,
        },
    )?;
    if prior.context_dim() != dim {
        bail!(
            "{}: the prior's contexts have dimension {} but the log's have {dim}: the log was \
             made with another prior or projection, and the log holds contexts, not the base \
             vectors another map would need",
            path.display(),
            prior.context_dim()
        );
    }
    Ok(prior)
}

/// A policy plugin as the target: its configuration (by default the LinUCB plugin's keys, with
/// the prior's vectors when --prior is given), one instance made up front to check its shape.
fn build_plugin(
    args: &Args,
    path: &std::path::Path,
    log: &Log,
    dim: usize,
    k: usize,
    tuned: &FamilyParams,
) -> anyhow::Result<Built> {
    use super::simulate_plugins::{linucb_config, plugin_policy, prior_config};

    let family = if args.prior.is_some() {
        Family::Pilot
    } else {
        Family::LinUcb
    };
    let mut hyper = tuned.get(family.name());
    if let Some(alpha) = args.alpha {
        hyper.alpha = alpha;
    }
    if let Some(lambda) = args.lambda {
        hyper.lambda = lambda;
    }
    let base = args
        .plugin_config
        .clone()
        .unwrap_or_else(|| linucb_config(dim, k, &hyper));
    let config = match &args.prior {
        Some(prior) => {
            let vectors = prior_vectors(args, log, &load_prior(prior, log, dim)?, k)?;
            format!("{base} {}", prior_config(&vectors))
        }
        None => base.clone(),
    };
    let stem = path
        .file_stem()
        .map_or_else(|| "policy".to_owned(), |s| s.to_string_lossy().into_owned());
    let name = format!("plugin[{stem}]");
    // Loads the file once and checks the configuration and the shape on a first instance.
    let make: Make = plugin_policy(path, &config, &base, dim, k)?;
    let shown = if args.prior.is_some() {
        format!("configuration \"{base}\" + prior.<arm> keys")
    } else {
        format!("configuration \"{base}\"")
    };
    Ok(Built {
        make,
        name: name.clone(),
        settings: shown,
        learns: true,
        uniform: false,
        note: Some(format!(
            "{name}: its propensities are the host's, from the scores its `select` returns \
             (given no costs, with a fixed seed) restricted to each decision's logged \
             candidates: with argmax (no --epsilon/--temperature) the plugin gives only its \
             choice, so its propensity is 1 for its best-scoring candidate (ties split evenly) \
             and 0 for the others; a plugin whose scores depend on the seed is refused"
        )),
    })
}

/// One prior vector per arm of the log, by name; LLMs the prior lacks start at the mean of the
/// others (as in the simulator).
fn prior_vectors(args: &Args, log: &Log, prior: &Prior, k: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut names: Vec<String> = if args.llms.is_empty() {
        if prior.llms().len() != log.first_pool {
            bail!(
                "the log does not name its starting LLMs ({} of them) and the prior has {}: \
                 pass --llms NAME,NAME,… in the router's arm order",
                log.first_pool,
                prior.llms().len()
            );
        }
        prior.llms().iter().map(|l| l.name.clone()).collect()
    } else {
        if args.llms.len() != log.first_pool {
            bail!(
                "--llms names {} LLMs but the log's starting pool has {}",
                args.llms.len(),
                log.first_pool
            );
        }
        args.llms.clone()
    };
    names.extend(log.added_arms.iter().cloned());
    let found: Vec<Option<Vec<f32>>> = names
        .iter()
        .map(|n| prior.theta(n).map(<[f32]>::to_vec))
        .collect();
    let present: Vec<&Vec<f32>> = found.iter().flatten().collect();
    let Some(first) = present.first() else {
        bail!(
            "the prior has a vector for none of the log's LLMs ({})",
            names.join(", ")
        );
    };
    let mut mean = vec![0.0f32; first.len()];
    for v in &present {
        for (m, x) in mean.iter_mut().zip(v.iter()) {
            *m += x / present.len() as f32;
        }
    }
    debug_assert_eq!(names.len(), k);
    Ok(found
        .into_iter()
        .map(|v| v.unwrap_or_else(|| mean.clone()))
        .collect())
}

fn print_table(args: &Args, log: &Log, description: &str, report: &Report) {
    println!(
        "target: {description}\nlog: {} ({} decisions evaluated of {}; {} unserved, {} released, \
         {} without reward)",
        args.log.display(),
        report.decisions,
        log.counts.decisions,
        log.counts.unserved,
        log.counts.released,
        log.counts.no_reward
    );
    if let Some(v) = log.versions.last() {
        println!(
            "logged by: policy '{}', prior '{}', embedder '{}'",
            v.policy, v.prior, v.embedder
        );
    }
    println!(
        "logging policy: mean reward {:.4}, spend {:.4e} per decision{}",
        report.logged_reward,
        report.logged_spend,
        if report.deterministic_log {
            " (deterministic: every propensity is 1)"
        } else {
            ""
        }
    );
    let level = format!("{:.0} % interval", 100.0 * report.level);
    println!();
    println!(
        "{:<10} {:<8} {:>8}  {:<18} {:>7}  {:>10}  {:<22}",
        "estimator", "target", "reward", level, "ESS", "spend", "spend interval"
    );
    for row in &report.rows {
        match &row.verdict {
            Verdict::Estimate {
                value,
                low,
                high,
                ess,
                spend,
                spend_low,
                spend_high,
            } => println!(
                "{:<10} {:<8} {:>8.4}  [{:.4}, {:.4}]  {:>7.1}  {:>10.3e}  [{:.3e}, {:.3e}]",
                row.estimator.name(),
                row.case.name(),
                value,
                low,
                high,
                ess,
                spend,
                spend_low,
                spend_high
            ),
            Verdict::Refused(why) => println!(
                "{:<10} {:<8} refused: {why}",
                row.estimator.name(),
                row.case.name()
            ),
        }
    }
    println!();
    println!(
        "frozen: the target is fixed at {} for every decision (ips, snips, dm, dr, switch-dr). \
         learning: replay lets it learn from the decisions it accepts (Li et al. 2011).",
        if args.warm > 0 {
            "its snapshot after --warm"
        } else {
            "its start state"
        }
    );
    for note in &report.notes {
        println!("note: {note}");
    }
}

fn to_json(args: &Args, log: &Log, description: &str, report: &Report) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|row| match &row.verdict {
            Verdict::Estimate {
                value,
                low,
                high,
                ess,
                spend,
                spend_low,
                spend_high,
            } => json!({
                "estimator": row.estimator.name(),
                "case": row.case.name(),
                "estimate": value,
                "interval": [low, high],
                "ess": ess,
                "spend": spend,
                "spend_interval": [spend_low, spend_high],
            }),
            Verdict::Refused(why) => json!({
                "estimator": row.estimator.name(),
                "case": row.case.name(),
                "refused": why,
            }),
        })
        .collect();
    json!({
        "log": args.log.display().to_string(),
        "policy_plugin": args.policy_plugin.as_ref().map(|p| p.display().to_string()),
        "target": description,
        "decisions": report.decisions,
        "decision_events": log.counts.decisions,
        "level": report.level,
        "logged_reward": report.logged_reward,
        "logged_spend": report.logged_spend,
        "deterministic_log": report.deterministic_log,
        "unsupported": report.unsupported,
        "versions": log.versions.last().map(|v| json!({
            "router": v.router, "policy": v.policy, "prior": v.prior, "embedder": v.embedder,
        })),
        "estimates": rows,
        "notes": report.notes,
    })
}
