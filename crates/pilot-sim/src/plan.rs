//! A simulation plan: plain data saying what a simulation run loads, fits, tunes and replays
//! (`pilot simulate` turns its arguments into one), and the code that carries it out.
//!
//! [`SimulationPlan`] is serde-serializable: the data source, the priors, the line-up's
//! settings, cost policies, budgets, seeds, scenarios, tuning and output options. Running it
//! ([`SimulationPlan::run`]) loads the data, fits the priors, tunes if asked (the tuner's
//! [`TuneConfig`] comes from the same plan, [`SimulationPlan::tune_config`]), assembles the
//! experiment and replays it; the base contexts of the run and of the tuner come from one
//! rule, [`SimulationPlan::base_contexts`]. What this crate cannot do itself — embedding with
//! a model or a WebAssembly plugin, running a policy plugin — the caller does through
//! [`PlanHooks`], so `pilot-sim` stays free of the plugin host and the model runtime. Nothing
//! here prints: what happened along the way arrives at [`PlanHooks::event`] and in the
//! returned [`PlanOutcome`].

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use pilot_data::{Embeddings, RoutingDataset};
use pilot_prior::{Expect, FitParams, FitSummary, Prior};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::data::{SplitNames, problem_from_dataset, problem_from_rows};
use crate::experiment::{
    CostPolicyKind, Experiment, ExperimentConfig, ExperimentReport, LEARNING_PRIOR, PriorSource,
};
use crate::hyper::{Family, FamilyParams, Hyper};
use crate::priors::{fit_judge_prior, fit_prior, joining_vectors, prior_source, synthetic_dataset};
use crate::summary::SummaryRow;
use crate::synthetic::{SyntheticConfig, generate};
use crate::tune::{ExtraPrior, FitPrior, TuneConfig, TuneReport, tune};
use crate::world::{self, WorldRow, WorldScenario};
use crate::{ContextTable, Problem, Scenario, SimError};

/// Dimension of the hashing embedder of the synthetic scenario.
pub const SYNTHETIC_DIM: usize = 256;

/// Name of the judge-score prior (its policies are `pilot[arena]`, `prior-only[arena]`).
pub const ARENA: &str = "arena";

/// The world scenario whose deployment task the learning prior never saw.
pub const DOMAIN_SHIFT: &str = "domain-shift";

/// Everything a simulation run is made of, as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationPlan {
    /// Where the queries, qualities, costs and vectors come from.
    pub data: DataSource,
    /// The priors PILOT starts from.
    pub priors: PriorChoice,
    /// Fit settings of every prior fitted here (learning, tuning, arena, domain shift).
    pub prior_fit: PriorFit,
    /// A prior fitted on judge scores, added as `pilot[arena]` / `prior-only[arena]`.
    pub arena: Option<ArenaSource>,
    /// Context dimension of the bandits without a prior (the random projection's).
    pub context_dim: usize,
    /// Budgets as fractions of the reference LLM's always-on cost.
    pub budgets: Vec<f64>,
    /// Budget of the world scenarios (one budget, against the stationary control).
    pub world_budget: f64,
    /// Seeds `0..seeds` per cell.
    pub seeds: u64,
    /// Stream orders of the grid.
    pub streams: Vec<Scenario>,
    /// World scenarios (`stationary`, `new-llm`, …, `domain-shift`); when any is given, they
    /// run instead of the grid.
    pub worlds: Vec<String>,
    /// Discount γ of the extra `pilot-γ` policies in world scenarios (1: none).
    pub discount: f32,
    /// Online cost policies.
    pub cost_policies: Vec<CostPolicyKind>,
    /// Worker threads.
    pub threads: usize,
    /// Neighbours of the kNN router and the cost estimator.
    pub knn_k: usize,
    /// The LLM whose always-on cost is budget fraction 1 (`None`: best mean quality).
    pub reference_llm: Option<String>,
    /// The line-up's settings.
    pub settings: Settings,
    /// Tune every family's settings on the learning split first.
    pub tune: Option<TunePlan>,
    /// A policy plugin to run next to the built-in policies (carried out by the hooks).
    pub policy_plugin: Option<PolicyPlugin>,
    /// Directory the caller writes the results to.
    pub out: Option<PathBuf>,
}

/// Where the data comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSource {
    /// The built-in synthetic scenario ([`SyntheticConfig::default`]).
    Synthetic {
        /// An embedder plugin for its queries (`None`: the hashing embedder of
        /// [`SYNTHETIC_DIM`] values).
        embedder: Option<PluginRef>,
    },
    /// A routing dataset (JSON lines, RouterBench format).
    Dataset {
        /// The dataset file.
        path: PathBuf,
        /// Where its vectors come from.
        vectors: QueryVectors,
        /// Split name of the learning rows.
        learning_split: String,
        /// Split name of the deployment rows.
        deployment_split: String,
    },
}

/// Where a dataset's query vectors come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum QueryVectors {
    /// A raw little-endian f32 file, `dim` values per row.
    File {
        /// The file.
        path: PathBuf,
        /// Values per row.
        dim: usize,
        /// Id of the embedder that produced it (`None`: guessed from the file name).
        embedder_id: Option<String>,
    },
    /// Embedding the `query` fields here (by the hooks).
    Embedder(QueryEmbedder),
}

/// An embedder the hooks run on a dataset's queries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum QueryEmbedder {
    /// The native all-MiniLM-L6-v2.
    Minilm {
        /// Model directory (`None`: the default one).
        model_dir: Option<PathBuf>,
        /// Queries per encoder call.
        batch: usize,
        /// Also write the vectors here.
        save: Option<PathBuf>,
    },
    /// An embedder plugin.
    Plugin(PluginRef),
}

/// A WebAssembly plugin and its configuration string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// The component file.
    pub path: PathBuf,
    /// Its configuration string.
    pub config: String,
}

