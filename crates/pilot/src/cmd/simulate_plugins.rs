//! `pilot simulate` with plugins: `--policy-plugin` (optionally started as PILOT with
//! `--plugin-prior`) and `--embedder-plugin` (the synthetic queries, or a dataset's own queries).
//!
//! Kept apart from `simulate.rs` so that file only decides which plugin runs where; everything
//! here needs the `plugins` feature and says how to rebuild without it.

// Without the feature every entry point only returns the rebuild message.
#![cfg_attr(not(feature = "plugins"), allow(dead_code))]

use std::path::Path;

use pilot_data::{Embeddings, RoutingDataset};
use pilot_sim::experiment::Experiment;
use pilot_sim::hyper::Hyper;

/// Why a plugin flag fails in a build without the `plugins` feature.
pub const NO_PLUGINS: &str = "--policy-plugin and --embedder-plugin need plugin support, which \
                              this `pilot` was built without; rebuild with --features plugins \
                              (`cargo build --release -p pilot --features plugins`)";

/// The `--policy-plugin` policy in a run: its name in the report, and (with the `plugins`
/// feature) the detailed errors of its instances, so a failure can be reported with its cause.
pub struct PluginRun {
    /// Its name in the report, `plugin[<file stem>]`.
    pub name: String,
    #[cfg(feature = "plugins")]
    log: super::plugin_trace::Log,
}

impl PluginRun {
    /// The plugin's detailed error behind `message` (an episode error quoting the short one).
    pub fn cause(&self, message: &str) -> Option<String> {
        #[cfg(feature = "plugins")]
        {
            super::plugin_trace::cause_of(&self.log, message, &mut 0)
        }
        #[cfg(not(feature = "plugins"))]
        {
            let _ = message;
            None
        }
    }
}

/// How the `--policy-plugin` policy starts.
#[derive(Clone, Debug)]
pub enum PluginStart {
    /// From its configuration alone; without `--plugin-config`, the LinUCB plugin's keys at
    /// these settings (LinUCB's). It reads the base contexts; its cost policy the fallback
    /// settings.
    Plain(Hyper),
    /// As the grid's PILOT of this name (`None`: the first): its configuration (by default
    /// the LinUCB plugin's keys at PILOT's settings) gets one `prior.<arm>=…` key per arm with
    /// the prior vectors that PILOT starts from; it reads that PILOT's contexts and its cost
    /// policy uses that PILOT's settings.
    Pilot(Option<String>),
}

