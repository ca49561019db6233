//! `pilot simulate`: replay routing data with bandit feedback and compare policies under
//! budgets. With no arguments it runs the built-in synthetic scenario (the main job).
//!
//! This file is arguments and printing: the arguments become a
//! [`pilot_sim::plan::SimulationPlan`], the plan loads, fits, tunes and runs (calling back
//! here, through [`CliHooks`], for the embedders and the policy plugin that live in this
//! crate), and what it produced is printed and written here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use pilot_data::{Embeddings, RoutingDataset};
use pilot_sim::experiment::{CostPolicyKind, Experiment, ExperimentReport};
use pilot_sim::hyper::Hyper;
use pilot_sim::plan::{
    self, ArenaSource, DataSource, DomainShiftReport, HookEmbedder, HookError, Overrides, Phase,
    PlanEvent, PlanHooks, PluginRef, PolicyPlugin, PriorChoice, PriorFit, QueryVectors, Results,
    Settings, SimulationPlan, TunePlan, WorldsReport,
};
use pilot_sim::tune::tune_csv;
use pilot_sim::world::{self, WORLD_NAMES};
use pilot_sim::{Scenario, plot, report};

use super::simulate_minilm::{EmbedOptions, QueryEmbedder, embed_queries};
use super::simulate_plugins::{self, PluginRun, PluginStart};