/// The priors PILOT starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum PriorChoice {
    /// No prior: no PILOT, the bandits read a random projection of
    /// [`SimulationPlan::context_dim`].
    None,
    /// One prior fitted here on the learning split (named [`LEARNING_PRIOR`]).
    Learning,
    /// Prior files (each gives a PILOT named after its file stem).
    Files(Vec<PathBuf>),
}

/// Fit settings of a prior fitted here.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorFit {
    /// Shared-space dimension (the context has one more).
    pub dim: usize,
    /// Weight of tied pairs.
    pub tie_weight: f64,
}

impl Default for PriorFit {
    fn default() -> Self {
        Self {
            dim: 16,
            tie_weight: 0.2,
        }
    }
}

/// Judge scores and their prompts' vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArenaSource {
    /// Judge scores (arena-bench-300.jsonl format).
    pub judge: PathBuf,
    /// Base embeddings of its prompts (raw f32).
    pub embeddings: PathBuf,
    /// Values per row.
    pub dim: usize,
}

/// The line-up's settings: a starting point and explicit values that win over it and over
/// tuning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Start from the settings of before tuning ([`FamilyParams::untuned`]) instead of the
    /// tuned defaults.
    pub untuned: bool,
    /// Explicit values.
    pub overrides: Overrides,
    /// Run PILOT and the prior alone with the cost-policy settings of this side of the pair.
    pub paired: Option<Family>,
}

/// Explicit hyperparameters (each `None`: keep).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// α of LinUCB and PILOT.
    pub alpha: Option<f32>,
    /// λ of LinUCB, LinTS and ε-greedy.
    pub lambda: Option<f32>,
    /// PILOT's λ.
    pub pilot_lambda: Option<f32>,
    /// LinTS posterior scale.
    pub ts_scale: Option<f32>,
    /// ε-greedy rate.
    pub epsilon: Option<f32>,
}

impl Overrides {
    /// Sets the given values in `params`.
    pub fn apply(&self, params: &mut FamilyParams) {
        if let Some(a) = self.alpha {
            params.adjust(&[Family::Pilot, Family::LinUcb], |h| h.alpha = a);
        }
        if let Some(l) = self.lambda {
            params.adjust(
                &[Family::LinUcb, Family::LinTs, Family::EpsilonGreedy],
                |h| h.lambda = l,
            );
        }
        if let Some(l) = self.pilot_lambda {
            params.adjust(&[Family::Pilot], |h| h.lambda = l);
        }
        if let Some(v) = self.ts_scale {
            params.adjust(&[Family::LinTs], |h| h.ts_scale = v);
        }
        if let Some(e) = self.epsilon {
            params.adjust(&[Family::EpsilonGreedy], |h| h.epsilon = e);
        }
    }
}

/// How to tune (the rest of [`TuneConfig`] comes from the plan).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunePlan {
    /// Seeds per candidate.
    pub seeds: u64,
    /// Fraction of each task's learning rows the tuning prior is fitted on.
    pub fit_fraction: f64,
}

/// A policy plugin in the run, carried out by [`PlanHooks::add_policy_plugin`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPlugin {
    /// The component file.
    pub path: PathBuf,
    /// Its configuration string (`None`: the hooks' default).
    pub config: Option<String>,
    /// Start it as the PILOT of this name (`Some(None)`: the first PILOT); `None`: plain, at
    /// LinUCB's settings on the base contexts.
    pub pilot: Option<Option<String>>,
}

impl SimulationPlan {
    /// The defaults for `data`: four budgets, 5 seeds and the standard order on the synthetic
    /// scenario, 10 seeds and both orders on a dataset; a learning prior; pacing.
    pub fn new(data: DataSource) -> Self {
        let synthetic = matches!(data, DataSource::Synthetic { .. });
        let config = ExperimentConfig::default();
        Self {
            data,
            priors: PriorChoice::Learning,
            prior_fit: PriorFit::default(),
            arena: None,
            context_dim: crate::experiment::DEFAULT_CONTEXT_DIM,
            budgets: config.budgets,
            world_budget: 0.25,
            seeds: if synthetic { 5 } else { 10 },
            streams: if synthetic {
                vec![Scenario::Standard]
            } else {
                vec![Scenario::Standard, Scenario::TaskShift]
            },
            worlds: Vec::new(),
            discount: 0.99,
            cost_policies: config.cost_policies,
            threads: config.threads,
            knn_k: config.knn_k,
            reference_llm: None,
            settings: Settings::default(),
            tune: None,
            policy_plugin: None,
            out: None,
        }
    }

    /// Whether the data is the synthetic scenario.
    pub fn synthetic(&self) -> bool {
        matches!(self.data, DataSource::Synthetic { .. })
    }