/// The `prior.<arm>=<v1>;…;<vd>` keys of `vectors`; Rust prints each `f32` with the fewest
/// digits that parse back to the same bits, so the plugin starts from exactly these vectors.
pub fn prior_config(vectors: &[Vec<f32>]) -> String {
    vectors
        .iter()
        .enumerate()
        .map(|(arm, v)| {
            let values: Vec<String> = v.iter().map(f32::to_string).collect();
            format!("prior.{arm}={}", values.join(";"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The LinUCB plugin's configuration keys for `dim`, `arms` at `hyper`'s α and λ.
pub fn linucb_config(dim: usize, arms: usize, hyper: &Hyper) -> String {
    format!(
        "d={dim} k={arms} alpha={} lambda={} reward_min=0 reward_max=1",
        hyper.alpha, hyper.lambda
    )
}

#[cfg(not(feature = "plugins"))]
/// Without the `plugins` feature: the rebuild message.
///
/// # Errors
/// Always.
pub fn add_plugin_policy(
    _: &mut Experiment,
    _: &Path,
    _: Option<&str>,
    _: PluginStart,
) -> anyhow::Result<PluginRun> {
    anyhow::bail!(NO_PLUGINS)
}

/// Adds the `--policy-plugin` policy as `plugin[<file stem>]`. One instance is created here
/// first, so a bad configuration or a shape that does not match the contexts is one clear
/// error up front. Its instances record their detailed errors in the returned [`PluginRun`];
/// run the experiment with it isolated so a failure mid-run stops only the plugin.
///
/// # Errors
/// The file does not load, the plugin rejects its configuration, its dimension or pool does
/// not match, or `start` is [`PluginStart::Pilot`] and the grid has no PILOT (`--no-prior`)
/// or none of that name.
#[cfg(feature = "plugins")]
pub fn add_plugin_policy(
    experiment: &mut Experiment,
    path: &Path,
    config: Option<&str>,
    start: PluginStart,
) -> anyhow::Result<PluginRun> {
    use anyhow::{Context, bail};
    use pilot_core::Policy;
    use pilot_plugin_host::{Limits, PluginEngine, PluginPolicy};

    let arms = experiment.problem().arm_count();
    let defaulted = config.is_none();
    let (dim, config, like) = match start {
        PluginStart::Plain(hyper) => {
            let dim = experiment.base_dim();
            let config = config.map_or_else(|| linucb_config(dim, arms, &hyper), str::to_owned);
            (dim, config, None)
        }
        PluginStart::Pilot(wanted) => {
            let pilots: Vec<(String, _)> = experiment
                .policy_names()
                .into_iter()
                .filter_map(|n| experiment.pilot_setup(&n).map(|s| (n, s)))
                .collect();
            let chosen = match &wanted {
                None => pilots.first(),
                Some(w) => pilots.iter().find(|(n, _)| n == w),
            };
            let Some((name, setup)) = chosen.cloned() else {
                if pilots.is_empty() {
                    bail!(
                        "--plugin-prior needs a prior for PILOT, and this run has none (--no-prior)"
                    );
                }
                let names: Vec<&str> = pilots.iter().map(|(n, _)| n.as_str()).collect();
                bail!(
                    "--plugin-prior {}: no PILOT of that name in this run; it has {}",
                    wanted.unwrap_or_default(),
                    names.join(", ")
                );
            };
            let base = config.map_or_else(
                || linucb_config(setup.dim, arms, &setup.hyper),
                str::to_owned,
            );
            let config = format!("{base} {}", prior_config(&setup.vectors));
            (setup.dim, config, Some(name))
        }
    };
    // The prior keys make the configuration long; errors show what the user wrote.
    let shown = config.split(" prior.").next().unwrap_or(&config).to_owned();
    let compiled = PluginEngine::new(Limits::default())?
        .load_file(path)
        .with_context(|| format!("--policy-plugin {}", path.display()))?;
    let probe = PluginPolicy::new(&compiled, &config).with_context(|| {
        format!(
            "--policy-plugin {} with configuration \"{shown}\"{}",
            path.display(),
            if like.is_some() {
                " + the prior's vectors"
            } else {
                ""
            }
        )
    })?;
    if probe.dim() != dim || probe.arm_count() != arms {
        bail!(
            "--policy-plugin {}: configuration \"{shown}\" gives dimension {} and {} arms, but \
             the contexts have dimension {dim} and the pool {arms} LLMs",
            path.display(),
            probe.dim(),
            probe.arm_count()
        );
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "policy".to_owned(), |s| s.to_string_lossy().into_owned());
    let name = format!("plugin[{stem}]");
    // Say what the plugin gets: its configuration, the context dimension, the arm order, and
    // that `select` gets no costs (the cost policy applies them outside the plugin).
    println!(
        "{name}: configuration \"{shown}\"{}; contexts of dimension {dim}, {arms} arms in \
         the dataset's LLM order ({}); select receives no costs",
        if like.is_some() {
            " + prior.<arm> keys"
        } else {
            ""
        },
        experiment.problem().llms().join(", ")
    );
    if defaulted {
        println!(
            "note: no --plugin-config, so {name} got the LinUCB plugin's keys; a plugin that \
             takes other keys needs --plugin-config"
        );
    }
    // The same conformance kit as `pilot plugin check`: a plugin that fails it still runs, but
    // not without a word.
    let report = conformance(&compiled, &config);
    if !report.passed() {
        eprintln!(
            "warning: --policy-plugin {} fails the conformance kit that `pilot plugin check` \
             runs; its results may not be comparable with the other policies':",
            path.display()
        );
        for failure in report.failures() {
            if let Err(why) = &failure.result {
                eprintln!("  FAIL  {}: {why}", failure.name);
            }
        }
    }
    let log = super::plugin_trace::Log::default();
    let shared = std::sync::Arc::clone(&log);
    let make: pilot_sim::grid::PolicyFactory = Box::new(move |_, pool| {
        // The plugin's configuration names the whole pool, and its ABI cannot add an arm.
        if pool.iter().enumerate().any(|(a, &llm)| a != llm) || pool.len() != arms {
            return Err(pilot_sim::SimError::invalid(
                "policy plugin: its pool is fixed by its configuration (the plugin ABI has no \
                 call to add an LLM), so it cannot run a world where an LLM joins later",
            ));
        }
        PluginPolicy::new(&compiled, &config)
            .map(|p| {
                Box::new(super::plugin_trace::Traced::new(
                    p,
                    std::sync::Arc::clone(&shared),
                )) as Box<dyn pilot_router::RoutingPolicy>
            })
            .map_err(|e| pilot_sim::SimError::invalid(format!("policy plugin: {e}")))
    });
    match like {
        Some(pilot) => experiment.add_policy_like(&name, make, &pilot)?,
        None => experiment.add_policy(&name, make)?,
    }
    Ok(PluginRun { name, log })
}

/// Makes fresh instances of a policy plugin (`pilot ope --policy-plugin`).
pub type MakePlugin = Box<dyn Fn() -> anyhow::Result<Box<dyn pilot_core::Policy<f32>>>>;

#[cfg(not(feature = "plugins"))]
/// Without the `plugins` feature: the rebuild message.
///
/// # Errors
/// Always.
pub fn plugin_policy(_: &Path, _: &str, _: &str, _: usize, _: usize) -> anyhow::Result<MakePlugin> {
    anyhow::bail!(
        "--policy-plugin needs plugin support, which this `pilot` was built without; rebuild \
         with --features plugins (`cargo build --release -p pilot --features plugins`)"
    )
}

/// Loads the policy plugin at `path` once and returns a maker of instances started from
/// `config` (`shown` is the part of it errors quote). One instance is made here to check that
/// the plugin takes the configuration and has dimension `dim` and `arms` arms.
///
/// # Errors
/// The file does not load, is no policy plugin, rejects the configuration, or has another shape.
#[cfg(feature = "plugins")]
pub fn plugin_policy(
    path: &Path,
    config: &str,
    shown: &str,
    dim: usize,
    arms: usize,
) -> anyhow::Result<MakePlugin> {
    use anyhow::{Context, bail};
    use pilot_core::Policy;
    use pilot_plugin_host::{Limits, PluginEngine, PluginPolicy};

    let compiled = PluginEngine::new(Limits::default())?
        .load_file(path)
        .with_context(|| format!("--policy-plugin {}", path.display()))?;
    let probe = PluginPolicy::new(&compiled, config).with_context(|| {
        format!(
            "--policy-plugin {} with configuration \"{shown}\"",
            path.display()
        )
    })?;
    if probe.dim() != dim || probe.arm_count() != arms {
        bail!(
            "--policy-plugin {}: configuration \"{shown}\" gives dimension {} and {} arms, but \
             the log's contexts have dimension {dim} and its pool {arms} LLMs",
            path.display(),
            probe.dim(),
            probe.arm_count()
        );
    }
    let (config, shown, file) = (config.to_owned(), shown.to_owned(), path.to_owned());
    Ok(Box::new(move || {
        let p = PluginPolicy::new(&compiled, &config).with_context(|| {
            format!(
                "--policy-plugin {} with configuration \"{shown}\"",
                file.display()
            )
        })?;
        Ok(Box::new(p) as Box<dyn Policy<f32>>)
    }))
}

/// The detailed error behind an `--embedder-plugin` failure, read after the embedder (boxed as
/// a plain `Embedder`, which returns only the short core error) failed.
pub type LastError = Box<dyn Fn() -> Option<String>>;

#[cfg(not(feature = "plugins"))]
/// Without the `plugins` feature: the rebuild message.
///
/// # Errors
/// Always.
pub fn plugin_embedder(
    _: &Path,
    _: &str,
    _: usize,
) -> anyhow::Result<(Box<dyn pilot_core::Embedder>, LastError)> {
    anyhow::bail!(NO_PLUGINS)
}

/// The `--embedder-plugin` embedder, for a table of `rows` queries, and how to read its last
/// detailed error.
///
/// # Errors
/// The file does not load, the plugin rejects the configuration, or `rows` vectors of its
/// dimension would exceed the host's output limit (`Limits::output_table_bytes`).
#[cfg(feature = "plugins")]
pub fn plugin_embedder(
    path: &Path,
    config: &str,
    rows: usize,
) -> anyhow::Result<(Box<dyn pilot_core::Embedder>, LastError)> {
    use anyhow::Context;

    let embedder = load_embedder(path, config)?;
    embedder
        .reserve_rows(rows)
        .with_context(|| format!("--embedder-plugin {}", path.display()))?;
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let read = std::sync::Arc::clone(&slot);
    let last: LastError = Box::new(move || read.lock().ok().and_then(|s| s.clone()));
    Ok((Box::new(Recording { embedder, slot }), last))
}

/// A plugin embedder that keeps its last detailed error in a shared slot.
#[cfg(feature = "plugins")]
struct Recording {
    embedder: pilot_plugin_host::PluginEmbedder,
    slot: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

#[cfg(feature = "plugins")]
impl pilot_core::Embedder for Recording {
    fn id(&self) -> &str {
        pilot_core::Embedder::id(&self.embedder)
    }

    fn dim(&self) -> usize {
        pilot_core::Embedder::dim(&self.embedder)
    }

    fn embed(&mut self, text: &str, out: &mut [f32]) -> pilot_core::Result<()> {
        let result = pilot_core::Embedder::embed(&mut self.embedder, text, out);
        if result.is_err()
            && let (Some(e), Ok(mut slot)) = (self.embedder.last_error(), self.slot.lock())
        {
            *slot = Some(e.to_string());
        }
        result
    }
}

/// pilot-bandit's conformance kit on fresh instances of the plugin policy, as
/// `pilot plugin check` runs it.
#[cfg(feature = "plugins")]
fn conformance(
    compiled: &pilot_plugin_host::CompiledPlugin,
    config: &str,
) -> pilot_bandit::conformance::Report {
    use pilot_bandit::conformance::{KitOptions, check_policy};
    use pilot_plugin_host::PluginPolicy;
    // One instance already started with this configuration; should a later start fail, the
    // kit catches the panic and reports that property failed.
    #[allow(clippy::panic)]
    let make = || match PluginPolicy::new(compiled, config) {
        Ok(p) => p,
        Err(e) => panic!("cannot start the plugin policy: {e}"),
    };
    check_policy(make, &KitOptions::<f32>::default())
}

#[cfg(not(feature = "plugins"))]
/// Without the `plugins` feature: the rebuild message.
///
/// # Errors
/// Always.
pub fn check_spread(_: &Path, _: &Embeddings) -> anyhow::Result<()> {
    anyhow::bail!(NO_PLUGINS)
}

/// Refuses degenerate `--embedder-plugin` vectors (a row all zero or subnormal, every row the
/// same) before anything is fitted on them, naming the plugin.
///
/// # Errors
/// The table is degenerate.
#[cfg(feature = "plugins")]
pub fn check_spread(path: &Path, embeddings: &Embeddings) -> anyhow::Result<()> {
    use anyhow::Context;

    pilot_plugin_host::validate::embedding_spread(embeddings.as_slice(), embeddings.dim())
        .with_context(|| {
            format!(
                "--embedder-plugin {}: its vectors cannot carry information",
                path.display()
            )
        })
}

#[cfg(feature = "plugins")]
fn load_embedder(path: &Path, config: &str) -> anyhow::Result<pilot_plugin_host::PluginEmbedder> {
    use anyhow::Context;
    use pilot_plugin_host::{Limits, PluginEmbedder, PluginEngine};

    let compiled = PluginEngine::new(Limits::default())?
        .load_file(path)
        .with_context(|| format!("--embedder-plugin {}", path.display()))?;
    PluginEmbedder::new(&compiled, config).with_context(|| {
        format!(
            "--embedder-plugin {} with configuration \"{config}\"",
            path.display()
        )
    })
}

#[cfg(not(feature = "plugins"))]
/// Without the `plugins` feature: the rebuild message.
///
/// # Errors
/// Always.
pub fn embed_dataset(
    _: &Path,
    _: &str,
    _: &RoutingDataset,
) -> anyhow::Result<(Embeddings, String)> {
    anyhow::bail!(NO_PLUGINS)
}

/// Embeds the `query` field of every row of `dataset` (row `i` for row `i`, as the
/// `*.minilm.f32` files hold it) with the `--embedder-plugin` at `path`; returns the vectors
/// and the plugin's embedder id.
///
/// # Errors
/// The plugin does not load, or a query fails (trap, fuel, deadline, memory, bad output): the
/// message names the query's line and id, and the plugin's error.
#[cfg(feature = "plugins")]
pub fn embed_dataset(
    path: &Path,
    config: &str,
    dataset: &RoutingDataset,
) -> anyhow::Result<(Embeddings, String)> {
    use anyhow::Context;
    use pilot_core::Embedder;

    let started = std::time::Instant::now();
    let mut embedder = load_embedder(path, config)?;
    let (id, dim) = (embedder.id().to_owned(), embedder.dim());
    // What the plugin declared must not decide how much the host allocates: check the table
    // against the host's limit before reserving it.
    embedder
        .reserve_rows(dataset.rows.len())
        .with_context(|| format!("--embedder-plugin {}", path.display()))?;
    let mut vectors = Vec::with_capacity(dataset.rows.len() * dim);
    for (row, query) in dataset.rows.iter().enumerate() {
        let v = embedder.embed_vec(&query.query).with_context(|| {
            format!(
                "--embedder-plugin {}: embedding the query on line {} of {} (id {})",
                path.display(),
                row + 1,
                dataset.source.display(),
                query.id
            )
        })?;
        vectors.extend_from_slice(&v);
    }
    println!(
        "embedded {} queries with the plugin {} ({id}, dimension {dim}) in {:.2} s",
        dataset.rows.len(),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    let name = format!("{} [{id}]", dataset.source.display());
    let embeddings = Embeddings::from_vec(vectors, dim, name)?;
    check_spread(path, &embeddings)?;
    Ok((embeddings, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_keys_round_trip_every_bit() {
        let vectors = vec![
            vec![0.1f32, -1.0e-7, 3.402_823_5e38],
            vec![f32::MIN_POSITIVE, -0.0, 1.0 / 3.0],
        ];
        let config = prior_config(&vectors);
        assert!(config.starts_with("prior.0="), "{config}");
        assert!(!config.contains(','), "{config}");
        let parsed: Vec<Vec<f32>> = config
            .split(' ')
            .map(|kv| {
                let (_, values) = kv.split_once('=').unwrap_or_default();
                values
                    .split(';')
                    .map(|v| v.parse().unwrap_or(f32::NAN))
                    .collect()
            })
            .collect();
        assert_eq!(parsed.len(), 2);
        for (a, b) in parsed.iter().flatten().zip(vectors.iter().flatten()) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }
}