/// Arguments of `pilot simulate`.
#[derive(clap::Args)]
pub struct Args {
    /// Routing dataset (JSON lines, RouterBench format). Without it: the synthetic scenario.
    /// Its vectors come from `--embeddings` or `--embedder`.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Base embeddings of the dataset's lines (raw little-endian f32, `--dim` per row).
    #[arg(long, requires = "dataset")]
    embeddings: Option<PathBuf>,
    /// Dimension of the embedding rows.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// A prior file from `pilot prior fit` (repeat for several; each gives a PILOT policy).
    #[arg(long = "prior")]
    priors: Vec<PathBuf>,
    /// Budgets as fractions of the always-best-LLM cost (comma-separated or repeated).
    #[arg(long = "budget", value_delimiter = ',')]
    budgets: Vec<f64>,
    /// Number of seeds (stream orders) per cell [default: 10 on a dataset, 5 synthetic].
    #[arg(long)]
    seeds: Option<u64>,
    /// Stream orders: standard, task-shift [default: both on a dataset, standard synthetic];
    /// or worlds that change mid-stream: stationary, new-llm, price-change, drift,
    /// budget-change (run at the first `--budget`, default 0.25, against the stationary
    /// control; writes scenarios.csv and summary.csv).
    #[arg(long = "scenario", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Discount γ of the extra `pilot-γ` policies in world scenarios (1: none).
    #[arg(long, default_value_t = 0.99)]
    discount: f32,
    /// Online cost policies: pacing, threshold (tuned adaptation), zcl (ZCL as published).
    #[arg(long = "cost-policy", value_delimiter = ',', default_value = "pacing")]
    cost_policies: Vec<String>,
    /// Directory for summary.csv, regret.csv, frontier.csv and the SVG plots.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Exploration weight α of LinUCB and PILOT.
    #[arg(long)]
    alpha: Option<f32>,
    /// Ridge weight λ of LinUCB, LinTS and ε-greedy.
    #[arg(long)]
    lambda: Option<f32>,
    /// PILOT's ridge weight on its prior.
    #[arg(long)]
    pilot_lambda: Option<f32>,
    /// Neighbours of the kNN router and of the cost estimator.
    #[arg(long, default_value_t = 10)]
    knn_k: usize,
    /// The LLM whose always-on cost is budget fraction 1 [default: best mean quality].
    #[arg(long)]
    reference_llm: Option<String>,
    /// Split name of the learning rows.
    #[arg(long, default_value = "train")]
    learning_split: String,
    /// Split name of the deployment rows.
    #[arg(long, default_value = "test")]
    deployment_split: String,
    /// Run without a prior (no PILOT; the bandits read a fixed random projection).
    #[arg(long)]
    no_prior: bool,
    /// Context dimension of the bandits with `--no-prior`.
    #[arg(long, default_value_t = pilot_sim::experiment::DEFAULT_CONTEXT_DIM)]
    context_dim: usize,
    /// Shared-space dimension of a prior fitted here (the context has one more).
    #[arg(long, default_value_t = 16)]
    prior_dim: usize,
    /// Weight of tied pairs when fitting a prior here.
    #[arg(long, default_value_t = 0.2)]
    tie_weight: f64,
    /// Id of the embedder that produced `--embeddings` (saved in a prior fitted here), e.g. the
    /// `hash-v1:d=256` that `pilot embed --model hash` prints [default: all-MiniLM-L6-v2 for a
    /// 384-value `*.minilm.f32` file, else unnamed:d=<dim>].
    #[arg(long)]
    embedder_id: Option<String>,
    /// Judge scores (arena-bench-300.jsonl format): adds PILOT and the prior alone with a
    /// prior fitted on them (`pilot[arena]`, `prior-only[arena]`).
    #[arg(long, requires = "arena_embeddings")]
    arena: Option<PathBuf>,
    /// Base embeddings of the `--arena` prompts (raw f32, `--dim` per row).
    #[arg(long, requires = "arena")]
    arena_embeddings: Option<PathBuf>,
    /// Tune every policy's settings on the learning split first (fit part / validation part,
    /// never the deployment split), print them, then run the grid with them.
    #[arg(long)]
    tune: bool,
    /// Seeds per candidate when tuning.
    #[arg(long, default_value_t = 3)]
    tune_seeds: u64,
    /// Fraction of each task's learning rows the tuning prior is fitted on.
    #[arg(long, default_value_t = 0.7)]
    tune_fit_fraction: f64,
    /// Use the settings from before tuning (α 0.1, λ 1 / PILOT λ 4, LinTS 0.1, ε 0.05, pacing
    /// 0.1 / 0.05) instead of the tuned defaults.
    #[arg(long)]
    untuned: bool,
    /// LinTS posterior scale.
    #[arg(long)]
    ts_scale: Option<f32>,
    /// ε-greedy exploration rate.
    #[arg(long)]
    epsilon: Option<f32>,
    /// A policy plugin (WebAssembly component) to run next to the built-in policies, as
    /// `plugin[<file stem>]`, on the same contexts as LinUCB (feature `plugins`).
    #[arg(long)]
    policy_plugin: Option<PathBuf>,
    /// Configuration string of `--policy-plugin` [default: the LinUCB plugin's, "d=<context
    /// dim> k=<pool size> alpha=… lambda=… reward_min=0 reward_max=1" at LinUCB's settings,
    /// or at PILOT's with `--plugin-prior`].
    #[arg(long, requires = "policy_plugin")]
    plugin_config: Option<String>,
    /// Start `--policy-plugin` as PILOT: its configuration gets the prior's per-arm vectors
    /// (`prior.<arm>=v1;…;vd`, the ones native PILOT starts from), and it reads PILOT's
    /// contexts with PILOT's cost-policy settings. `--plugin-prior=NAME` picks the PILOT of
    /// that name in the summary (when several priors run); bare, the first.
    #[arg(
        long,
        value_name = "NAME",
        num_args = 0..=1,
        require_equals = true,
        requires = "policy_plugin",
        conflicts_with = "no_prior"
    )]
    plugin_prior: Option<Option<String>>,
    /// Embed the queries with this embedder plugin (feature `plugins`): the synthetic
    /// scenario's instead of the hashing embedder, or with `--dataset` its `query` fields
    /// instead of reading `--embeddings`. The prior is fitted on its vectors and `--prior`
    /// files must come from the same embedder.
    #[arg(long, conflicts_with_all = ["embeddings", "embedder", "embedder_id"])]
    embedder_plugin: Option<PathBuf>,
    /// Configuration string of `--embedder-plugin` (plugin-defined, e.g. "d=64").
    #[arg(long, requires = "embedder_plugin", default_value = "")]
    embedder_config: String,
    /// Embed the dataset's queries (`query` field) with this embedder instead of reading
    /// `--embeddings` (feature `minilm`): the prior is fitted on its vectors and `--prior` files
    /// must come from the same embedder. MiniLM embeds ~90 queries/s on 2 cores (RouterBench-3k
    /// in about 40 s).
    #[arg(long, value_enum, requires = "dataset", conflicts_with_all = ["embeddings", "embedder_id"])]
    embedder: Option<QueryEmbedder>,
    /// Model directory of `--embedder minilm` [default: $PILOT_MODEL_DIR, else
    /// ~/.cache/pilot/all-MiniLM-L6-v2].
    #[arg(long, requires = "embedder")]
    model_dir: Option<PathBuf>,
    /// Queries per encoder call of `--embedder`.
    #[arg(long, requires = "embedder", default_value_t = 32)]
    embed_batch: usize,
    /// Also write the `--embedder` vectors here (raw f32 rows), for reuse with `--embeddings`.
    #[arg(long, requires = "embedder")]
    save_embeddings: Option<PathBuf>,
    /// Logging one episode's decisions for off-policy evaluation.
    #[command(flatten)]
    log: super::simulate_log::LogArgs,
    #[command(flatten)]
    evidence: super::simulate_checks::Evidence,
}

