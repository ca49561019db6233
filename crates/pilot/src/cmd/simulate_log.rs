//! `pilot simulate --log-decisions FILE`: one extra episode of a chosen policy, drawing with
//! exploration, whose router event log (decisions with propensities, settlements, feedback)
//! is written as JSON lines for `pilot ope`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use pilot_router::Exploration;
use pilot_sim::experiment::Experiment;

/// The `--log-*` options of `pilot simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Write the router's event log of one extra episode here (JSON lines, see docs/ope.md).
    #[arg(long)]
    pub log_decisions: Option<PathBuf>,
    /// The policy of the logged episode [default: pilot, else the first policy].
    #[arg(long, requires = "log_decisions")]
    pub log_policy: Option<String>,
    /// How the logged episode draws among the candidates: argmax, eps:E (ε-mix) or
    /// softmax:T (temperature T over the policy's scores).
    #[arg(long, requires = "log_decisions", default_value = "eps:0.1")]
    pub log_explore: String,
    /// Budget fraction of the logged episode.
    #[arg(long, requires = "log_decisions", default_value_t = 0.25)]
    pub log_budget: f64,
    /// Seed (stream order) of the logged episode.
    #[arg(long, requires = "log_decisions", default_value_t = 0)]
    pub log_seed: u64,
}

/// Parses `argmax`, `eps:E` or `softmax:T`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_exploration(spec: &str) -> anyhow::Result<Exploration> {
    let value = |v: &str| -> anyhow::Result<f64> {
        v.parse::<f64>()
            .with_context(|| format!("--log-explore {spec}: '{v}' is not a number"))
    };
    let e = match spec.split_once(':') {
        None if spec == "argmax" => Exploration::Argmax,
        Some(("eps", v)) => Exploration::EpsilonMix { epsilon: value(v)? },
        Some(("softmax", v)) => Exploration::Softmax {
            temperature: value(v)?,
        },
        _ => bail!("--log-explore {spec}: expected argmax, eps:E or softmax:T"),
    };
    e.check()
        .map_err(|err| anyhow::anyhow!("--log-explore {spec}: {err}"))
}

/// Runs the logged episode and writes its events, if asked for.
///
/// # Errors
/// Bad options, an unknown policy, the episode's errors, or the file not being writable.
pub fn write_log(args: &LogArgs, experiment: &Experiment) -> anyhow::Result<()> {
    let Some(path) = &args.log_decisions else {
        return Ok(());
    };
    let exploration = parse_exploration(&args.log_explore)?;
    let names = experiment.policy_names();
    let policy = match &args.log_policy {
        Some(p) => p.clone(),
        None if names.iter().any(|n| n == "pilot") => "pilot".to_owned(),
        None => names.first().cloned().unwrap_or_default(),
    };
    let (outcome, events) =
        experiment.log_episode(&policy, exploration, args.log_budget, args.log_seed)?;
    write_events(path, &events)?;
    println!(
        "logged {} events of '{policy}' ({}, budget {}, seed {}): {} served, quality {:.1}, \
         cost {:.4} USD → {}",
        events.len(),
        args.log_explore,
        args.log_budget,
        args.log_seed,
        outcome.served,
        outcome.quality,
        outcome.cost,
        path.display()
    );
    Ok(())
}

fn write_events(path: &Path, events: &[pilot_router::Record]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for e in events {
        let line = pilot_router::log::to_line(e).context("encoding an event")?;
        out.write_all(line.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exploration_specs_parse_or_say_what_is_accepted() {
        assert_eq!(parse_exploration("argmax").unwrap(), Exploration::Argmax);
        assert_eq!(
            parse_exploration("eps:0.2").unwrap(),
            Exploration::EpsilonMix { epsilon: 0.2 }
        );
        assert_eq!(
            parse_exploration("softmax:0.5").unwrap(),
            Exploration::Softmax { temperature: 0.5 }
        );
        let e = parse_exploration("eps:2").unwrap_err().to_string();
        assert!(e.contains("epsilon"), "{e}");
        let e = parse_exploration("greedy").unwrap_err().to_string();
        assert!(e.contains("argmax, eps:E or softmax:T"), "{e}");
    }
}