    /// The experiment's configuration before tuning: the plan's grid at the starting settings
    /// with the explicit values applied.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for a budget that is not finite and positive, no seeds, or bad
    /// settings (named).
    pub fn experiment_config(&self) -> crate::Result<ExperimentConfig> {
        if let Some(b) = self.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(SimError::invalid(format!(
                "budget {b}: a budget fraction must be finite and > 0"
            )));
        }
        if self.seeds == 0 {
            return Err(SimError::invalid("seeds must be at least 1"));
        }
        let mut params = if self.settings.untuned {
            FamilyParams::untuned()
        } else {
            FamilyParams::tuned()
        };
        self.settings.overrides.apply(&mut params);
        params.check()?;
        Ok(ExperimentConfig {
            budgets: self.budgets.clone(),
            seeds: self.seeds,
            scenarios: if self.worlds.is_empty() {
                self.streams.clone()
            } else {
                vec![Scenario::Standard]
            },
            cost_policies: self.cost_policies.clone(),
            threads: self.threads.max(1),
            knn_k: self.knn_k,
            params,
            reference_llm: self.reference_llm.clone(),
        })
    }

    /// The tuner's configuration: the plan's budgets, cost policies, threads, neighbours,
    /// reference LLM and context dimension, with `tune`'s seeds and fit fraction.
    pub fn tune_config(&self, tune: &TunePlan, config: &ExperimentConfig) -> TuneConfig {
        TuneConfig {
            fit_fraction: tune.fit_fraction,
            seeds: tune.seeds.max(1),
            budgets: config.budgets.clone(),
            cost_policies: config.cost_policies.clone(),
            threads: config.threads,
            knn_k: config.knn_k,
            reference_llm: config.reference_llm.clone(),
            context_dim: self.context_dim,
            ..TuneConfig::default()
        }
    }

    /// The contexts LinUCB, LinTS, ε-greedy and random read in this plan: the one rule
    /// ([`crate::experiment::base_contexts`] at [`context_dim`](Self::context_dim)) for the
    /// run, its world and domain-shift line-ups, and the tuner (through
    /// [`tune_config`](Self::tune_config)).
    ///
    /// # Errors
    /// As [`crate::experiment::random_projection`].
    pub fn base_contexts(
        &self,
        priors: &[PriorSource],
        problem: &Problem,
    ) -> crate::Result<ContextTable> {
        crate::experiment::base_contexts(priors, problem, self.context_dim)
    }

    /// Fit settings of a prior fitted here for `embedder_id`; the synthetic demo's are lighter
    /// so that it stays within a few seconds (`light`).
    pub fn fit_params(&self, embedder_id: &str, light: bool) -> FitParams {
        let mut params = FitParams {
            dim: self.prior_fit.dim,
            seed: 0,
            embedder_id: embedder_id.to_owned(),
            ..FitParams::default()
        };
        if light {
            params.contrastive_epochs = 4;
            params.bt_max_epochs = 120;
        }
        params
    }

    /// Loads, fits, tunes and assembles ([`prepare`](Self::prepare)), then runs the domain
    /// shift, the world scenarios or the grid, as the plan says.
    ///
    /// # Errors
    /// The first failing step, a hook's error included.
    pub fn run(
        &self,
        hooks: &mut dyn PlanHooks,
        progress: &(dyn Fn(Phase, usize, usize) + Sync),
    ) -> Result<PlanOutcome, PlanError> {
        let prepared = self.prepare(hooks, progress)?;
        let domain_shift = if self.worlds.iter().any(|n| n == DOMAIN_SHIFT) {
            Some(prepared.domain_shift()?)
        } else {
            None
        };
        if !self.worlds.is_empty() && self.worlds.iter().all(|n| n == DOMAIN_SHIFT) {
            return Ok(PlanOutcome {
                domain_shift,
                simulation: None,
                results: Results::None,
            });
        }
        let mut simulation = prepared.assemble(hooks)?;
        let results = if self.worlds.is_empty() {
            let isolate: Vec<&str> = simulation.plugin.iter().map(String::as_str).collect();
            let (report, failures) = simulation
                .experiment
                .run_isolating(&isolate, &|done, total| progress(Phase::Grid, done, total))?;
            Results::Grid { report, failures }
        } else {
            Results::Worlds(simulation.run_worlds(&|done, total| {
                progress(Phase::Worlds, done, total);
            })?)
        };
        Ok(PlanOutcome {
            domain_shift,
            simulation: Some(simulation),
            results,
        })
    }

    /// Loads the data, fits the arena prior, tunes (if asked) and fits or loads the priors.
    ///
    /// # Errors
    /// The first failing step.
    pub fn prepare<'p>(
        &'p self,
        hooks: &mut dyn PlanHooks,
        progress: &(dyn Fn(Phase, usize, usize) + Sync),
    ) -> Result<Prepared<'p>, PlanError> {
        let loaded = self.load(hooks)?;
        let mut config = self.experiment_config()?;
        let (arena, judge) = match self.fit_arena(&loaded, hooks)? {
            Some((prior, judge)) => (Some(prior), Some(judge)),
            None => (None, None),
        };
        if let Some(tune) = &self.tune {
            config.params =
                self.run_tuning(tune, &loaded, arena.as_ref(), &config, hooks, progress)?;
            self.settings.overrides.apply(&mut config.params);
        }
        if let Some(side) = self.settings.paired {
            config.params.paired = Some(side);
        }
        let mut priors = match &self.priors {
            PriorChoice::None => Vec::new(),
            _ => self.load_priors(&loaded, judge.as_ref(), hooks)?,
        };
        if let Some(prior) = &arena {
            priors.push(prior_source(ARENA, prior, &loaded.problem)?);
        }
        Ok(Prepared {
            plan: self,
            loaded,
            config,
            arena,
            priors,
        })
    }

    /// The problem, and the same data in pilot-data's form for fitting a prior.
    fn load(&self, hooks: &mut dyn PlanHooks) -> Result<Loaded, PlanError> {
        match &self.data {
            DataSource::Dataset {
                path,
                vectors,
                learning_split,
                deployment_split,
            } => {
                let data = RoutingDataset::load(path)?;
                let (emb, embedder_id) = match vectors {
                    QueryVectors::File {
                        path,
                        dim,
                        embedder_id,
                    } => (
                        Embeddings::load(path, *dim)?,
                        embedder_id
                            .clone()
                            .unwrap_or_else(|| pilot_data::default_embedder_id(path, *dim)),
                    ),
                    QueryVectors::Embedder(embedder) => {
                        let files = match &self.priors {
                            PriorChoice::Files(files) => files.as_slice(),
                            _ => &[],
                        };
                        hooks
                            .embed_dataset(&data, embedder, files)
                            .map_err(PlanError::Hook)?
                    }
                };
                let splits = SplitNames {
                    learning: learning_split.clone(),
                    deployment: deployment_split.clone(),
                };
                let problem = problem_from_dataset(&data, &emb, &splits)?;
                let learning_rows = data.split_indices(learning_split);
                Ok(Loaded {
                    problem,
                    dataset: data,
                    embeddings: emb,
                    learning_rows,
                    embedder_id,
                })
            }
            DataSource::Synthetic { embedder } => {
                let synthetic_config = SyntheticConfig::default();
                let rows = synthetic_config.learning + synthetic_config.deployment;
                let (mut embedder_box, last_error): (Box<dyn pilot_core::Embedder>, _) =
                    match embedder {
                        Some(plugin) => {
                            let made = hooks
                                .synthetic_embedder(plugin, rows)
                                .map_err(PlanError::Hook)?;
                            (made.embedder, made.last_error)
                        }
                        None => (
                            Box::new(pilot_embed::HashingEmbedder::new(SYNTHETIC_DIM).map_err(
                                |e| PlanError::Invalid(format!("hashing embedder: {e}")),
                            )?),
                            None,
                        ),
                    };
                let embedder_id = embedder_box.id().to_owned();
                let synthetic = generate(&synthetic_config, &mut *embedder_box).map_err(|e| {
                    // The plugin's detailed error (the trap's reason, the bad value's
                    // position) in place of the short one the `Embedder` trait carries.
                    match (last_error.as_ref().and_then(|last| last()), &e) {
                        (Some(cause), SimError::Core { what, .. }) => {
                            PlanError::Invalid(format!("{what}: {cause}"))
                        }
                        (Some(cause), _) => PlanError::Invalid(format!("{e}: {cause}")),
                        (None, _) => PlanError::Sim(e),
                    }
                })?;
                let (dataset, embeddings, learning_rows) = synthetic_dataset(&synthetic)?;
                if let Some(plugin) = embedder {
                    hooks
                        .check_vectors(plugin, &embeddings)
                        .map_err(PlanError::Hook)?;
                }
                Ok(Loaded {
                    problem: synthetic.problem,
                    dataset,
                    embeddings,
                    learning_rows,
                    embedder_id,
                })
            }
        }
    }

    /// Whether the vectors come from an embedder this run chose (so prior files must come
    /// from the same one).
    fn embeds_here(&self) -> bool {
        match &self.data {
            DataSource::Synthetic { embedder } => embedder.is_some(),
            DataSource::Dataset { vectors, .. } => matches!(vectors, QueryVectors::Embedder(_)),
        }
    }

    /// Fits the arena prior, if asked for; returns it with the judge data it came from.
    fn fit_arena(
        &self,
        loaded: &Loaded,
        hooks: &mut dyn PlanHooks,
    ) -> Result<Option<(Prior, JudgeData)>, PlanError> {
        let Some(arena) = &self.arena else {
            return Ok(None);
        };
        let started = Instant::now();
        let judge = pilot_data::JudgeDataset::load(&arena.judge)?;
        let emb = Embeddings::load(&arena.embeddings, arena.dim)?;
        if emb.dim() != loaded.problem.dim() {
            return Err(PlanError::Invalid(format!(
                "{} has dimension {} but the dataset's embeddings have {}",
                arena.embeddings.display(),
                emb.dim(),
                loaded.problem.dim()
            )));
        }
        let params = self.fit_params(&loaded.embedder_id, false);
        let (prior, summary, warnings) = fit_judge_prior(
            &judge,
            &emb,
            loaded.problem.llms(),
            &params,
            self.prior_fit.tie_weight,
        )?;
        hooks
            .event(PlanEvent::ArenaFitted {
                summary: &summary,
                warnings: &warnings,
                seconds: started.elapsed().as_secs_f64(),
            })
            .map_err(PlanError::Hook)?;
        Ok(Some((prior, JudgeData { judge, emb })))
    }

    /// `source` (of `prior`) with the start of each LLM that joins a world run live fitted
    /// from the judge scores, when the plan has the new-llm world and judge data (no other run
    /// reads it).
    fn with_joining(
        &self,
        mut source: PriorSource,
        prior: &Prior,
        loaded: &Loaded,
        judge: Option<&JudgeData>,
    ) -> Result<PriorSource, PlanError> {
        if let Some(j) = judge.filter(|_| world::adds_an_llm(&self.worlds)) {
            source.joining = joining_vectors(
                prior,
                loaded.problem.llms(),
                &j.judge,
                &j.emb,
                &self.fit_params(&loaded.embedder_id, false),
                self.prior_fit.tie_weight,
            )?;
        }
        Ok(source)
    }

    /// Tunes on the learning split; returns the chosen settings.
    fn run_tuning(
        &self,
        tune_plan: &TunePlan,
        loaded: &Loaded,
        arena: Option<&Prior>,
        config: &ExperimentConfig,
        hooks: &mut dyn PlanHooks,
        progress: &(dyn Fn(Phase, usize, usize) + Sync),
    ) -> Result<FamilyParams, PlanError> {
        let started = Instant::now();
        let params = self.fit_params(&loaded.embedder_id, self.synthetic());
        let fit = |rows: &[usize]| -> crate::Result<Prior> {
            fit_prior(
                &loaded.dataset,
                &loaded.embeddings,
                rows,
                &params,
                self.prior_fit.tie_weight,
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
        let tune_config = self.tune_config(tune_plan, config);
        let learning_fit: Option<&FitPrior<'_>> = match self.priors {
            PriorChoice::None => None,
            _ => Some(&fit),
        };
        if matches!(&self.priors, PriorChoice::Files(files) if !files.is_empty()) {
            hooks
                .event(PlanEvent::TuneIgnoresPriorFiles)
                .map_err(PlanError::Hook)?;
        }
        let report = tune(
            &loaded.dataset,
            &loaded.embeddings,
            &loaded.learning_rows,
            learning_fit,
            &extra,
            &tune_config,
            &|stage, done, total| progress(Phase::Tune(stage), done, total),
        )?;
        hooks
            .event(PlanEvent::Tuned {
                report: &report,
                seconds: started.elapsed().as_secs_f64(),
            })
            .map_err(PlanError::Hook)?;
        Ok(report.params)
    }

    /// The priors PILOT starts from: the files, or one fitted here on the learning split's
    /// observed qualities (RouterBench-style preferences).
    fn load_priors(
        &self,
        loaded: &Loaded,
        judge: Option<&JudgeData>,
        hooks: &mut dyn PlanHooks,
    ) -> Result<Vec<PriorSource>, PlanError> {
        let problem = &loaded.problem;
        let files = match &self.priors {
            PriorChoice::Files(files) if !files.is_empty() => files,
            PriorChoice::None => return Ok(Vec::new()),
            _ => {
                let started = Instant::now();
                let params = self.fit_params(&loaded.embedder_id, self.synthetic());
                let (prior, summary) = fit_prior(
                    &loaded.dataset,
                    &loaded.embeddings,
                    &loaded.learning_rows,
                    &params,
                    self.prior_fit.tie_weight,
                )?;
                hooks
                    .event(PlanEvent::PriorFitted {
                        summary: &summary,
                        seconds: started.elapsed().as_secs_f64(),
                    })
                    .map_err(PlanError::Hook)?;
                let source = prior_source(LEARNING_PRIOR, &prior, problem)?;
                return Ok(vec![self.with_joining(source, &prior, loaded, judge)?]);
            }
        };
        // A prior file carries the id of the embedder it was fitted on; when this run chose
        // the embedder itself, vectors of another embedder would be meaningless, so refuse
        // them.
        let expect = Expect {
            embedder_id: self.embeds_here().then_some(loaded.embedder_id.as_str()),
            d_in: Some(problem.dim()),
        };
        files
            .iter()
            .map(|path| {
                let prior = Prior::load(path, expect)?;
                let name = path.file_stem().map_or_else(
                    || path.display().to_string(),
                    |s| s.to_string_lossy().into_owned(),
                );
                let source =
                    prior_source(&name, &prior, problem).map_err(|e| PlanError::Context {
                        what: format!("prior file {}", path.display()),
                        source: Box::new(e.into()),
                    })?;
                self.with_joining(source, &prior, loaded, judge)
            })
            .collect()
    }
}

