//! The standard experiment: every policy (PILOT per prior, the prior alone, LinUCB, LinTS,
//! ε-greedy, random, the full-information kNN router) × online cost policies × budgets × seeds
//! × scenarios, plus the unbudgeted references and the offline-optimal knapsack per budget.

use std::collections::HashMap;
use std::sync::Arc;

use pilot_budget::owned::Exact;
use pilot_budget::{
    OnlineConfig, PacingParams, PacingPolicy, Spread, ThresholdParams, ThresholdPolicy, ValueOf,
    ZclPolicy, ratio_bounds,
};
use pilot_core::CostPolicy;

use crate::grid::{CostPolicySpec, Grid, PolicyFactory, PolicySpec};
use crate::hyper::{Family, FamilyParams, Hyper};
use crate::lineup::{make_policy_fresh, make_policy_over};
use crate::offline::{offline_optimum, reference_row, unbudgeted_references};
use crate::summary::{RegretCurve, SummaryRow, aggregate, frontier_auc};
use crate::{ContextTable, CostModel, Neighbours, Problem, Result, Scenario, SimError};

/// A preference prior in a form the simulator can use: the contexts its map gives every
/// deployment query, and one prior vector per arm in that context space (`None`: no data).
#[derive(Clone, Debug)]
pub struct PriorSource {
    /// Short name (`routerbench`, `arena`, a file stem).
    pub name: String,
    /// Contexts of the deployment queries under this prior's map.
    pub contexts: ContextTable,
    /// Per-arm prior vector (dimension = context dimension).
    pub vectors: Vec<Option<Vec<f32>>>,
    /// Per arm, the vector it starts from when it joins the pool live without learning data
    /// (the world runs' new LLM): fitted in this prior's space from preferences gathered
    /// elsewhere, the judge scores ([`crate::priors::joining_vectors`]); `None` where there are
    /// none (it then starts at the mean of the others).
    pub joining: Vec<Option<Vec<f32>>>,
}

/// The online cost policies the experiment can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostPolicyKind {
    /// Dual-price pacing (pilot-budget's `PacingPolicy`).
    Pacing,
    /// This project's adaptation of the Zhou–Chakrabarty–Lukose threshold policy
    /// (`ThresholdPolicy`): uniform spreading over 16 bins with `z` counted against the
    /// released budget, the ratio bounds scaled by the tuned `threshold_scale`, and the
    /// cheapest arm when none qualifies.
    Threshold,
    /// The Zhou–Chakrabarty–Lukose threshold policy as published (`ZclPolicy`): `z` over the
    /// whole budget, the learning split's ratio bounds unscaled, a query declined when no arm
    /// qualifies (the budget guard then serves the cheapest arm that fits, counted as an
    /// override). Nothing to tune.
    Zcl,
}

impl CostPolicyKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Self; 3] = [Self::Pacing, Self::Threshold, Self::Zcl];

    /// Name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pacing => "pacing",
            Self::Threshold => "threshold",
            Self::Zcl => "zcl",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The accepted names, for messages (`pacing, threshold or zcl`).
    pub fn expected() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }
}

/// Grid and settings of the experiment.
#[derive(Clone, Debug)]
pub struct ExperimentConfig {
    /// Budgets as fractions of the reference LLM's deployment cost.
    pub budgets: Vec<f64>,
    /// Seeds `0..seeds`.
    pub seeds: u64,
    /// Stream orders.
    pub scenarios: Vec<Scenario>,
    /// Cost policies.
    pub cost_policies: Vec<CostPolicyKind>,
    /// Worker threads.
    pub threads: usize,
    /// Neighbours of the kNN router and the cost estimator.
    pub knn_k: usize,
    /// Hyperparameters per policy family (and of the cost policy serving it).
    pub params: FamilyParams,
    /// The LLM whose always-on cost is budget fraction 1 (`None`: best mean quality).
    pub reference_llm: Option<String>,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            budgets: vec![0.1, 0.25, 0.5, 1.0],
            seeds: 10,
            scenarios: vec![Scenario::Standard, Scenario::TaskShift],
            cost_policies: vec![CostPolicyKind::Pacing],
            threads: 2,
            knn_k: 10,
            params: FamilyParams::tuned(),
            reference_llm: None,
        }
    }
}

