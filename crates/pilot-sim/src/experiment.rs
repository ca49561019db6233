//! The standard experiment: every policy (PILOT per prior, the prior alone, LinUCB, LinTS,
//! ε-greedy, random, the full-information kNN router) × online cost policies × budgets × seeds
//! × scenarios, plus the unbudgeted references and the offline-optimal knapsack per budget.

use std::sync::Arc;

use pilot_bandit::{EpsilonGreedyVec, LinTs, LinTsVec, LinUcb, LinUcbVec, UniformRandom};
use pilot_budget::owned::Exact;
use pilot_budget::{
    OnlineConfig, PacingParams, PacingPolicy, Spread, ThresholdPolicy, ValueOf, ratio_bounds,
};
use pilot_core::{CostPolicy, Policy};

use crate::grid::{CostPolicySpec, Grid, PolicySpec};
use crate::offline::{offline_optimum, reference_row, unbudgeted_references};
use crate::summary::{RegretCurve, SummaryRow, aggregate, frontier_auc};
use crate::{
    ContextTable, CostModel, Frozen, Neighbours, Problem, ReadOut, Result, Scenario, SimError,
};

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
}

/// The online cost policies the experiment can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostPolicyKind {
    /// Dual-price pacing (pilot-budget's `PacingPolicy`).
    Pacing,
    /// The Zhou–Chakrabarty–Lukose threshold policy with uniform spreading.
    Threshold,
}

impl CostPolicyKind {
    /// Name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pacing => "pacing",
            Self::Threshold => "threshold",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pacing" => Some(Self::Pacing),
            "threshold" => Some(Self::Threshold),
            _ => None,
        }
    }
}

/// Hyperparameters and grid of the experiment.
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
    /// LinUCB / PILOT exploration weight α.
    pub alpha: f32,
    /// Ridge weight λ (for PILOT: how many observations the prior is worth).
    pub lambda: f32,
    /// PILOT's ridge weight on its prior.
    pub pilot_lambda: f32,
    /// LinTS posterior scale.
    pub ts_scale: f32,
    /// ε-greedy exploration rate.
    pub epsilon: f32,
    /// Pacing's starting price, as a multiple of 1 / (budget per query).
    pub pacing_price: f64,
    /// Pacing's multiplicative step.
    pub pacing_step: f64,
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
            alpha: 0.1,
            lambda: 1.0,
            pilot_lambda: 4.0,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.1,
            pacing_step: 0.05,
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
}

fn core(what: &'static str) -> impl Fn(pilot_core::Error) -> SimError {
    move |e| SimError::core(what, e)
}