/// The judge scores the arena prior was fitted on, and their prompts' vectors.
struct JudgeData {
    judge: pilot_data::JudgeDataset,
    emb: Embeddings,
}

/// The loaded data: the problem, and the same data in pilot-data's form for fitting a prior.
pub struct Loaded {
    /// The problem the grid replays.
    pub problem: Problem,
    /// The rows, in pilot-data's form.
    pub dataset: RoutingDataset,
    /// Their vectors.
    pub embeddings: Embeddings,
    /// Indices of the learning rows in `dataset`.
    pub learning_rows: Vec<usize>,
    /// Id of the embedder of the vectors.
    pub embedder_id: String,
}

/// A plan with its data loaded, its settings final (tuned, if asked) and its priors fitted.
pub struct Prepared<'p> {
    /// The plan.
    pub plan: &'p SimulationPlan,
    /// The data.
    pub loaded: Loaded,
    /// The experiment's configuration (settings tuned, if asked).
    pub config: ExperimentConfig,
    /// The arena prior, if any.
    pub arena: Option<Prior>,
    /// The priors of the line-up (the arena's last).
    pub priors: Vec<PriorSource>,
}

/// One held-out task's rows of the domain-shift scenario.
#[derive(Clone, Debug)]
pub struct DomainShiftReport {
    /// Budget fraction.
    pub budget: f64,
    /// Seeds per cell.
    pub seeds: u64,
    /// Name of the reference LLM.
    pub reference: String,
    /// Tasks with nothing to hold out (no learning rows of the other tasks, or no deployment
    /// rows of their own), skipped.
    pub skipped: Vec<String>,
    /// `(task, row)` at the budget (and the unbudgeted references).
    pub rows: Vec<(String, SummaryRow)>,
}