/// Everything the experiment produced.
#[derive(Clone, Debug)]
pub struct ExperimentReport {
    /// Summary rows: the grid's, then the references.
    pub rows: Vec<SummaryRow>,
    /// Mean regret curves of the grid.
    pub curves: Vec<RegretCurve>,
    /// Area under the quality-versus-budget curve per (scenario, policy, cost policy).
    pub auc: Vec<(String, String, String, f64)>,
    /// Facts worth printing (cost-estimate error, dropped rows, reference LLM, …).
    pub notes: Vec<String>,
}

/// One routing policy of the grid: its report name, family, prior and settings.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Name in reports (unique in a grid).
    pub name: String,
    /// What kind of policy it is.
    pub family: Family,
    /// Index into the experiment's priors, for PILOT and the prior alone.
    pub prior: Option<usize>,
    /// Its settings and those of its cost policy.
    pub hyper: Hyper,
}

/// Name of the prior fitted on the learning split: its policies are plain `pilot` and
/// `prior-only`; every other prior's carry a `[name]` suffix.
pub const LEARNING_PRIOR: &str = "learning";

/// The standard line-up: PILOT and the prior alone per prior, then LinUCB, LinTS, ε-greedy,
/// random and the full-information kNN router, each at its settings in `params`.
pub fn standard_candidates(priors: &[PriorSource], params: &FamilyParams) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (index, prior) in priors.iter().enumerate() {
        let plain = prior.name == LEARNING_PRIOR || priors.len() == 1;
        for family in [Family::Pilot, Family::PriorOnly] {
            let name = if plain {
                family.name().to_owned()
            } else {
                format!("{}[{}]", family.name(), prior.name)
            };
            out.push(Candidate {
                hyper: params.get(&name),
                name,
                family,
                prior: Some(index),
            });
        }
    }
    for family in [
        Family::LinUcb,
        Family::LinTs,
        Family::EpsilonGreedy,
        Family::Random,
        Family::KnnFullInfo,
    ] {
        out.push(Candidate {
            name: family.name().to_owned(),
            family,
            prior: None,
            hyper: params.get(family.name()),
        });
    }
    out
}

/// A ready-to-run experiment.
pub struct Experiment {
    problem: Problem,
    contexts: Vec<ContextTable>,
    costs: CostModel,
    policies: Vec<PolicySpec>,
    cost_policies: Vec<CostPolicySpec>,
    reference_arm: usize,
    config: ExperimentConfig,
    notes: Vec<String>,
    /// Settings by policy name, read by the cost policies (the fallback for names not here).
    settings: HashMap<String, Hyper>,
    /// PILOT policies by name: what their factories were built from.
    pilots: HashMap<String, PilotSetup>,
}

/// What a native PILOT policy of the grid starts from, so that another implementation (a
/// policy plugin, say) can be started identically.
#[derive(Clone, Debug)]
pub struct PilotSetup {
    /// One prior vector per arm, LLMs the prior lacks filled in at the mean of the others.
    pub vectors: Arc<Vec<Vec<f32>>>,
    /// Dimension of the prior's contexts (and of each vector).
    pub dim: usize,
    /// Its settings (α, λ) and those of its cost policy.
    pub hyper: Hyper,
    /// The LLMs whose vector is a stand-in (the prior had none: started at the mean).
    pub fresh: Arc<Vec<usize>>,
}

fn core(what: &'static str) -> impl Fn(pilot_core::Error) -> SimError {
    move |e| SimError::core(what, e)
}

/// A prior's vectors with every missing LLM started at the mean of the others: an LLM the
/// prior has never seen is predicted to be an average LLM, so exploration can still find it
/// (a zero vector would predict quality 0 and never be tried).
fn fill_missing(vectors: &[Option<Vec<f32>>]) -> Vec<Vec<f32>> {
    let present: Vec<&Vec<f32>> = vectors.iter().flatten().collect();
    let dim = present.first().map_or(0, |v| v.len());
    let mut mean = vec![0.0f32; dim];
    for v in &present {
        for (m, x) in mean.iter_mut().zip(v.iter()) {
            *m += x / present.len() as f32;
        }
    }
    vectors
        .iter()
        .map(|v| v.clone().unwrap_or_else(|| mean.clone()))
        .collect()
}

