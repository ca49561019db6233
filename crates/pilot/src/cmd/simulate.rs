//! `pilot simulate`: replay routing data with bandit feedback and compare policies under
//! budgets. With no arguments it runs the built-in synthetic scenario (the main job).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use pilot_prior::{Expect, FitParams, Prior};
use pilot_sim::data::{SplitNames, problem_from_dataset};
use pilot_sim::experiment::{
    CostPolicyKind, Experiment, ExperimentConfig, ExperimentReport, LEARNING_PRIOR, PriorSource,
    base_contexts,
};
use pilot_sim::hyper::{Family, FamilyParams};
use pilot_sim::priors::{fit_judge_prior, fit_prior, prior_source, synthetic_dataset};
use pilot_sim::synthetic::{SyntheticConfig, generate};
use pilot_sim::tune::{ExtraPrior, FitPrior, TuneConfig, tune, tune_csv};
use pilot_sim::world::{self, WORLD_NAMES};
use pilot_sim::{Problem, Scenario, plot, report};

use super::simulate_minilm::{EmbedOptions, QueryEmbedder, embed_queries};
use super::simulate_plugins::{self, PluginStart};

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
    /// control; writes scenarios.csv).
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

/// Dimension of the hashing embedder in the synthetic scenario.
const SYNTHETIC_DIM: usize = 256;