/// The results of the world scenarios.
#[derive(Clone, Debug)]
pub struct WorldsReport {
    /// One row per scenario × policy.
    pub rows: Vec<WorldRow>,
    /// The scenarios run (and which line-up each ran on).
    pub runs: Vec<(WorldScenario, usize)>,
    /// The budget fraction.
    pub budget: f64,
}

impl Prepared<'_> {
    /// Assembles the experiment: the base contexts, the standard line-up at the final
    /// settings and the policy plugin (through the hooks).
    ///
    /// # Errors
    /// The base contexts, the line-up or the plugin cannot be built.
    pub fn assemble(self, hooks: &mut dyn PlanHooks) -> Result<Simulation, PlanError> {
        let plan = self.plan;
        let base = plan.base_contexts(&self.priors, &self.loaded.problem)?;
        let linucb = self.config.params.get(Family::LinUcb.name());
        let world_inputs = (!plan.worlds.is_empty()).then(|| WorldInputs {
            problem: self.loaded.problem.clone(),
            base: base.clone(),
            priors: self.priors.clone(),
            config: self.config.clone(),
        });
        let mut experiment = Experiment::new(self.loaded.problem, base, self.priors, self.config)?;
        let plugin = match &plan.policy_plugin {
            Some(p) => Some(
                hooks
                    .add_policy_plugin(&mut experiment, p, linucb)
                    .map_err(PlanError::Hook)?,
            ),
            None => None,
        };
        Ok(Simulation {
            experiment,
            plugin,
            worlds: plan.worlds.clone(),
            world_budget: plan.world_budget,
            discount: plan.discount,
            world_inputs,
        })
    }

    /// The domain-shift scenario: each task held out in turn: the prior (and the kNN router
    /// and cost estimates) see the learning rows of the other tasks only, deployment is the
    /// held-out task's deployment rows; the arena prior, fitted elsewhere, is unchanged. Every
    /// policy (plus PILOT with the discount) at the world budget, the standard order.
    ///
    /// # Errors
    /// A failing prior fit, line-up or episode.
    pub fn domain_shift(&self) -> Result<DomainShiftReport, PlanError> {
        let plan = self.plan;
        let loaded = &self.loaded;
        let config = &self.config;
        let frac = plan.world_budget;
        let data = &loaded.dataset;
        let reference = config
            .reference_llm
            .clone()
            .unwrap_or_else(|| loaded.problem.llms()[loaded.problem.best_single_llm()].clone());
        let params = plan.fit_params(&loaded.embedder_id, plan.synthetic());
        let deployment_split = match &plan.data {
            DataSource::Dataset {
                deployment_split, ..
            } => Some(deployment_split.as_str()),
            DataSource::Synthetic { .. } => None,
        };
        let learning: HashSet<usize> = loaded.learning_rows.iter().copied().collect();
        let mut report = DomainShiftReport {
            budget: frac,
            seeds: config.seeds,
            reference: reference.clone(),
            skipped: Vec::new(),
            rows: Vec::new(),
        };
        for task in data.tasks() {
            let fit_rows: Vec<usize> = loaded
                .learning_rows
                .iter()
                .copied()
                .filter(|&i| data.rows[i].task != task)
                .collect();
            let deploy_rows: Vec<usize> = (0..data.rows.len())
                .filter(|&i| !learning.contains(&i) && data.rows[i].task == task)
                .filter(|&i| deployment_split.is_none_or(|s| data.rows[i].split == s))
                .collect();
            if fit_rows.is_empty() || deploy_rows.is_empty() {
                report.skipped.push(task);
                continue;
            }
            let problem = problem_from_rows(data, &loaded.embeddings, &fit_rows, &deploy_rows)?;
            let (prior, _) = fit_prior(
                data,
                &loaded.embeddings,
                &fit_rows,
                &params,
                plan.prior_fit.tie_weight,
            )?;
            let mut priors = vec![prior_source(LEARNING_PRIOR, &prior, &problem)?];
            if let Some(a) = &self.arena {
                priors.push(prior_source(ARENA, a, &problem)?);
            }
            let base = plan.base_contexts(&priors, &problem)?;
            let task_config = ExperimentConfig {
                budgets: vec![frac],
                scenarios: vec![Scenario::Standard],
                reference_llm: Some(reference.clone()),
                ..config.clone()
            };
            let mut experiment = Experiment::new(problem, base, priors, task_config)?;
            if plan.discount < 1.0 {
                world::add_discounted_pilots(&mut experiment, plan.discount)?;
            }
            world::add_trusting_pilots(&mut experiment)?;
            world::add_shared_level_pilots(&mut experiment)?;
            let task_report = experiment.run(&|_, _| {})?;
            for row in task_report.rows {
                if row.budget_frac == Some(frac) || row.budget_frac.is_none() {
                    report.rows.push((task.clone(), row));
                }
            }
        }
        Ok(report)
    }
}