fn check_prior(prior: &PriorSource, problem: &Problem) -> Result<()> {
    let k = problem.arm_count();
    if prior.vectors.len() != k {
        return Err(SimError::invalid(format!(
            "prior '{}' has {} LLM vectors but the pool has {k} LLMs",
            prior.name,
            prior.vectors.len()
        )));
    }
    let pdim = prior.contexts.dim();
    if let Some((a, v)) = prior
        .vectors
        .iter()
        .enumerate()
        .find_map(|(a, v)| v.as_ref().filter(|v| v.len() != pdim).map(|v| (a, v)))
    {
        return Err(SimError::invalid(format!(
            "prior '{}', LLM {}: vector of dimension {} but contexts of dimension {pdim}",
            prior.name,
            problem.llms()[a],
            v.len()
        )));
    }
    if prior.vectors.iter().all(Option::is_none) {
        return Err(SimError::invalid(format!(
            "prior '{}' has no vector for any LLM of the pool",
            prior.name
        )));
    }
    Ok(())
}

/// Builds the factory of one candidate (the line-up's constructor, [`make_policy`]); `dim` is
/// the base context dimension and `prior` the filled vectors and context dimension of its
/// prior.
fn policy_factory(
    candidate: &Candidate,
    k: usize,
    dim: usize,
    prior: Option<(Arc<Vec<Vec<f32>>>, usize)>,
    fresh: Arc<Vec<usize>>,
) -> Result<PolicyFactory> {
    let h = candidate.hyper;
    h.check(&candidate.name)?;
    let family = candidate.family;
    let needs_prior = matches!(family, Family::Pilot | Family::PriorOnly);
    if needs_prior && prior.is_none() {
        return Err(SimError::invalid(format!(
            "policy '{}' needs a prior but none was given",
            candidate.name
        )));
    }
    let (vectors, pdim) = match (needs_prior, prior) {
        (true, Some((v, pdim))) => (Some(v), pdim),
        _ => (
            None,
            if family == Family::KnnFullInfo {
                k
            } else {
                dim
            },
        ),
    };
    // Build one now so bad settings fail at assembly, not in a worker.
    let priors = || vectors.as_deref().map(Vec::as_slice);
    make_policy_fresh(family, &h, k, pdim, priors(), &fresh)?;
    Ok(Box::new(move |_, pool| {
        make_policy_over(
            family,
            &h,
            pool,
            pdim,
            vectors.as_deref().map(Vec::as_slice),
            &fresh,
        )
    }))
}

impl Experiment {
    /// Assembles the standard line-up ([`standard_candidates`]) at `config.params`.
    ///
    /// `base` are the contexts LinUCB, LinTS, ε-greedy and random read — the first prior's
    /// contexts when there is one, so the comparison isolates the prior.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for a prior whose vectors do not match the pool or its context
    /// dimension, an unknown reference LLM, or bad hyperparameters (named).
    pub fn new(
        problem: Problem,
        base: ContextTable,
        priors: Vec<PriorSource>,
        config: ExperimentConfig,
    ) -> Result<Self> {
        let candidates = standard_candidates(&priors, &config.params);
        Self::with_candidates(problem, base, priors, candidates, config)
    }