impl Experiment {
    /// Assembles the policies and cost policies.
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
        let mut policies = Vec::new();
        let alpha = config.alpha;
        let ucb = LinUcb::params()
            .alpha(alpha)
            .lambda(config.lambda)
            .reward_range(0.0, 1.0)
            .check()
            .map_err(core("LinUCB hyperparameters"))?;
        let pilot = LinUcb::params()
            .alpha(alpha)
            .lambda(config.pilot_lambda)
            .reward_range(0.0, 1.0)
            .check()
            .map_err(core("PILOT hyperparameters"))?;
        let greedy_prior = LinUcb::params()
            .alpha(0.0)
            .lambda(config.pilot_lambda)
            .reward_range(0.0, 1.0)
            .check()
            .map_err(core("prior-only hyperparameters"))?;
        let ts = LinTs::params()
            .scale(config.ts_scale)
            .lambda(config.lambda)
            .reward_range(0.0, 1.0)
            .check()
            .map_err(core("LinTS hyperparameters"))?;
        let eg = pilot_bandit::EpsilonGreedy::params()
            .epsilon(config.epsilon)
            .lambda(config.lambda)
            .reward_range(0.0, 1.0)
            .check()
            .map_err(core("ε-greedy hyperparameters"))?;
        for prior in priors {
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
            let missing: Vec<&str> = prior
                .vectors
                .iter()
                .zip(problem.llms())
                .filter(|(v, _)| v.is_none())
                .map(|(_, n)| n.as_str())
                .collect();
            if !missing.is_empty() {
                notes.push(format!(
                    "prior '{}' has no vector for {} (PILOT starts them at zero)",
                    prior.name,
                    missing.join(", ")
                ));
            }
            let index = contexts.len();
            contexts.push(prior.contexts);
            let vectors = Arc::new(prior.vectors);
            let suffix = if index == 2 && contexts.len() == 3 {
                String::new()
            } else {
                format!("[{}]", prior.name)
            };
            let v = vectors.clone();
            policies.push(PolicySpec {
                name: format!("pilot{suffix}"),
                context: index,
                make: Box::new(move |_| {
                    let refs: Vec<Option<&[f32]>> = v.iter().map(|p| p.as_deref()).collect();
                    let p = LinUcbVec::with_priors(pilot, pdim, &refs)
                        .map_err(core("PILOT with priors"))?;
                    Ok(Box::new(p) as Box<dyn Policy<f32>>)
                }),
            });
            let v = vectors;
            policies.push(PolicySpec {
                name: format!("prior-only{suffix}"),
                context: index,
                make: Box::new(move |_| {
                    let refs: Vec<Option<&[f32]>> = v.iter().map(|p| p.as_deref()).collect();
                    let p = LinUcbVec::with_priors(greedy_prior, pdim, &refs)
                        .map_err(core("prior-only policy"))?;
                    Ok(Box::new(Frozen::new(p)) as Box<dyn Policy<f32>>)
                }),
            });
        }
        // Names of single-prior runs read "pilot", with several priors "pilot[name]".
        if contexts.len() > 3 {
            for p in &mut policies {
                if !p.name.contains('[') {
                    p.name = format!("{}[{}]", p.name, "1");
                }
            }
        }
        policies.push(PolicySpec {
            name: "linucb".into(),
            context: 0,
            make: Box::new(move |_| {
                Ok(
                    Box::new(LinUcbVec::new(ucb, k, dim).map_err(core("LinUCB"))?)
                        as Box<dyn Policy<f32>>,
                )
            }),
        });
        policies.push(PolicySpec {
            name: "lints".into(),
            context: 0,
            make: Box::new(move |_| {
                Ok(Box::new(LinTsVec::new(ts, k, dim).map_err(core("LinTS"))?)
                    as Box<dyn Policy<f32>>)
            }),
        });
        policies.push(PolicySpec {
            name: "egreedy".into(),
            context: 0,
            make: Box::new(move |_| {
                Ok(
                    Box::new(EpsilonGreedyVec::new(eg, k, dim).map_err(core("ε-greedy"))?)
                        as Box<dyn Policy<f32>>,
                )
            }),
        });
        policies.push(PolicySpec {
            name: "random".into(),
            context: 0,
            make: Box::new(move |_| {
                Ok(
                    Box::new(UniformRandom::new(k, dim).map_err(core("random"))?)
                        as Box<dyn Policy<f32>>,
                )
            }),
        });
        policies.push(PolicySpec {
            name: "knn-full-info".into(),
            context: 1,
            make: Box::new(move |_| Ok(Box::new(ReadOut::new(k)) as Box<dyn Policy<f32>>)),
        });
        let cost_policies = config
            .cost_policies
            .iter()
            .map(|&kind| cost_policy_spec(kind, &problem, &config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            problem,
            contexts,
            costs,
            policies,
            cost_policies,
            reference_arm,
            config,
            notes,
        })
    }

    /// The problem.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// Names of the policies in the grid.
    pub fn policy_names(&self) -> Vec<String> {
        self.policies.iter().map(|p| p.name.clone()).collect()
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
        let grid = self.grid();
        let cells = grid.run(progress)?;
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
        Ok(ExperimentReport {
            rows,
            curves,
            auc,
            notes,
        })
    }
}

fn cost_policy_spec(
    kind: CostPolicyKind,
    problem: &Problem,
    config: &ExperimentConfig,
) -> Result<CostPolicySpec> {
    let k = problem.arm_count();
    match kind {
        CostPolicyKind::Pacing => {
            let factor = config.pacing_price;
            let step = config.pacing_step;
            if !(factor.is_finite() && factor > 0.0 && step.is_finite() && step > 0.0) {
                return Err(SimError::invalid(format!(
                    "pacing price factor {factor} and step {step} must be finite and > 0"
                )));
            }
            Ok(CostPolicySpec {
                name: kind.name().into(),
                make: Box::new(move |budget, horizon| {
                    let per_query = budget / horizon.max(1) as f64;
                    let price = if per_query > 0.0 {
                        factor / per_query
                    } else {
                        1.0
                    };
                    let config = OnlineConfig::new(k, budget).with_value(ValueOf::Score);
                    let params = PacingParams::new(price)
                        .with_target(per_query.max(1e-12))
                        .with_step(step);
                    let p = PacingPolicy::new(config, params).map_err(core("pacing policy"))?;
                    Ok(Box::new(p) as Box<dyn CostPolicy<f64>>)
                }),
            })
        }
        CostPolicyKind::Threshold => {
            // Value/cost bounds from the learning split's real qualities and costs.
            let l = problem.learning();
            let values: Vec<f64> = l.quality.iter().map(|&q| f64::from(q)).collect();
            let params = ratio_bounds(&values, &l.cost).map_err(core("threshold bounds"))?;
            Ok(CostPolicySpec {
                name: kind.name().into(),
                make: Box::new(move |budget, horizon| {
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