/// What a world run rebuilds its per-scenario line-ups from.
struct WorldInputs {
    problem: Problem,
    base: ContextTable,
    priors: Vec<PriorSource>,
    config: ExperimentConfig,
}

/// An assembled experiment, ready to run as a grid or in the world scenarios.
pub struct Simulation {
    /// The experiment (the standard line-up, the policy plugin, if any).
    pub experiment: Experiment,
    /// Name of the policy plugin in the line-up, if any (run isolated: its failure stops only
    /// it).
    pub plugin: Option<String>,
    worlds: Vec<String>,
    world_budget: f64,
    discount: f32,
    world_inputs: Option<WorldInputs>,
}

impl Simulation {
    /// Every policy (plus PILOT with the discount) in each changing world of the plan and the
    /// stationary control, at the world budget.
    ///
    /// # Errors
    /// No world scenarios in the plan, a bad scenario name, a failing line-up or episode.
    pub fn run_worlds(
        &mut self,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<WorldsReport, PlanError> {
        let Some(inputs) = &self.world_inputs else {
            return Err(PlanError::Invalid(
                "the plan has no world scenarios".to_owned(),
            ));
        };
        let names = self.worlds.clone();
        if let Some(plugin) = &self.plugin
            && world::adds_an_llm(&names)
        {
            return Err(PlanError::Invalid(format!(
                "the new-llm world adds an LLM through Router::add_arm, and the policy plugin \
                 {plugin} cannot grow its pool (the plugin ABI has no call to add an arm): run \
                 the other world scenarios with it"
            )));
        }
        if self.discount < 1.0 {
            world::add_discounted_pilots(&mut self.experiment, self.discount)?;
        }
        world::add_trusting_pilots(&mut self.experiment)?;
        world::add_shared_level_pilots(&mut self.experiment)?;
        let scenarios = world::expand(&names, self.experiment.problem())?;
        // A new LLM has no learning data: its runs start from priors whose vector for it comes
        // from the judge scores where it has them (`PriorSource::joining`), else the mean of
        // the others; the arena prior, fitted on judge scores itself, keeps its own vector.
        let mut extra = Vec::new();
        let mut runs = Vec::new();
        for sc in scenarios {
            let mut grid = 0;
            if let world::Change::NewLlm { arm } = sc.change {
                let mut priors = inputs.priors.clone();
                for p in priors.iter_mut().filter(|p| p.name != ARENA) {
                    if let Some(v) = p.vectors.get_mut(arm) {
                        *v = p.joining.get(arm).cloned().flatten();
                    }
                }
                let mut e = Experiment::new(
                    inputs.problem.clone(),
                    inputs.base.clone(),
                    priors,
                    inputs.config.clone(),
                )?;
                if self.discount < 1.0 {
                    world::add_discounted_pilots(&mut e, self.discount)?;
                }
                world::add_trusting_pilots(&mut e)?;
                world::add_shared_level_pilots(&mut e)?;
                extra.push(e);
                grid = extra.len();
            }
            runs.push((sc, grid));
        }
        let grids: Vec<_> = std::iter::once(self.experiment.grid())
            .chain(extra.iter().map(Experiment::grid))
            .collect();
        let rows = world::run_worlds(&grids, &runs, self.world_budget, progress)?;
        Ok(WorldsReport {
            rows,
            runs,
            budget: self.world_budget,
        })
    }
}

/// What [`SimulationPlan::run`] produced.
pub struct PlanOutcome {
    /// The domain-shift rows, when the plan has that scenario.
    pub domain_shift: Option<DomainShiftReport>,
    /// The assembled experiment (`None` when only the domain shift ran).
    pub simulation: Option<Simulation>,
    /// The grid's or the worlds' results.
    pub results: Results,
}

/// The results of the main run.
pub enum Results {
    /// Nothing besides the domain shift.
    None,
    /// The grid's report, and the isolated plugin's failure, if it failed.
    Grid {
        /// The report (without a failed plugin's rows).
        report: ExperimentReport,
        /// `(policy, error)` of an isolated policy that failed mid-run.
        failures: Vec<(String, SimError)>,
    },
    /// The world scenarios'.
    Worlds(WorldsReport),
}

/// Which part of a run a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase<'a> {
    /// Tuning, at this stage (`policy-1`, `pacing`, …).
    Tune(&'a str),
    /// The grid.
    Grid,
    /// The world scenarios.
    Worlds,
}

/// What happened while a plan ran, for the caller to show.
#[derive(Clone, Copy, Debug)]
pub enum PlanEvent<'a> {
    /// The learning prior was fitted.
    PriorFitted {
        /// How the fit went.
        summary: &'a FitSummary,
        /// Seconds it took.
        seconds: f64,
    },
    /// The arena prior was fitted.
    ArenaFitted {
        /// How the fit went.
        summary: &'a FitSummary,
        /// LLMs of the pool without judge data, and the like.
        warnings: &'a [String],
        /// Seconds it took.
        seconds: f64,
    },
    /// Tuning is about to run on a prior fitted on the fit part, not on the prior files.
    TuneIgnoresPriorFiles,
    /// Tuning finished.
    Tuned {
        /// What it chose and evaluated.
        report: &'a TuneReport,
        /// Seconds it took.
        seconds: f64,
    },
}