    /// Assembles an experiment over any list of candidates (the tuner's grid); each
    /// candidate's cost policy uses the candidate's own settings.
    ///
    /// # Errors
    /// As [`new`](Self::new), plus a candidate naming a missing prior or a duplicate name.
    pub fn with_candidates(
        problem: Problem,
        base: ContextTable,
        priors: Vec<PriorSource>,
        candidates: Vec<Candidate>,
        config: ExperimentConfig,
    ) -> Result<Self> {
        let k = problem.arm_count();
        let reference_arm = match &config.reference_llm {
            Some(name) => problem.arm_index(name).ok_or_else(|| {
                SimError::invalid(format!(
                    "reference LLM '{name}' is not in the pool ({})",
                    problem.llms().join(", ")
                ))
            })?,
            None => problem.best_single_llm(),
        };
        let neighbours = Neighbours::find(&problem, config.knn_k)?;
        let costs = CostModel::from_neighbours(&problem, &neighbours)?;
        let knn = ContextTable::knn_predictions(&problem, &neighbours)?;
        let mut notes = vec![
            format!(
                "reference LLM: {} (budget fraction 1 = always calling it)",
                problem.llms()[reference_arm]
            ),
            format!(
                "cost estimates: mean of the {} nearest learning queries; mean relative error on \
                 deployment {:.1} %; reserve per remaining query {:.3e} USD",
                config.knn_k,
                100.0 * costs.relative_error(&problem),
                costs.reserve_per_query()
            ),
        ];
        if problem.dropped() > 0 {
            notes.push(format!(
                "{} source rows left out for missing quality or cost cells",
                problem.dropped()
            ));
        }
        let dim = base.dim();
        let mut contexts = vec![base, knn];
        let mut filled = Vec::with_capacity(priors.len());
        for prior in priors {
            check_prior(&prior, &problem)?;
            let missing: Vec<&str> = prior
                .vectors
                .iter()
                .zip(problem.llms())
                .filter(|(v, _)| v.is_none())
                .map(|(_, n)| n.as_str())
                .collect();
            if !missing.is_empty() {
                notes.push(format!(
                    "prior '{}' has no vector for {}: PILOT starts them at the mean of its other \
                     LLM vectors",
                    prior.name,
                    missing.join(", ")
                ));
            }
            let fresh: Vec<usize> = (0..prior.vectors.len())
                .filter(|&a| prior.vectors[a].is_none())
                .collect();
            filled.push((
                contexts.len(),
                Arc::new(fill_missing(&prior.vectors)),
                prior.contexts.dim(),
                Arc::new(fresh),
            ));
            contexts.push(prior.contexts);
        }
        let mut policies: Vec<PolicySpec> = Vec::with_capacity(candidates.len());
        let mut settings: HashMap<String, Hyper> = HashMap::new();
        let mut pilots: HashMap<String, PilotSetup> = HashMap::new();
        for c in &candidates {
            if settings.insert(c.name.clone(), c.hyper).is_some() {
                return Err(SimError::invalid(format!(
                    "two policies are named '{}'",
                    c.name
                )));
            }
            let prior = match c.prior {
                Some(i) => Some(filled.get(i).ok_or_else(|| {
                    SimError::invalid(format!(
                        "policy '{}' uses prior {i} but there are {}",
                        c.name,
                        filled.len()
                    ))
                })?),
                None => None,
            };
            let context = match (c.family, prior) {
                (Family::KnnFullInfo, _) => 1,
                (_, Some((index, _, _, _))) => *index,
                (_, None) => 0,
            };
            if let (Family::Pilot, Some((_, vectors, pdim, fresh))) = (c.family, prior) {
                pilots.insert(
                    c.name.clone(),
                    PilotSetup {
                        vectors: vectors.clone(),
                        dim: *pdim,
                        hyper: c.hyper,
                        fresh: fresh.clone(),
                    },
                );
            }
            let fresh = prior.map_or_else(Arc::default, |p| p.3.clone());
            let make = policy_factory(c, k, dim, prior.map(|(_, v, d, _)| (v.clone(), *d)), fresh)?;
            let starts = match c.family {
                Family::Pilot | Family::PriorOnly => prior.map(|p| p.1.clone()),
                _ => None,
            };
            policies.push(PolicySpec {
                name: c.name.clone(),
                context,
                make,
                starts,
            });
        }
        let cost_policies = cost_policy_specs(&config, &problem, &settings)?;
        Ok(Self {
            problem,
            contexts,
            costs,
            policies,
            cost_policies,
            reference_arm,
            config,
            notes,
            settings,
            pilots,
        })
    }

    /// Dimension of the base contexts (those LinUCB, LinTS, ε-greedy, random and any policy
    /// added with [`add_policy`](Self::add_policy) read).
    pub fn base_dim(&self) -> usize {
        self.contexts.first().map_or(0, ContextTable::dim)
    }

    /// Adds a routing policy built outside the standard families (a plugin, say): it reads the
    /// base contexts and its cost policy uses the fallback settings.
    ///
    /// # Errors
    /// [`SimError::Invalid`] when a policy of that name is already in the grid.
    pub fn add_policy(&mut self, name: &str, make: PolicyFactory) -> Result<()> {
        if self.policies.iter().any(|p| p.name == name) {
            return Err(SimError::invalid(format!(
                "two policies are named '{name}'"
            )));
        }
        self.policies.push(PolicySpec {
            name: name.to_owned(),
            context: 0,
            make,
            starts: None,
        });
        Ok(())
    }

