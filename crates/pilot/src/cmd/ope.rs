//! `pilot ope`: off-policy evaluation of a target policy on a router decision log (JSON lines of
//! `pilot_router::Record`): one table of estimates, intervals and effective sample sizes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_core::{ArmId, Policy, Reward};
use pilot_ope::{
    Estimator, IntervalMethod, Log, OpeConfig, PolicyTarget, Report, Verdict, evaluate, read_log,
};
use pilot_prior::{Expect, Prior};
use pilot_router::Exploration;
use pilot_sim::hyper::FamilyParams;
use rand_pcg::Pcg64;
use serde_json::json;

/// Arguments of `pilot ope`.
#[derive(clap::Args)]
pub struct Args {
    /// The decision log: JSON lines of router events (`Router::drain_events` through
    /// `pilot_router::log::to_line`).
    #[arg(long)]
    log: PathBuf,
    /// Target policy: pilot (needs --prior), prior-only (needs --prior), linucb, random.
    #[arg(long)]
    policy: String,
    /// Prior file from `pilot prior fit`: the per-LLM start vectors of pilot and prior-only. Its
    /// map must be the one the log's contexts came from.
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
    let bytes =
        std::fs::read(&args.log).with_context(|| format!("reading {}", args.log.display()))?;
    let mut log = read_log(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.log.display()))?;
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
    let (policy, learns, settings) = build(&args, &log, dim, k)?;
    let exploration = if args.policy == "random" {
        Exploration::EpsilonMix { epsilon: 1.0 }
    } else {
        exploration
    };
    let mut policy = policy;
    if args.warm > 0 {
        if !learns {
            bail!(
                "--warm: {} does not learn, so it has no snapshot to warm",
                args.policy
            );
        }
        if args.warm >= log.decisions.len() {
            bail!(
                "--warm {}: the log has only {} rewarded decisions (some must be left to evaluate)",
                args.warm,
                log.decisions.len()
            );
        }
        for d in log.decisions.drain(..args.warm) {
            let r = Reward::new(d.reward.unwrap_or(0.0))?;
            policy.update(ArmId::new(d.chosen), &d.context, r)?;
        }
    }
    let learner = learns.then(|| policy.clone());
    let mut target =
        PolicyTarget::frozen(policy, exploration)?.with_cost_weight(args.cost_weight)?;
    let mut learner = match learner {
        Some(p) => {
            Some(PolicyTarget::learning(p, exploration)?.with_cost_weight(args.cost_weight)?)
        }
        None => None,
    };
    let mut rng = Pcg64::new(
        u128::from(args.seed),
        0x0a02_bdbf_7bb3_c0a7_ac28_fa16_a64a_bf96,
    );
    let report = evaluate(
        &log,
        &mut target,
        learner.as_mut().map(|l| l as &mut dyn pilot_ope::Target),
        &config,
        &mut rng,
    )?;
    let draw = match exploration {
        Exploration::Argmax => "argmax".to_owned(),
        Exploration::EpsilonMix { epsilon } => format!("ε-mix {epsilon}"),
        Exploration::Softmax { temperature } => format!("softmax T {temperature}"),
    };
    let mut description = format!("{} ({settings}, {draw}", args.policy);
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

/// The target's policy, whether it learns (for replay), and its settings in words.
fn build(
    args: &Args,
    log: &Log,
    dim: usize,
    k: usize,
) -> anyhow::Result<(LinUcbVec<f32>, bool, String)> {
    let tuned = FamilyParams::tuned();
    let family = args.policy.as_str();
    let hyper = tuned.get(family);
    let alpha = args.alpha.unwrap_or(hyper.alpha);
    let lambda = args.lambda.unwrap_or(hyper.lambda);
    let params = |alpha: f32, lambda: f32| {
        LinUcb::params()
            .alpha(alpha)
            .lambda(lambda)
            .reward_range(0.0, 1.0)
            .check()
            .map_err(|e| anyhow::anyhow!("--alpha/--lambda: {e}"))
    };
    match family {
        "pilot" | "prior-only" => {
            let Some(path) = &args.prior else {
                bail!("--policy {family} needs --prior FILE (from `pilot prior fit`)");
            };
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
                    "{}: the prior's contexts have dimension {} but the log's have {dim}: the \
                     log was made with another prior or projection, and the log holds contexts, \
                     not the base vectors another map would need",
                    path.display(),
                    prior.context_dim()
                );
            }
            let vectors = prior_vectors(args, log, &prior, k)?;
            let refs: Vec<Option<&[f32]>> = vectors.iter().map(|v| Some(v.as_slice())).collect();
            if family == "pilot" {
                let p = LinUcbVec::with_priors(params(alpha, lambda)?, &refs, dim)?;
                Ok((p, true, format!("α {alpha}, λ {lambda}")))
            } else {
                let p = LinUcbVec::with_priors(params(0.0, 1.0)?, &refs, dim)?;
                Ok((p, false, "its prior's mean".to_owned()))
            }
        }
        "linucb" => Ok((
            LinUcbVec::new(params(alpha, lambda)?, k, dim)?,
            true,
            format!("α {alpha}, λ {lambda}"),
        )),
        "random" => Ok((
            LinUcbVec::new(params(0.0, 1.0)?, k, dim)?,
            false,
            "uniform over the candidates".to_owned(),
        )),
        other => bail!("--policy {other}: expected pilot, prior-only, linucb or random"),
    }
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