/// Runs `pilot simulate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if (args.policy_plugin.is_some() || args.embedder_plugin.is_some())
        && !cfg!(feature = "plugins")
    {
        bail!(simulate_plugins::NO_PLUGINS);
    }
    let synthetic = args.dataset.is_none();
    let loaded = load_problem(&args)?;
    let mut config = experiment_config(&args, synthetic)?;
    let arena = load_arena(&args, &loaded)?;
    if args.tune {
        config.params = run_tuning(&args, &loaded, arena.as_ref(), &config)?;
        apply_overrides(&args, &mut config.params);
    }
    args.evidence.apply(&mut config.params);
    let mut priors = if args.no_prior {
        Vec::new()
    } else {
        load_priors(&args, &loaded)?
    };
    if let Some(prior) = &arena {
        priors.push(prior_source(ARENA, prior, &loaded.problem)?);
    }
    if world_names(&args).iter().any(|n| n == DOMAIN_SHIFT) {
        run_domain_shift(&args, &loaded, arena.as_ref(), &config)?;
        if world_names(&args).iter().all(|n| n == DOMAIN_SHIFT) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let base = base_contexts(&priors, &loaded.problem, args.context_dim)?;
    let linucb = config.params.get(Family::LinUcb.name());
    let world_inputs = (!world_names(&args).is_empty()).then(|| WorldInputs {
        problem: loaded.problem.clone(),
        base: base.clone(),
        priors: priors.clone(),
        config: config.clone(),
    });
    let mut experiment = Experiment::new(loaded.problem, base, priors, config)?;
    if let Some(path) = &args.policy_plugin {
        let start = match &args.plugin_prior {
            Some(name) => PluginStart::Pilot(name.clone()),
            None => PluginStart::Plain(linucb),
        };
        simulate_plugins::add_plugin_policy(
            &mut experiment,
            path,
            args.plugin_config.as_deref(),
            start,
        )?;
    }
    if let Some(inputs) = world_inputs {
        return run_worlds(&args, &mut experiment, inputs, started);
    }
    let grid_cells = experiment.grid().cell_count();
    let bar = LazyBar::new(started);
    let report = experiment.run(&|done, total| bar.tick(done, total))?;
    bar.finish();
    print_report(&experiment, &report);
    super::simulate_log::write_log(&args.log, &experiment)?;
    if let Some(dir) = &args.out {
        write_outputs(dir, &report)?;
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
    args.evidence.enforce(synthetic, &report.rows)?;
    Ok(ExitCode::SUCCESS)
}

/// What a world run rebuilds its per-scenario line-ups from.
struct WorldInputs {
    problem: Problem,
    base: pilot_sim::ContextTable,
    priors: Vec<PriorSource>,
    config: ExperimentConfig,
}

/// The world-scenario names among `--scenario`.
fn world_names(args: &Args) -> Vec<String> {
    args.scenarios
        .iter()
        .filter(|s| WORLD_NAMES.contains(&s.as_str()))
        .cloned()
        .collect()
}

/// `--scenario new-llm,…`: every policy (plus PILOT with the discount) in each changing world
/// and the stationary control, at the first budget.
fn run_worlds(
    args: &Args,
    experiment: &mut Experiment,
    inputs: WorldInputs,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let names = world_names(args);
    if args.discount < 1.0 {
        world::add_discounted_pilots(experiment, args.discount)?;
    }
    let scenarios = world::expand(&names, experiment.problem())?;
    // A new LLM has no learning data: its runs start from priors without its vector (the
    // mean of the others), except the arena prior, fitted on judge scores from elsewhere.
    let mut extra = Vec::new();
    let mut runs = Vec::new();
    for sc in scenarios {
        let mut grid = 0;
        if let world::Change::NewLlm { arm } = sc.change {
            let mut priors = inputs.priors.clone();
            for p in priors.iter_mut().filter(|p| p.name != ARENA) {
                if let Some(v) = p.vectors.get_mut(arm) {
                    *v = None;
                }
            }
            let mut e = Experiment::new(
                inputs.problem.clone(),
                inputs.base.clone(),
                priors,
                inputs.config.clone(),
            )?;
            if args.discount < 1.0 {
                world::add_discounted_pilots(&mut e, args.discount)?;
            }
            extra.push(e);
            grid = extra.len();
        }
        runs.push((sc, grid));
    }
    let frac = args.budgets.first().copied().unwrap_or(0.25);
    let grids: Vec<_> = std::iter::once(experiment.grid())
        .chain(extra.iter().map(Experiment::grid))
        .collect();
    let grid = &grids[0];
    let bar = LazyBar::new(started);
    let rows = world::run_worlds(&grids, &runs, frac, &|done, total| bar.tick(done, total))?;
    bar.finish();
    let problem = experiment.problem();
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
         Δafter; adopt/settle: queries after the change (mean over the seeds that got there); \
         spend↑: spend after the change / budget left at it"
    );
    print!("{}", world::world_table(&rows));
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        report::write_text(&dir.join("scenarios.csv"), &world::world_csv(&rows))?;
        println!("wrote {}/scenarios.csv", dir.display());
    }
    println!(
        "{} episodes in {:.2} s",
        runs.len() * grid.policies.len() * grid.seeds as usize,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The world scenario whose deployment task the learning prior never saw.
const DOMAIN_SHIFT: &str = "domain-shift";

/// `--scenario domain-shift`: each task held out in turn: the prior (and the kNN router and
/// cost estimates) see the learning rows of the other tasks only, deployment is the held-out
/// task's deployment rows; the `--arena` prior, fitted elsewhere, is unchanged. Every policy
/// (plus PILOT with the discount) at the first budget, the standard order.
fn run_domain_shift(
    args: &Args,
    loaded: &Loaded,
    arena: Option<&Prior>,
    config: &ExperimentConfig,
) -> anyhow::Result<()> {
    let frac = args.budgets.first().copied().unwrap_or(0.25);
    let data = &loaded.dataset;
    let reference = config
        .reference_llm
        .clone()
        .unwrap_or_else(|| loaded.problem.llms()[loaded.problem.best_single_llm()].clone());
    let params = prior_params(args, &loaded.embedder_id, args.dataset.is_none());
    let learning: std::collections::HashSet<usize> = loaded.learning_rows.iter().copied().collect();
    let mut table = Vec::new();
    for task in data.tasks() {
        let fit_rows: Vec<usize> = loaded
            .learning_rows
            .iter()
            .copied()
            .filter(|&i| data.rows[i].task != task)
            .collect();
        let deploy_rows: Vec<usize> = (0..data.rows.len())
            .filter(|&i| !learning.contains(&i) && data.rows[i].task == task)
            .filter(|&i| data.rows[i].split == args.deployment_split || args.dataset.is_none())
            .collect();
        if fit_rows.is_empty() || deploy_rows.is_empty() {
            println!("domain-shift: task {task}: nothing to hold out, skipped");
            continue;
        }
        let problem =
            pilot_sim::data::problem_from_rows(data, &loaded.embeddings, &fit_rows, &deploy_rows)?;
        let (prior, _) = fit_prior(
            data,
            &loaded.embeddings,
            &fit_rows,
            &params,
            args.tie_weight,
        )?;
        let mut priors = vec![prior_source(LEARNING_PRIOR, &prior, &problem)?];
        if let Some(a) = arena {
            priors.push(prior_source(ARENA, a, &problem)?);
        }
        let base = base_contexts(&priors, &problem, args.context_dim)?;
        let task_config = ExperimentConfig {
            budgets: vec![frac],
            scenarios: vec![Scenario::Standard],
            reference_llm: Some(reference.clone()),
            ..config.clone()
        };
        let mut experiment = Experiment::new(problem, base, priors, task_config)?;
        if args.discount < 1.0 {
            world::add_discounted_pilots(&mut experiment, args.discount)?;
        }
        let report = experiment.run(&|_, _| {})?;
        for row in report.rows {
            if row.budget_frac == Some(frac) || row.budget_frac.is_none() {
                table.push((task.clone(), row));
            }
        }
    }
    println!(
        "domain-shift (prior fitted without the deployment task; budget {frac} of always \
         calling {reference}; {} seeds): quality in % of {reference} on the task",
        config.seeds
    );
    let mut csv =
        String::from("scenario,policy,budget_frac,seeds,quality_pct,cost_pct,budget_held\n");
    for (task, row) in &table {
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
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        report::write_text(&dir.join("domain-shift.csv"), &csv)?;
        println!("wrote {}/domain-shift.csv", dir.display());
    }
    Ok(())
}

/// Name of the judge-score prior (its policies are `pilot[arena]`, `prior-only[arena]`).
const ARENA: &str = "arena";

/// Fits the `--arena` prior, if asked for.
fn load_arena(args: &Args, loaded: &Loaded) -> anyhow::Result<Option<Prior>> {
    let (Some(path), Some(emb_path)) = (&args.arena, &args.arena_embeddings) else {
        return Ok(None);
    };
    let started = Instant::now();
    let judge = pilot_data::JudgeDataset::load(path)?;
    let emb = pilot_data::Embeddings::load(emb_path, args.dim)?;
    if emb.dim() != loaded.problem.dim() {
        bail!(
            "{} has dimension {} but the dataset's embeddings have {}",
            emb_path.display(),
            emb.dim(),
            loaded.problem.dim()
        );
    }
    let params = prior_params(args, &loaded.embedder_id, false);
    let (prior, summary, warnings) = fit_judge_prior(
        &judge,
        &emb,
        loaded.problem.llms(),
        &params,
        args.tie_weight,
    )?;
    for w in warnings {
        println!("note: arena prior: {w}");
    }
    println!(
        "arena prior: fitted on {} prompts ({} preference pairs, held-out pairwise accuracy \
         {:.3} on {} pairs) in {:.2} s",
        summary.queries,
        summary.train_pairs + summary.valid_pairs,
        summary.valid_accuracy,
        summary.valid_accuracy_pairs,
        started.elapsed().as_secs_f64()
    );
    Ok(Some(prior))
}

/// Fit settings of a prior fitted here; the synthetic demo's are lighter so that
/// `pilot simulate` with no arguments stays within a few seconds.
fn prior_params(args: &Args, embedder_id: &str, synthetic: bool) -> FitParams {
    let mut params = FitParams {
        dim: args.prior_dim,
        seed: 0,
        embedder_id: embedder_id.to_owned(),
        ..FitParams::default()
    };
    if synthetic {
        params.contrastive_epochs = 4;
        params.bt_max_epochs = 120;
    }
    params
}

/// Tunes on the learning split and prints what was chosen.
fn run_tuning(
    args: &Args,
    loaded: &Loaded,
    arena: Option<&Prior>,
    config: &ExperimentConfig,
) -> anyhow::Result<FamilyParams> {
    let started = Instant::now();
    let params = prior_params(args, &loaded.embedder_id, args.dataset.is_none());
    let fit = |rows: &[usize]| -> pilot_sim::Result<Prior> {
        fit_prior(
            &loaded.dataset,
            &loaded.embeddings,
            rows,
            &params,
            args.tie_weight,
        )
        .map(|(prior, _)| prior)
    };
    let extra: Vec<ExtraPrior<'_>> = arena
        .map(|prior| ExtraPrior {
            name: ARENA.to_owned(),
            prior,
        })
        .into_iter()
        .collect();
    let tune_config = TuneConfig {
        fit_fraction: args.tune_fit_fraction,
        seeds: args.tune_seeds.max(1),
        budgets: config.budgets.clone(),
        cost_policies: config.cost_policies.clone(),
        threads: config.threads,
        knn_k: config.knn_k,
        reference_llm: config.reference_llm.clone(),
        context_dim: args.context_dim,
        ..TuneConfig::default()
    };
    let bar = LazyBar::new(started);
    let learning_fit: Option<&FitPrior<'_>> = if args.no_prior { None } else { Some(&fit) };
    if !args.priors.is_empty() {
        println!(
            "note: --tune ignores --prior files (they may have seen the validation rows); it \
             tunes PILOT on a prior fitted on the fit part"
        );
    }
    let report = tune(
        &loaded.dataset,
        &loaded.embeddings,
        &loaded.learning_rows,
        learning_fit,
        &extra,
        &tune_config,
        &|_, done, total| bar.tick(done, total),
    )?;
    bar.finish();
    for note in &report.notes {
        println!("tune: {note}");
    }
    println!("tune: chosen settings (validation mean quality over budgets: start → chosen)");
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
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        report::write_text(&dir.join("tune.csv"), &tune_csv(&report.rows))?;
    }
    println!("tune: {:.2} s", started.elapsed().as_secs_f64());
    Ok(report.params)
}