    /// Adds a routing policy built outside the standard families that reads the same contexts
    /// as the grid's policy `like` and whose cost policy uses `like`'s settings: a policy plugin
    /// started as PILOT is then run exactly as native PILOT is.
    ///
    /// # Errors
    /// [`SimError::Invalid`] when a policy of that name is already in the grid or there is no
    /// policy `like`.
    pub fn add_policy_like(&mut self, name: &str, make: PolicyFactory, like: &str) -> Result<()> {
        if self.policies.iter().any(|p| p.name == name) {
            return Err(SimError::invalid(format!(
                "two policies are named '{name}'"
            )));
        }
        let (context, starts) = self
            .policies
            .iter()
            .find(|p| p.name == like)
            .map(|p| (p.context, p.starts.clone()))
            .ok_or_else(|| {
                SimError::invalid(format!(
                    "no policy '{like}' in the grid ({})",
                    self.policy_names().join(", ")
                ))
            })?;
        let hyper = self
            .settings
            .get(like)
            .copied()
            .unwrap_or(self.config.params.fallback);
        let mut settings = self.settings.clone();
        settings.insert(name.to_owned(), hyper);
        self.cost_policies = cost_policy_specs(&self.config, &self.problem, &settings)?;
        self.settings = settings;
        self.policies.push(PolicySpec {
            name: name.to_owned(),
            context,
            make,
            starts,
        });
        Ok(())
    }

    /// What the grid's PILOT policy `name` (`pilot`, `pilot[arena]`, …) starts from: its prior
    /// vectors exactly as its factory gets them, their dimension and its settings.
    pub fn pilot_setup(&self, name: &str) -> Option<&PilotSetup> {
        self.pilots.get(name)
    }

    /// The problem.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// Names of the policies in the grid.
    pub fn policy_names(&self) -> Vec<String> {
        self.policies.iter().map(|p| p.name.clone()).collect()
    }

    /// Names of the cost policies in the grid.
    pub fn cost_policy_names(&self) -> Vec<String> {
        self.cost_policies.iter().map(|p| p.name.clone()).collect()
    }