/// Runs `pilot simulate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if (args.policy_plugin.is_some() || args.embedder_plugin.is_some())
        && !cfg!(feature = "plugins")
    {
        bail!(simulate_plugins::NO_PLUGINS);
    }
    let plan = plan_from_args(&args)?;
    let bars = PhaseBars::new(started);
    let mut hooks = CliHooks {
        plan: &plan,
        bars: &bars,
        plugin: None,
    };
    let outcome = plan.run(&mut hooks, &|phase, done, total| {
        bars.tick(phase, done, total);
    })?;
    bars.finish();
    let plugin = hooks.plugin.take();
    if let Some(shift) = &outcome.domain_shift {
        print_domain_shift(shift, plan.out.as_deref())?;
    }
    let Some(simulation) = outcome.simulation else {
        return Ok(ExitCode::SUCCESS);
    };
    let experiment = &simulation.experiment;
    let (report, failures) = match outcome.results {
        Results::None => return Ok(ExitCode::SUCCESS),
        Results::Worlds(worlds) => {
            print_worlds(experiment, &worlds, plan.out.as_deref(), started)?;
            return Ok(ExitCode::SUCCESS);
        }
        Results::Grid { report, failures } => (report, failures),
    };
    let grid_cells = experiment.grid().cell_count();
    print_report(experiment, &report);
    let mut failed = Vec::new();
    for (name, err) in &failures {
        let message = err.to_string();
        let cause = plugin.as_ref().and_then(|p| p.cause(&message));
        println!(
            "{name}  FAILED, its rows are left out{}: {message}",
            if plan.out.is_some() {
                " of the figures and marked failed in summary.csv"
            } else {
                ""
            }
        );
        if let Some(cause) = &cause {
            println!("  cause: {cause}");
        }
        failed.push(failed_rows(experiment, name, &message, cause.as_deref()));
    }
    super::simulate_log::write_log(&args.log, experiment)?;
    if let Some(dir) = &plan.out {
        write_outputs(dir, &report, &failed)?;
        println!(
            "wrote {}/{{summary,regret,frontier}}.csv and *.svg",
            dir.display()
        );
    }
    println!(
        "{} episodes in {:.2} s",
        grid_cells,
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
        eprintln!(
            "error: {} failed mid-run (see FAILED above); the other policies' results are \
             complete",
            names.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    args.evidence.enforce(plan.synthetic(), &report.rows)?;
    Ok(ExitCode::SUCCESS)
}

/// The plan `args` ask for.
///
/// # Errors
/// A bad budget, seed count, scenario or cost policy, or a dataset without its vectors.
fn plan_from_args(args: &Args) -> anyhow::Result<SimulationPlan> {
    let mut plan = SimulationPlan::new(data_source(args)?);
    if !args.budgets.is_empty() {
        if let Some(b) = args.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            bail!("--budget {b}: a budget fraction must be finite and > 0");
        }
        plan.budgets = args.budgets.clone();
    }
    if let Some(&first) = args.budgets.first() {
        plan.world_budget = first;
    }
    if let Some(seeds) = args.seeds {
        plan.seeds = seeds;
    }
    if plan.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    plan.worlds = args
        .scenarios
        .iter()
        .filter(|s| WORLD_NAMES.contains(&s.as_str()))
        .cloned()
        .collect();
    let streams = args.scenarios.len() - plan.worlds.len();
    if !plan.worlds.is_empty() {
        if streams > 0 {
            bail!("world scenarios (stationary, new-llm, …) run alone on the standard order");
        }
        plan.streams = vec![Scenario::Standard];
    } else if !args.scenarios.is_empty() {
        plan.streams = args
            .scenarios
            .iter()
            .map(|s| {
                Scenario::parse(s).with_context(|| {
                    format!(
                        "--scenario {s}: expected standard, task-shift or one of {}",
                        WORLD_NAMES.join(", ")
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    plan.discount = args.discount;
    plan.cost_policies = args
        .cost_policies
        .iter()
        .map(|s| {
            CostPolicyKind::parse(s).with_context(|| {
                format!("--cost-policy {s}: expected {}", CostPolicyKind::expected())
            })
        })
        .collect::<anyhow::Result<_>>()?;
    plan.threads = args.threads.max(1);
    plan.knn_k = args.knn_k;
    plan.reference_llm = args.reference_llm.clone();
    plan.settings = Settings {
        untuned: args.untuned,
        overrides: Overrides {
            alpha: args.alpha,
            lambda: args.lambda,
            pilot_lambda: args.pilot_lambda,
            ts_scale: args.ts_scale,
            epsilon: args.epsilon,
        },
        paired: args.evidence.paired(),
    };
    plan.priors = if args.no_prior {
        PriorChoice::None
    } else if args.priors.is_empty() {
        PriorChoice::Learning
    } else {
        PriorChoice::Files(args.priors.clone())
    };
    plan.prior_fit = PriorFit {
        dim: args.prior_dim,
        tie_weight: args.tie_weight,
    };
    plan.context_dim = args.context_dim;
    plan.arena = match (&args.arena, &args.arena_embeddings) {
        (Some(judge), Some(embeddings)) => Some(ArenaSource {
            judge: judge.clone(),
            embeddings: embeddings.clone(),
            dim: args.dim,
        }),
        _ => None,
    };
    plan.tune = args.tune.then_some(TunePlan {
        seeds: args.tune_seeds,
        fit_fraction: args.tune_fit_fraction,
    });
    plan.policy_plugin = args.policy_plugin.as_ref().map(|path| PolicyPlugin {
        path: path.clone(),
        config: args.plugin_config.clone(),
        pilot: args.plugin_prior.clone(),
    });
    plan.out = args.out.clone();
    // Checked here so a bad setting fails before anything is loaded.
    plan.experiment_config()?;
    Ok(plan)
}

/// Where `args` say the data and its vectors come from.
fn data_source(args: &Args) -> anyhow::Result<DataSource> {
    let embedder_plugin = args.embedder_plugin.as_ref().map(|path| PluginRef {
        path: path.clone(),
        config: args.embedder_config.clone(),
    });
    match (&args.dataset, &args.embeddings) {
        (Some(dataset), embeddings) => {
            let vectors = match (embeddings, args.embedder) {
                (Some(path), None) => QueryVectors::File {
                    path: path.clone(),
                    dim: args.dim,
                    embedder_id: args.embedder_id.clone(),
                },
                (None, Some(QueryEmbedder::Minilm)) => {
                    QueryVectors::Embedder(plan::QueryEmbedder::Minilm {
                        model_dir: args.model_dir.clone(),
                        batch: args.embed_batch,
                        save: args.save_embeddings.clone(),
                    })
                }
                (None, None) => match embedder_plugin {
                    Some(plugin) => QueryVectors::Embedder(plan::QueryEmbedder::Plugin(plugin)),
                    None => bail!(
                        "--dataset needs its vectors: --embeddings FILE, --embedder minilm or \
                         --embedder-plugin FILE.wasm"
                    ),
                },
                _ => bail!("--dataset needs its vectors: --embeddings FILE or --embedder minilm"),
            };
            Ok(DataSource::Dataset {
                path: dataset.clone(),
                vectors,
                learning_split: args.learning_split.clone(),
                deployment_split: args.deployment_split.clone(),
            })
        }
        (None, None) => Ok(DataSource::Synthetic {
            embedder: embedder_plugin,
        }),
        (None, Some(_)) => bail!("--embeddings needs --dataset"),
    }
}

/// What the plan asks of this crate: the MiniLM and plugin embedders, the policy plugin, and
/// printing what happened along the way.
struct CliHooks<'a> {
    plan: &'a SimulationPlan,
    bars: &'a PhaseBars,
    /// The policy plugin added to the line-up, for its failures' causes.
    plugin: Option<PluginRun>,
}

impl PlanHooks for CliHooks<'_> {
    fn embed_dataset(
        &mut self,
        data: &RoutingDataset,
        embedder: &plan::QueryEmbedder,
        prior_files: &[PathBuf],
    ) -> Result<(Embeddings, String), HookError> {
        match embedder {
            plan::QueryEmbedder::Minilm {
                model_dir,
                batch,
                save,
            } => {
                let options = EmbedOptions {
                    model_dir: model_dir.as_deref(),
                    batch: *batch,
                    save: save.as_deref(),
                    priors: prior_files,
                };
                let (id, emb) = embed_queries(data, QueryEmbedder::Minilm, &options)?;
                Ok((emb, id))
            }
            plan::QueryEmbedder::Plugin(plugin) => Ok(simulate_plugins::embed_dataset(
                &plugin.path,
                &plugin.config,
                data,
            )?),
        }
    }

    fn synthetic_embedder(
        &mut self,
        plugin: &PluginRef,
        rows: usize,
    ) -> Result<HookEmbedder, HookError> {
        let (embedder, last) =
            simulate_plugins::plugin_embedder(&plugin.path, &plugin.config, rows)?;
        Ok(HookEmbedder {
            embedder,
            last_error: Some(last),
        })
    }

    fn check_vectors(
        &mut self,
        plugin: &PluginRef,
        embeddings: &Embeddings,
    ) -> Result<(), HookError> {
        Ok(simulate_plugins::check_spread(&plugin.path, embeddings)?)
    }

    fn add_policy_plugin(
        &mut self,
        experiment: &mut Experiment,
        plugin: &PolicyPlugin,
        linucb: Hyper,
    ) -> Result<String, HookError> {
        let start = match &plugin.pilot {
            Some(name) => PluginStart::Pilot(name.clone()),
            None => PluginStart::Plain(linucb),
        };
        let run = simulate_plugins::add_plugin_policy(
            experiment,
            &plugin.path,
            plugin.config.as_deref(),
            start,
        )?;
        let name = run.name.clone();
        self.plugin = Some(run);
        Ok(name)
    }

    fn event(&mut self, event: PlanEvent<'_>) -> Result<(), HookError> {
        match event {
            PlanEvent::PriorFitted { summary, seconds } => println!(
                "prior: fitted on {} learning queries ({} preference pairs, held-out pairwise \
                 accuracy {:.3} on {} pairs) in {seconds:.2} s",
                summary.queries,
                summary.train_pairs + summary.valid_pairs,
                summary.valid_accuracy,
                summary.valid_accuracy_pairs,
            ),
            PlanEvent::ArenaFitted {
                summary,
                warnings,
                seconds,
            } => {
                for w in warnings {
                    println!("note: arena prior: {w}");
                }
                println!(
                    "arena prior: fitted on {} prompts ({} preference pairs, held-out pairwise \
                     accuracy {:.3} on {} pairs) in {seconds:.2} s",
                    summary.queries,
                    summary.train_pairs + summary.valid_pairs,
                    summary.valid_accuracy,
                    summary.valid_accuracy_pairs,
                );
            }
            PlanEvent::TuneIgnoresPriorFiles => println!(
                "note: --tune ignores --prior files (they may have seen the validation rows); it \
                 tunes PILOT on a prior fitted on the fit part"
            ),
            PlanEvent::Tuned { report, seconds } => {
                self.bars.finish();
                for note in &report.notes {
                    println!("tune: {note}");
                }
                println!(
                    "tune: chosen settings (validation mean quality over budgets: start → chosen)"
                );
                for (name, before, after) in &report.gains {
                    let chosen = report
                        .rows
                        .iter()
                        .filter(|r| &r.policy == name && r.chosen)
                        .map(|r| format!("{} [{}]", r.settings, r.stage))
                        .collect::<Vec<_>>()
                        .join("; ");
                    println!("  {name:<20} {before:.4} → {after:.4}  {chosen}");
                }
                if let Some(dir) = &self.plan.out {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    report::write_text(&dir.join("tune.csv"), &tune_csv(&report.rows))?;
                }
                println!("tune: {seconds:.2} s");
            }
        }
        Ok(())
    }
}

/// `--scenario domain-shift`'s table and `domain-shift.csv`.
fn print_domain_shift(shift: &DomainShiftReport, out: Option<&Path>) -> anyhow::Result<()> {
    for task in &shift.skipped {
        println!("domain-shift: task {task}: nothing to hold out, skipped");
    }
    let (frac, reference) = (shift.budget, &shift.reference);
    println!(
        "domain-shift (prior fitted without the deployment task; budget {frac} of always \
         calling {reference}; {} seeds): quality in % of {reference} on the task",
        shift.seeds
    );
    let mut csv =
        String::from("scenario,policy,budget_frac,seeds,quality_pct,cost_pct,budget_held\n");
    for (task, row) in &shift.rows {
        let held = row.budget_held.map_or("", |h| if h { "yes" } else { "NO" });
        println!(
            "  domain-shift:{task:<18} {:<20} {:>7.1} % quality {:>7.1} % cost  held {held}",
            row.policy, row.quality_pct_of_best, row.cost_pct_of_best
        );
        csv.push_str(&format!(
            "domain-shift:{task},{},{},{},{:.3},{:.3},{held}\n",
            row.policy,
            row.budget_frac.map_or_else(String::new, |b| b.to_string()),
            row.seeds,
            row.quality_pct_of_best,
            row.cost_pct_of_best
        ));
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        report::write_text(&dir.join("domain-shift.csv"), &csv)?;
        println!("wrote {}/domain-shift.csv", dir.display());
    }
    Ok(())
}

/// The world scenarios' table, `scenarios.csv`, `summary.csv` and the regret curves with the
/// change marked.
fn print_worlds(
    experiment: &Experiment,
    worlds: &WorldsReport,
    out: Option<&Path>,
    started: Instant,
) -> anyhow::Result<()> {
    let grid = experiment.grid();
    let problem = experiment.problem();
    let frac = worlds.budget;
    println!(
        "pool: {} LLMs; deployment {} queries; budget {frac} of always calling {}; {} seeds; \
         quality in % of {} on the same queries",
        problem.arm_count(),
        problem.deployment().len(),
        problem.llms()[grid.reference_arm],
        grid.seeds,
        problem.llms()[grid.reference_arm],
    );
    println!(
        "before/after: the parts of the stream before and from the change; Δafter: after-part \
         quality minus the stationary run's (points); capt: Δafter / the offline optimum's \
         Δafter (in hindsight), capt~: the same against the offline knapsack over the kNN \
         predictions (offline-mckp-predicted); adopt/settle: queries after the change (mean over the seeds that got there); \
         spend↑: spend after the change / budget left at it"
    );
    print!("{}", world::world_table(&worlds.rows));
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let cost = grid.cost_policies.first().map_or("", |c| c.name.as_str());
        world::write_outputs(dir, &worlds.rows, cost)?;
        println!(
            "wrote {}/{{scenarios,summary,regret}}.csv and regret.svg (the change marked)",
            dir.display()
        );
    }
    println!(
        "{} episodes in {:.2} s",
        worlds.runs.len() * grid.policies.len() * grid.seeds as usize,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One progress bar per part of the run (tuning, the grid, the worlds), each appearing only
/// once the run has taken more than a second.
struct PhaseBars {
    started: Instant,
    current: Mutex<Option<(&'static str, LazyBar)>>,
}

impl PhaseBars {
    fn new(started: Instant) -> Self {
        Self {
            started,
            current: Mutex::new(None),
        }
    }

    fn tick(&self, phase: Phase<'_>, done: usize, total: usize) {
        let key = match phase {
            Phase::Tune(_) => "tune",
            Phase::Grid => "grid",
            Phase::Worlds => "worlds",
        };
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        if current.as_ref().is_none_or(|(k, _)| *k != key) {
            if let Some((_, bar)) = current.take() {
                bar.finish();
            }
            let started = if key == "tune" {
                Instant::now()
            } else {
                self.started
            };
            *current = Some((key, LazyBar::new(started)));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.tick(done, total);
        }
    }

    fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some((_, bar)) = current.take()
        {
            bar.finish();
        }
    }
}

/// A progress bar that appears only once a run has taken more than a second.
struct LazyBar {
    started: Instant,
    bar: OnceLock<ProgressBar>,
}

impl LazyBar {
    fn new(started: Instant) -> Self {
        Self {
            started,
            bar: OnceLock::new(),
        }
    }

    fn tick(&self, done: usize, total: usize) {
        if self.bar.get().is_none() && self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} episodes, {elapsed} (eta {eta})")
            {
                bar.set_style(style);
            }
            bar
        });
        bar.set_position(done as u64);
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

fn print_report(experiment: &Experiment, report: &ExperimentReport) {
    let problem = experiment.problem();
    println!(
        "pool: {} LLMs; learning {} queries, deployment {} queries, embedding dimension {}",
        problem.arm_count(),
        problem.learning().len(),
        problem.deployment().len(),
        problem.dim()
    );
    for note in &report.notes {
        println!("note: {note}");
    }
    println!();
    print!("{}", report::table(&report.rows));
    println!();
    println!("area under the quality-vs-budget curve (mean quality over the budget range):");
    for (scenario, policy, cost, auc) in &report.auc {
        println!("  {scenario:<10} {policy:<22} {cost:<10} {auc:.4}");
    }
}

/// The summary rows `name` would have had (every scenario, cost policy and budget of the grid),
/// to mark failed with `message` and its detailed `cause`.
fn failed_rows(
    experiment: &Experiment,
    name: &str,
    message: &str,
    cause: Option<&str>,
) -> report::FailedPolicy {
    let grid = experiment.grid();
    let mut cells = Vec::new();
    for scenario in grid.scenarios {
        for cost in grid.cost_policies {
            for &budget in grid.budget_fracs {
                cells.push((scenario.name().to_owned(), cost.name.clone(), budget));
            }
        }
    }
    report::FailedPolicy {
        policy: name.to_owned(),
        reason: match cause {
            Some(cause) => format!("{message} (cause: {cause})"),
            None => message.to_owned(),
        },
        cells,
    }
}

fn write_outputs(
    dir: &Path,
    report: &ExperimentReport,
    failed: &[report::FailedPolicy],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // A last `error` column: empty where the policy ran, the reason on a failed policy's rows.
    report::write_text(
        &dir.join("summary.csv"),
        &report::summary_csv_with_failures(&report.rows, failed),
    )?;
    let longest = report
        .curves
        .iter()
        .map(|c| c.mean.len())
        .max()
        .unwrap_or(1);
    report::write_text(
        &dir.join("regret.csv"),
        &report::regret_csv(&report.curves, (longest / 200).max(1)),
    )?;
    report::write_text(
        &dir.join("frontier.csv"),
        &report::frontier_csv(&report.auc),
    )?;
    // One panel per scenario and cost policy run.
    plot::frontier_svg(&dir.join("frontier.svg"), &report.rows)?;
    let budget = report
        .curves
        .iter()
        .map(|c| c.budget_frac)
        .min_by(|a, b| (a - 0.25).abs().total_cmp(&(b - 0.25).abs()))
        .unwrap_or(0.25);
    plot::regret_svg(&dir.join("regret.svg"), &report.curves, budget)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use pilot_sim::hyper::Family;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn plan_of(argv: &[&str]) -> anyhow::Result<SimulationPlan> {
        let cli = Cli::try_parse_from(std::iter::once("simulate").chain(argv.iter().copied()))?;
        plan_from_args(&cli.args)
    }

    #[test]
    fn no_arguments_is_the_default_synthetic_plan() {
        let plan = plan_of(&[]).unwrap();
        assert_eq!(
            plan,
            SimulationPlan::new(DataSource::Synthetic { embedder: None })
        );
    }

    #[test]
    fn arguments_land_in_the_plan_and_the_tuner_reads_its_context_dimension() {
        let plan = plan_of(&[
            "--dataset",
            "d.jsonl",
            "--embeddings",
            "d.f32",
            "--no-prior",
            "--context-dim",
            "9",
            "--budget",
            "0.3,0.6",
            "--scenario",
            "task-shift",
            "--cost-policy",
            "pacing,zcl",
            "--alpha",
            "0.4",
            "--pair-cost-settings",
            "pilot",
            "--tune",
            "--tune-seeds",
            "2",
        ])
        .unwrap();
        assert_eq!(plan.priors, PriorChoice::None);
        assert_eq!(plan.context_dim, 9);
        assert_eq!(plan.budgets, vec![0.3, 0.6]);
        assert_eq!(plan.world_budget, 0.3);
        assert_eq!(plan.seeds, 10);
        assert_eq!(plan.streams, vec![Scenario::TaskShift]);
        assert_eq!(
            plan.cost_policies,
            vec![CostPolicyKind::Pacing, CostPolicyKind::Zcl]
        );
        assert_eq!(plan.settings.overrides.alpha, Some(0.4));
        assert_eq!(plan.settings.paired, Some(Family::Pilot));
        let tune = plan.tune.unwrap();
        let config = plan.experiment_config().unwrap();
        assert_eq!(plan.tune_config(&tune, &config).context_dim, 9);
        assert_eq!(config.params.get("linucb").alpha, 0.4);
    }

    #[test]
    fn bad_arguments_are_refused_with_the_flag_named() {
        let err = plan_of(&["--budget", "0"]).unwrap_err();
        assert!(err.to_string().contains("--budget 0"), "{err}");
        let err = plan_of(&["--scenario", "new-llm,task-shift"]).unwrap_err();
        assert!(err.to_string().contains("run alone"), "{err}");
        let err = plan_of(&["--cost-policy", "bidding"]).unwrap_err();
        assert!(err.to_string().contains("--cost-policy bidding"), "{err}");
    }
}