/// An error a hook returns.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// An embedder the hooks made for the synthetic queries.
pub struct HookEmbedder {
    /// The embedder.
    pub embedder: Box<dyn pilot_core::Embedder>,
    /// Its last detailed error, if it keeps one (read when generating fails).
    pub last_error: Option<Box<dyn Fn() -> Option<String>>>,
}

/// What a plan needs from its caller: embedders and policies this crate does not build (a
/// model runtime, a plugin host), and somewhere to report what happened.
pub trait PlanHooks {
    /// The vectors of `data`'s queries by `embedder`, and the embedder's id; `prior_files`
    /// are the plan's prior files (to check against the embedder before embedding).
    ///
    /// # Errors
    /// The embedder cannot run.
    fn embed_dataset(
        &mut self,
        data: &RoutingDataset,
        embedder: &QueryEmbedder,
        prior_files: &[PathBuf],
    ) -> Result<(Embeddings, String), HookError>;

    /// The embedder plugin `plugin` for the synthetic scenario's `rows` queries.
    ///
    /// # Errors
    /// The plugin cannot be loaded or configured.
    fn synthetic_embedder(
        &mut self,
        plugin: &PluginRef,
        rows: usize,
    ) -> Result<HookEmbedder, HookError>;

    /// Checks the vectors `plugin` produced before anything is fitted on them.
    ///
    /// # Errors
    /// They cannot carry information.
    fn check_vectors(
        &mut self,
        plugin: &PluginRef,
        embeddings: &Embeddings,
    ) -> Result<(), HookError>;

    /// Adds the policy plugin to `experiment`; `linucb` are LinUCB's final settings (the plain
    /// start's). Returns its name in the report.
    ///
    /// # Errors
    /// The plugin cannot be loaded, configured or fitted to the experiment.
    fn add_policy_plugin(
        &mut self,
        experiment: &mut Experiment,
        plugin: &PolicyPlugin,
        linucb: Hyper,
    ) -> Result<String, HookError>;

    /// Something happened (a prior was fitted, tuning finished).
    ///
    /// # Errors
    /// The caller could not record it (writing a file, say); the run stops.
    fn event(&mut self, event: PlanEvent<'_>) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }
}

/// Hooks for plans that need none: every embedder and plugin is refused with a clear error,
/// events are dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

fn unsupported(what: &str) -> HookError {
    format!("{what} needs a caller that provides it (pilot_sim::plan::PlanHooks)").into()
}

impl PlanHooks for NoHooks {
    fn embed_dataset(
        &mut self,
        _: &RoutingDataset,
        _: &QueryEmbedder,
        _: &[PathBuf],
    ) -> Result<(Embeddings, String), HookError> {
        Err(unsupported("embedding a dataset's queries"))
    }

    fn synthetic_embedder(&mut self, _: &PluginRef, _: usize) -> Result<HookEmbedder, HookError> {
        Err(unsupported("an embedder plugin"))
    }

    fn check_vectors(&mut self, _: &PluginRef, _: &Embeddings) -> Result<(), HookError> {
        Err(unsupported("an embedder plugin"))
    }

    fn add_policy_plugin(
        &mut self,
        _: &mut Experiment,
        _: &PolicyPlugin,
        _: Hyper,
    ) -> Result<String, HookError> {
        Err(unsupported("a policy plugin"))
    }
}

/// Why a plan could not run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The simulator refused.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A data file could not be read.
    #[error(transparent)]
    Data(#[from] pilot_data::DataError),
    /// A prior file could not be read.
    #[error(transparent)]
    Prior(#[from] pilot_prior::PriorError),
    /// A hook failed.
    #[error(transparent)]
    Hook(HookError),
    /// The plan or its data is invalid.
    #[error("{0}")]
    Invalid(String),
    /// An error with what was being done.
    #[error("{what}")]
    Context {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: Box<PlanError>,
    },
}

/// Serde by the names the reports and the command line use.
macro_rules! serde_by_name {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                <$ty>::parse(&name)
                    .ok_or_else(|| D::Error::custom(format!("unknown {} '{name}'", $what)))
            }
        }
    };
}