    /// Runs one extra episode of policy `name` (with the first cost policy, at budget fraction
    /// `budget_frac`, on the standard order of `seed`), drawing with `exploration`, and returns
    /// the router's event log: the logged traffic off-policy evaluation reads.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for an unknown policy name or a bad budget; the episode's errors.
    pub fn log_episode(
        &self,
        name: &str,
        exploration: pilot_router::Exploration,
        budget_frac: f64,
        seed: u64,
    ) -> Result<(crate::Outcome, Vec<pilot_router::Record>)> {
        let spec = self
            .policies
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                SimError::invalid(format!(
                    "no policy '{name}' to log ({})",
                    self.policy_names().join(", ")
                ))
            })?;
        let cost_spec = self
            .cost_policies
            .first()
            .ok_or_else(|| SimError::invalid("no cost policy to log with"))?;
        if !budget_frac.is_finite() || budget_frac <= 0.0 {
            return Err(SimError::invalid(format!(
                "budget fraction {budget_frac} must be finite and > 0"
            )));
        }
        let grid = self.grid();
        let budget = budget_frac * grid.reference_cost();
        let order = crate::deployment_order(&self.problem, Scenario::Standard, seed);
        let pool: Vec<usize> = (0..self.problem.arm_count()).collect();
        let mut policy = (spec.make)(seed, &pool)?;
        let mut cost_policy = (cost_spec.make)(&spec.name, budget, order.len())?;
        let episode = crate::Episode {
            problem: &self.problem,
            contexts: &self.contexts[spec.context],
            costs: &self.costs,
            order: &order,
            budget,
            seed,
            log: true,
            exploration,
        };
        let mut outcome = crate::run_episode(&episode, policy.as_mut(), cost_policy.as_mut())?;
        let events = std::mem::take(&mut outcome.events);
        Ok((outcome, events))
    }

    /// The grid this experiment runs.
    pub fn grid(&self) -> Grid<'_> {
        Grid {
            problem: &self.problem,
            contexts: &self.contexts,
            costs: &self.costs,
            policies: &self.policies,
            cost_policies: &self.cost_policies,
            budget_fracs: &self.config.budgets,
            reference_arm: self.reference_arm,
            seeds: self.config.seeds,
            scenarios: &self.config.scenarios,
            threads: self.config.threads,
        }
    }

    /// Runs the grid and the references; `progress(done, total)` after each episode.
    ///
    /// # Errors
    /// The first episode's error; a knapsack error for the offline optimum.
    pub fn run(&self, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<ExperimentReport> {
        self.run_isolating(&[], progress).map(|(report, _)| report)
    }

    /// [`run`](Self::run), except that an episode error of a policy named in `isolate` (a
    /// plugin, say) stops only that policy: the report holds every other policy's rows and
    /// none of its, and its first error is returned with its name.
    ///
    /// # Errors
    /// As [`run`](Self::run) for the other policies; a name in `isolate` that is not a policy
    /// of this experiment.
    pub fn run_isolating(
        &self,
        isolate: &[&str],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<(ExperimentReport, Vec<(String, SimError)>)> {
        let grid = self.grid();
        let indices = isolate
            .iter()
            .map(|name| {
                self.policies
                    .iter()
                    .position(|p| p.name == *name)
                    .ok_or_else(|| {
                        SimError::invalid(format!("no policy named '{name}' to isolate"))
                    })
            })
            .collect::<Result<Vec<usize>>>()?;
        let (cells, failures) = grid.run_isolating(&indices, progress)?;
        let failures = failures
            .into_iter()
            .map(|(p, e)| (self.policies[p].name.clone(), e))
            .collect();
        let (mut rows, curves) = aggregate(&grid, &cells)?;
        let auc = frontier_auc(&rows);
        rows.extend(unbudgeted_references(&self.problem, self.reference_arm));
        let reference_cost = grid.reference_cost();
        let mut notes = self.notes.clone();
        for &frac in &self.config.budgets {
            let budget = frac * reference_cost;
            match offline_optimum(&self.problem, budget, &mut Exact::new()) {
                Ok((q, c)) => rows.push(reference_row(
                    &self.problem,
                    self.reference_arm,
                    "offline-mckp",
                    "offline",
                    Some(frac),
                    q,
                    c,
                )),
                Err(e) => notes.push(format!("offline optimum at budget {frac}: {e}")),
            }
        }
        Ok((
            ExperimentReport {
                rows,
                curves,
                auc,
                notes,
            },
            failures,
        ))
    }
}

/// Settings of the policy a cost policy serves, by policy name.
type Lookup = Arc<dyn Fn(&str) -> Hyper + Send + Sync>;

/// The configured cost policies, each reading a policy's settings from `settings` (the
/// fallback for a name not there).
fn cost_policy_specs(
    config: &ExperimentConfig,
    problem: &Problem,
    settings: &HashMap<String, Hyper>,
) -> Result<Vec<CostPolicySpec>> {
    let settings = Arc::new(settings.clone());
    let fallback = config.params.fallback;
    let lookup: Lookup =
        Arc::new(move |name: &str| settings.get(name).copied().unwrap_or(fallback));
    config
        .cost_policies
        .iter()
        .map(|&kind| cost_policy_spec(kind, problem, lookup.clone()))
        .collect()
}

fn cost_policy_spec(
    kind: CostPolicyKind,
    problem: &Problem,
    lookup: Lookup,
) -> Result<CostPolicySpec> {
    let k = problem.arm_count();
    match kind {
        CostPolicyKind::Pacing => Ok(CostPolicySpec {
            name: kind.name().into(),
            make: Box::new(move |policy, budget, horizon| {
                let h = lookup(policy);
                let per_query = budget / horizon.max(1) as f64;
                let price = if per_query > 0.0 {
                    h.pacing_price / per_query
                } else {
                    1.0
                };
                let config = OnlineConfig::new(k, budget).with_value(ValueOf::Score);
                let params = PacingParams::new(price)
                    .with_target(per_query.max(1e-12))
                    .with_step(h.pacing_step);
                let p = PacingPolicy::new(config, params).map_err(core("pacing policy"))?;
                Ok(Box::new(p) as Box<dyn CostPolicy<f64>>)
            }),
        }),
        CostPolicyKind::Threshold => {
            // Value/cost bounds from the learning split's real qualities and costs.
            let l = problem.learning();
            let values: Vec<f64> = l.quality.iter().map(|&q| f64::from(q)).collect();
            let bounds = ratio_bounds(&values, &l.cost).map_err(core("threshold bounds"))?;
            Ok(CostPolicySpec {
                name: kind.name().into(),
                make: Box::new(move |policy, budget, horizon| {
                    let h = lookup(policy);
                    let params = ThresholdParams::new(
                        bounds.upper * h.threshold_scale,
                        bounds.lower * h.threshold_scale,
                    )
                    .map_err(core("threshold bounds"))?;
                    let spread = Spread::uniform(horizon.max(1) as u64, 16)
                        .map_err(core("threshold spread"))?;
                    let config = OnlineConfig::new(k, budget)
                        .with_spread(spread)
                        .with_value(ValueOf::Score);
                    let p =
                        ThresholdPolicy::new(config, params).map_err(core("threshold policy"))?;
                    Ok(Box::new(p) as Box<dyn CostPolicy<f64>>)
                }),
            })
        }
        CostPolicyKind::Zcl => {
            // The same learning-split bounds, as measured: no scale, no spread, no fallback.
            let l = problem.learning();
            let values: Vec<f64> = l.quality.iter().map(|&q| f64::from(q)).collect();
            let bounds = ratio_bounds(&values, &l.cost).map_err(core("zcl bounds"))?;
            Ok(CostPolicySpec {
                name: kind.name().into(),
                make: Box::new(move |_policy, budget, _horizon| {
                    let config = OnlineConfig::new(k, budget).with_value(ValueOf::Score);
                    let p = ZclPolicy::new(config, bounds).map_err(core("zcl policy"))?;
                    Ok(Box::new(p) as Box<dyn CostPolicy<f64>>)
                }),
            })
        }
    }
}

/// Contexts from a fixed random Gaussian projection of the base embeddings to `dim − 1`
/// values, normalised, with a constant 1 appended: what the linear bandits read when no prior
/// is given. Deterministic from `seed`.
///
/// # Errors
/// [`SimError::Invalid`] for `dim < 2`.
pub fn random_projection(problem: &Problem, dim: usize, seed: u64) -> Result<ContextTable> {
    if dim < 2 {
        return Err(SimError::invalid(format!(
            "projection dimension {dim} must be ≥ 2"
        )));
    }
    let d_in = problem.dim();
    let mut rng = crate::stream::rng_for(seed, 20);
    let w: Vec<f32> = (0..(dim - 1) * d_in)
        .map(|_| {
            // Box–Muller from two uniforms in (0, 1].
            let u1 =
                ((rand_core::RngCore::next_u64(&mut rng) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (rand_core::RngCore::next_u64(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    let deployment = problem.deployment();
    let mut data = Vec::with_capacity(deployment.len() * dim);
    for i in 0..deployment.len() {
        let x = deployment.base_row(i, d_in);
        let start = data.len();
        for row in w.chunks_exact(d_in) {
            data.push(row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>());
        }
        let norm = data[start..].iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            for v in &mut data[start..] {
                *v /= norm;
            }
        }
        data.push(1.0);
    }
    ContextTable::from_rows("random-projection", dim, data)
}

/// Default dimension of the random projection the linear bandits read without a prior
/// (16 random directions and the constant 1), the same for the run and for `--tune`.
pub const DEFAULT_CONTEXT_DIM: usize = 17;

/// The contexts LinUCB, LinTS, ε-greedy and random read: the first prior's, so the comparison
/// isolates the prior, or without one a random projection of dimension `context_dim` (seed 0).
/// The one rule for both the experiment and the tuner.
///
/// # Errors
/// As [`random_projection`].
pub fn base_contexts(
    priors: &[PriorSource],
    problem: &Problem,
    context_dim: usize,
) -> Result<ContextTable> {
    match priors.first() {
        Some(p) => Ok(p.contexts.clone()),
        None => random_projection(problem, context_dim, 0),
    }
}