/// The problem, and the same data in pilot-data's form for fitting a prior.
struct Loaded {
    problem: Problem,
    dataset: pilot_data::RoutingDataset,
    embeddings: pilot_data::Embeddings,
    learning_rows: Vec<usize>,
    embedder_id: String,
}

fn load_problem(args: &Args) -> anyhow::Result<Loaded> {
    match (&args.dataset, &args.embeddings) {
        (Some(dataset), embeddings) => {
            let data = pilot_data::RoutingDataset::load(dataset)?;
            let (emb, embedder_id) = match (embeddings, args.embedder) {
                (Some(path), None) => (
                    pilot_data::Embeddings::load(path, args.dim)?,
                    args.embedder_id
                        .clone()
                        .unwrap_or_else(|| pilot_data::default_embedder_id(path, args.dim)),
                ),
                (None, Some(embedder)) => {
                    let options = EmbedOptions {
                        model_dir: args.model_dir.as_deref(),
                        batch: args.embed_batch,
                        save: args.save_embeddings.as_deref(),
                        priors: &args.priors,
                    };
                    let (id, emb) = embed_queries(&data, embedder, &options)?;
                    (emb, id)
                }
                (None, None) => match &args.embedder_plugin {
                    Some(plugin) => {
                        simulate_plugins::embed_dataset(plugin, &args.embedder_config, &data)?
                    }
                    None => bail!(
                        "--dataset needs its vectors: --embeddings FILE, --embedder minilm or \
                         --embedder-plugin FILE.wasm"
                    ),
                },
                _ => bail!("--dataset needs its vectors: --embeddings FILE or --embedder minilm"),
            };
            let splits = SplitNames {
                learning: args.learning_split.clone(),
                deployment: args.deployment_split.clone(),
            };
            let problem = problem_from_dataset(&data, &emb, &splits)?;
            let learning_rows = data.split_indices(&args.learning_split);
            Ok(Loaded {
                problem,
                dataset: data,
                embeddings: emb,
                learning_rows,
                embedder_id,
            })
        }
        (None, None) => {
            let mut embedder: Box<dyn pilot_core::Embedder> = match &args.embedder_plugin {
                Some(path) => simulate_plugins::plugin_embedder(path, &args.embedder_config)?,
                None => Box::new(
                    pilot_embed::HashingEmbedder::new(SYNTHETIC_DIM)
                        .map_err(|e| anyhow::anyhow!("hashing embedder: {e}"))?,
                ),
            };
            let embedder_id = embedder.id().to_owned();
            let synthetic = generate(&SyntheticConfig::default(), &mut *embedder)?;
            let (dataset, embeddings, learning_rows) = synthetic_dataset(&synthetic)?;
            Ok(Loaded {
                problem: synthetic.problem,
                dataset,
                embeddings,
                learning_rows,
                embedder_id,
            })
        }
        (None, Some(_)) => bail!("--embeddings needs --dataset"),
    }
}