serde_by_name!(Scenario, "scenario");
serde_by_name!(CostPolicyKind, "cost policy");
serde_by_name!(Family, "policy family");

#[cfg(test)]
mod tests {
    use super::*;

    fn small_synthetic() -> SimulationPlan {
        let mut plan = SimulationPlan::new(DataSource::Synthetic { embedder: None });
        plan.seeds = 1;
        plan.budgets = vec![0.5];
        plan.threads = 1;
        plan
    }

    #[test]
    fn a_plan_round_trips_through_serde() {
        let mut plan = SimulationPlan::new(DataSource::Dataset {
            path: "data/rb.jsonl".into(),
            vectors: QueryVectors::Embedder(QueryEmbedder::Minilm {
                model_dir: None,
                batch: 32,
                save: Some("out/rb.f32".into()),
            }),
            learning_split: "train".into(),
            deployment_split: "test".into(),
        });
        plan.priors = PriorChoice::Files(vec!["a.prior".into(), "b.prior".into()]);
        plan.arena = Some(ArenaSource {
            judge: "arena.jsonl".into(),
            embeddings: "arena.f32".into(),
            dim: 384,
        });
        plan.worlds = vec!["stationary".into(), "new-llm".into()];
        plan.cost_policies = vec![CostPolicyKind::Pacing, CostPolicyKind::Zcl];
        plan.streams = vec![Scenario::TaskShift];
        plan.settings = Settings {
            untuned: true,
            overrides: Overrides {
                alpha: Some(0.3),
                epsilon: Some(0.05),
                ..Overrides::default()
            },
            paired: Some(Family::PriorOnly),
        };
        plan.tune = Some(TunePlan {
            seeds: 2,
            fit_fraction: 0.6,
        });
        plan.policy_plugin = Some(PolicyPlugin {
            path: "p.wasm".into(),
            config: None,
            pilot: Some(Some("pilot[arena]".into())),
        });
        plan.reference_llm = Some("gpt-4".into());
        plan.out = Some("out".into());
        let json = serde_json::to_string_pretty(&plan).unwrap();
        let back: SimulationPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
        assert!(json.contains("\"task-shift\""), "{json}");
        assert!(json.contains("\"prior-only\""), "{json}");
        // The synthetic default too.
        let synthetic = SimulationPlan::new(DataSource::Synthetic { embedder: None });
        let json = serde_json::to_string(&synthetic).unwrap();
        assert_eq!(
            serde_json::from_str::<SimulationPlan>(&json).unwrap(),
            synthetic
        );
    }

    #[test]
    fn an_unknown_name_is_refused_by_name() {
        let plan = SimulationPlan::new(DataSource::Synthetic { embedder: None });
        let json = serde_json::to_string(&plan)
            .unwrap()
            .replace("\"pacing\"", "\"bidding\"");
        let err = serde_json::from_str::<SimulationPlan>(&json).unwrap_err();
        assert!(
            err.to_string().contains("unknown cost policy 'bidding'"),
            "{err}"
        );
    }

    #[test]
    fn the_run_and_the_tuner_read_the_context_dimension_of_one_plan() {
        let mut plan = small_synthetic();
        plan.priors = PriorChoice::None;
        plan.context_dim = 7;
        let tune = TunePlan {
            seeds: 1,
            fit_fraction: 0.7,
        };
        let config = plan.experiment_config().unwrap();
        assert_eq!(plan.tune_config(&tune, &config).context_dim, 7);
        let prepared = plan.prepare(&mut NoHooks, &|_, _, _| {}).unwrap();
        assert!(prepared.priors.is_empty());
        // The tuner's rule on its validation problem and the run's on the deployment
        // problem: the same function of the same plan.
        let run_base = plan
            .base_contexts(&prepared.priors, &prepared.loaded.problem)
            .unwrap();
        assert_eq!(run_base.dim(), 7);
        let simulation = prepared.assemble(&mut NoHooks).unwrap();
        assert_eq!(simulation.experiment.base_dim(), 7);
    }

    #[test]
    fn with_a_prior_the_base_contexts_are_the_priors_and_the_tuner_agrees() {
        let mut plan = small_synthetic();
        plan.tune = Some(TunePlan {
            seeds: 1,
            fit_fraction: 0.7,
        });
        let config = plan.experiment_config().unwrap();
        let tune_config = plan.tune_config(plan.tune.as_ref().unwrap(), &config);
        assert_eq!(tune_config.context_dim, plan.context_dim);
        assert_eq!(tune_config.budgets, plan.budgets);
        let plan = SimulationPlan { tune: None, ..plan };
        let prepared = plan.prepare(&mut NoHooks, &|_, _, _| {}).unwrap();
        let prior_dim = prepared.priors[0].contexts.dim();
        assert_eq!(prior_dim, plan.prior_fit.dim + 1);
        let base = plan
            .base_contexts(&prepared.priors, &prepared.loaded.problem)
            .unwrap();
        assert_eq!(base.dim(), prior_dim);
    }

    #[test]
    fn a_plugin_without_hooks_is_a_clear_error() {
        let mut plan = small_synthetic();
        plan.data = DataSource::Synthetic {
            embedder: Some(PluginRef {
                path: "e.wasm".into(),
                config: String::new(),
            }),
        };
        let err = plan.run(&mut NoHooks, &|_, _, _| {}).err().unwrap();
        assert!(
            err.to_string()
                .contains("an embedder plugin needs a caller"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_budget_or_no_seeds_is_refused() {
        let mut plan = small_synthetic();
        plan.budgets = vec![0.5, -1.0];
        assert!(plan.experiment_config().is_err());
        let mut plan = small_synthetic();
        plan.seeds = 0;
        assert!(plan.experiment_config().is_err());
    }
}