fn experiment_config(args: &Args, synthetic: bool) -> anyhow::Result<ExperimentConfig> {
    let mut config = ExperimentConfig::default();
    if !args.budgets.is_empty() {
        if let Some(b) = args.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            bail!("--budget {b}: a budget fraction must be finite and > 0");
        }
        config.budgets = args.budgets.clone();
    }
    config.seeds = args.seeds.unwrap_or(if synthetic { 5 } else { 10 });
    if config.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let streams: Vec<&String> = args
        .scenarios
        .iter()
        .filter(|s| !WORLD_NAMES.contains(&s.as_str()))
        .collect();
    config.scenarios = if streams.len() < args.scenarios.len() {
        if !streams.is_empty() {
            bail!("world scenarios (stationary, new-llm, …) run alone on the standard order");
        }
        vec![Scenario::Standard]
    } else if args.scenarios.is_empty() {
        if synthetic {
            vec![Scenario::Standard]
        } else {
            vec![Scenario::Standard, Scenario::TaskShift]
        }
    } else {
        args.scenarios
            .iter()
            .map(|s| {
                Scenario::parse(s).with_context(|| {
                    format!(
                        "--scenario {s}: expected standard, task-shift or one of {}",
                        WORLD_NAMES.join(", ")
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    config.cost_policies = args
        .cost_policies
        .iter()
        .map(|s| {
            CostPolicyKind::parse(s).with_context(|| {
                format!("--cost-policy {s}: expected {}", CostPolicyKind::expected())
            })
        })
        .collect::<anyhow::Result<_>>()?;
    config.threads = args.threads.max(1);
    config.knn_k = args.knn_k;
    if args.untuned {
        config.params = FamilyParams::untuned();
    }
    apply_overrides(args, &mut config.params);
    config.params.check()?;
    config.reference_llm = args.reference_llm.clone();
    Ok(config)
}

/// Explicit hyperparameter flags win over defaults and tuning.
fn apply_overrides(args: &Args, params: &mut FamilyParams) {
    if let Some(a) = args.alpha {
        params.adjust(&[Family::Pilot, Family::LinUcb], |h| h.alpha = a);
    }
    if let Some(l) = args.lambda {
        params.adjust(
            &[Family::LinUcb, Family::LinTs, Family::EpsilonGreedy],
            |h| h.lambda = l,
        );
    }
    if let Some(l) = args.pilot_lambda {
        params.adjust(&[Family::Pilot], |h| h.lambda = l);
    }
    if let Some(v) = args.ts_scale {
        params.adjust(&[Family::LinTs], |h| h.ts_scale = v);
    }
    if let Some(e) = args.epsilon {
        params.adjust(&[Family::EpsilonGreedy], |h| h.epsilon = e);
    }
}

/// The priors PILOT starts from: the `--prior` files, or one fitted here on the learning
/// split's observed qualities (RouterBench-style preferences).
fn load_priors(args: &Args, loaded: &Loaded) -> anyhow::Result<Vec<PriorSource>> {
    let problem = &loaded.problem;
    if args.priors.is_empty() {
        let started = Instant::now();
        let params = prior_params(args, &loaded.embedder_id, args.dataset.is_none());
        let (prior, summary) = fit_prior(
            &loaded.dataset,
            &loaded.embeddings,
            &loaded.learning_rows,
            &params,
            args.tie_weight,
        )?;
        println!(
            "prior: fitted on {} learning queries ({} preference pairs, held-out pairwise \
             accuracy {:.3} on {} pairs) in {:.2} s",
            summary.queries,
            summary.train_pairs + summary.valid_pairs,
            summary.valid_accuracy,
            summary.valid_accuracy_pairs,
            started.elapsed().as_secs_f64()
        );
        return Ok(vec![prior_source(LEARNING_PRIOR, &prior, problem)?]);
    }
    // A prior file carries the id of the embedder it was fitted on; when this run chose the
    // embedder itself, vectors of another embedder would be meaningless, so refuse them.
    let expect = Expect {
        embedder_id: (args.embedder_plugin.is_some() || args.embedder.is_some())
            .then_some(loaded.embedder_id.as_str()),
        d_in: Some(problem.dim()),
    };
    args.priors
        .iter()
        .map(|path| {
            let prior = Prior::load(path, expect)?;
            let name = path.file_stem().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            prior_source(&name, &prior, problem)
                .with_context(|| format!("prior file {}", path.display()))
        })
        .collect()
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

fn write_outputs(dir: &Path, report: &ExperimentReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    report::write_text(&dir.join("summary.csv"), &report::summary_csv(&report.rows))?;
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
