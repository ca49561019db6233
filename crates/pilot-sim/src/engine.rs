//! One episode: a policy and a cost policy replay the deployment stream under a budget, with
//! bandit feedback (only the chosen LLM's quality and cost are revealed).
//!
//! The episode runs on [`pilot_router::Router`], the object live traffic goes through: per
//! query, `route` (policy scores → the budget guard around the cost policy → the chosen LLM and
//! its worst-case hold), then `settle` with the real cost and `feedback` with the real quality.
//! What is evaluated here is what is deployed.
//!
//! The budget guard (pilot-budget's [`Guard`](pilot_budget::Guard)) makes the budget hold
//! against *real* costs, unknown before a call: an arm is called only if its upper cost
//! estimate fits in what is left after keeping [`CostModel::reserve_per_query`] for every query
//! still to come. When the cost policy's choice does not fit (or it reports the budget
//! exhausted), the guard falls back to the arm with the best estimate among those that fit,
//! then to the cheapest arm that fits without the reserve; when nothing fits, the query is not
//! served (quality 0, counted).
//!
//! A world that moves mid-stream ([`crate::world`]) is the same loop with a [`Changes`]
//! schedule: the qualities and real costs of the changed world per position, and events
//! applied through the router at their step (a new LLM joins the pool, a price factor on its
//! quotes, a new budget), where a real deployment would be told them.

use pilot_core::{ArmId, CostPolicy};
use pilot_router::{
    Arm, ArmStart, Exploration, Input, Price, Quote, Record, Router, RouterConfig, RoutingPolicy,
};

use crate::error::CoreContext;
use crate::stream::rng_for;
use crate::{ContextTable, CostModel, Problem, Result, SimError};

/// Guard units per USD in the simulator: pico-dollars, so rounding every hold up to a whole
/// unit moves a RouterBench call's cost by less than one part in 10⁷.
pub const SIM_UNITS_PER_USD: f64 = 1e12;

/// Everything an episode reads; nothing here changes during a run.
#[derive(Clone, Copy)]
pub struct Episode<'a> {
    /// The problem (real qualities and costs of the deployment split).
    pub problem: &'a Problem,
    /// The policy's contexts, one row per deployment query.
    pub contexts: &'a ContextTable,
    /// Cost estimates the router decides on.
    pub costs: &'a CostModel,
    /// The arrival order (indices into the deployment split).
    pub order: &'a [usize],
    /// The budget (USD), checked against real costs.
    pub budget: f64,
    /// Seed of the policy's random draws.
    pub seed: u64,
    /// Whether to keep the router's event log (decisions, settlements, feedback) in the
    /// outcome.
    pub log: bool,
    /// How the router draws among the candidates (the argmax in the grid; ε-mix or softmax to
    /// log a stream for off-policy evaluation).
    pub exploration: Exploration,
}

/// Something the world tells the router at a step of an episode. LLMs are named by their
/// index in the problem; the router's arm of an LLM differs when one joined late.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event<'a> {
    /// An LLM joins the pool (`Router::add_arm`), started at this vector (the policy's prior
    /// vector for it; `None`: the policy's neutral start). The pool starts without every LLM
    /// that joins in the episode, and the policy must be made for that smaller pool (see
    /// [`Changes::pool`]).
    Joins {
        /// The LLM.
        llm: usize,
        /// Its starting vector.
        start: Option<&'a [f32]>,
    },
    /// An LLM's price is multiplied by `factor` from now on (`Router::set_price`): its cost
    /// quotes (estimate and worst case) are scaled.
    Price {
        /// The LLM.
        llm: usize,
        /// Price multiplier.
        factor: f64,
    },
    /// The budget becomes spent + `factor` × what is left (`Router::set_budget`).
    BudgetLeft {
        /// Multiplier of what is left.
        factor: f64,
    },
}

/// A changing world for one episode: what the router is told when, and what it really gets.
#[derive(Clone, Copy, Debug)]
pub struct Changes<'a> {
    /// `(step, event)`, applied before routing the query at that step (steps ascending).
    pub events: &'a [(usize, Event<'a>)],
    /// Qualities per stream position (`n × K`), in place of the problem's.
    pub quality: &'a [f32],
    /// Real costs per stream position (`n × K`).
    pub cost: &'a [f64],
    /// The per-query oracle's quality per position (the best available LLM's).
    pub oracle: &'a [f32],
}

impl Changes<'_> {
    /// The LLMs the pool starts with, in the router's arm order ([`starting_pool`]).
    pub fn pool(&self, llms: usize) -> Vec<usize> {
        starting_pool(llms, self.events)
    }
}

/// The LLMs a pool of `llms` starts with under `events`, in the router's arm order: all but
/// those that join later ([`Event::Joins`]), which are appended as they join.
pub fn starting_pool(llms: usize, events: &[(usize, Event<'_>)]) -> Vec<usize> {
    (0..llms)
        .filter(|&l| {
            !events
                .iter()
                .any(|(_, e)| matches!(e, Event::Joins { llm, .. } if *llm == l))
        })
        .collect()
}

/// What happened in one episode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Sum of the qualities obtained (unserved queries count 0).
    pub quality: f64,
    /// Sum of the real costs charged.
    pub cost: f64,
    /// Queries answered.
    pub served: usize,
    /// Queries that could not be served within the budget.
    pub unserved: usize,
    /// Queries where the budget guard replaced the cost policy's decision.
    pub overridden: usize,
    /// Whether the real spend stayed within the budget.
    pub budget_held: bool,
    /// Cumulative regret against the per-query oracle after each step.
    pub regret: Vec<f32>,
    /// The arm called at each step (`None`: unserved).
    pub choices: Vec<Option<usize>>,
    /// The router's event log, when [`Episode::log`] asked for it.
    pub events: Vec<Record>,
    /// With [`Changes`]: the quality obtained at each step (0 unserved).
    pub qualities: Vec<f32>,
    /// With [`Changes`]: the real cost at each step (0 unserved).
    pub costs: Vec<f64>,
    /// The budget at the end (after any budget event).
    pub final_budget: f64,
}

/// Runs one episode of `policy` and `cost_policy` over `episode.order`, through a router.
///
/// # Errors
/// [`SimError::Invalid`] when the contexts, cost model or order do not match the problem or
/// the policy's dimensions; [`SimError::Core`] (naming the step) when a policy or cost policy
/// refuses its input.
pub fn run_episode(
    episode: &Episode<'_>,
    policy: &mut dyn RoutingPolicy,
    cost_policy: &mut dyn CostPolicy<f64>,
) -> Result<Outcome> {
    run_episode_with(episode, None, policy, cost_policy)
}

/// [`run_episode`] in a world that changes: `changes` replaces the problem's qualities, real
/// costs and oracle by the changed world's (per stream position) and tells the router its
/// events at their steps. `None` is exactly [`run_episode`].
///
/// # Errors
/// As [`run_episode`], plus [`SimError::Invalid`] for tables that do not match the stream,
/// and the router's refusal of an event (naming the step).
pub fn run_episode_with(
    episode: &Episode<'_>,
    changes: Option<&Changes<'_>>,
    policy: &mut dyn RoutingPolicy,
    cost_policy: &mut dyn CostPolicy<f64>,
) -> Result<Outcome> {
    let problem = episode.problem;
    let k = problem.arm_count();
    let deployment = problem.deployment();
    // The router's arms, as LLMs of the problem (a late LLM is appended when it joins).
    let mut pool = changes.map_or_else(|| (0..k).collect(), |c| c.pool(k));
    check_shapes(episode, policy, pool.len())?;
    let n = episode.order.len();
    if let Some(c) = changes
        && (c.quality.len() != n * k || c.cost.len() != n * k || c.oracle.len() != n)
    {
        return Err(SimError::invalid(format!(
            "changing world: {} qualities, {} costs and {} oracle values for {n} steps × {k} \
             LLMs",
            c.quality.len(),
            c.cost.len(),
            c.oracle.len()
        )));
    }
    let oracle = problem.oracle();
    let mut rng = rng_for(episode.seed, 2);
    let arms = pool
        .iter()
        .map(|&llm| Arm::new(problem.llms()[llm].clone(), Price::default()))
        .collect();
    let config = RouterConfig {
        units_per_currency: SIM_UNITS_PER_USD,
        record: episode.log,
        exploration: episode.exploration,
        ..RouterConfig::new(episode.budget)
    };
    // The cost policy is made for the problem's pool; the router grows it as LLMs join.
    if pool.len() != k {
        cost_policy
            .set_arm_count(pool.len())
            .within(|| "episode: the cost policy's starting pool".to_owned())?;
    }
    let mut router =
        Router::new(policy, cost_policy, arms, config).within(|| "episode: router".to_owned())?;
    let mut out = Outcome {
        budget_held: true,
        regret: Vec::with_capacity(n),
        choices: Vec::with_capacity(n),
        final_budget: episode.budget,
        ..Outcome::default()
    };
    let mut regret = 0.0f64;
    let mut budget = episode.budget;
    // Price factors told so far (per LLM), and the quotes in the router's arm order (only
    // when they differ from the cost model's: a price event or a late LLM).
    let mut factor = vec![1.0f64; k];
    let (mut estimate, mut worst) = (Vec::with_capacity(k), Vec::with_capacity(k));
    let mut next_event = 0;
    for (t, &i) in episode.order.iter().enumerate() {
        let now = t as u64;
        if let Some(c) = changes {
            while let Some(&(step, event)) = c.events.get(next_event)
                && step <= t
            {
                next_event += 1;
                match event {
                    Event::Joins { llm, start } => {
                        let name = problem.llms().get(llm).ok_or_else(|| {
                            SimError::invalid(format!("step {t}: no LLM {llm} to join"))
                        })?;
                        let start =
                            start.map_or(ArmStart::Neutral, |v| ArmStart::Vector(v.to_vec()));
                        router
                            .add_arm(name, Price::default(), start, now)
                            .within(|| format!("step {t}: a new LLM joins"))?;
                        pool.push(llm);
                    }
                    Event::Price { llm, factor: f } => {
                        let arm = pool.iter().position(|&l| l == llm).ok_or_else(|| {
                            SimError::invalid(format!("step {t}: LLM {llm} is not in the pool"))
                        })?;
                        if let Some(slot) = factor.get_mut(llm) {
                            *slot *= f;
                        }
                        router
                            .set_price(ArmId::new(arm), scaled_price(f), now)
                            .within(|| format!("step {t}: price change"))?;
                    }
                    Event::BudgetLeft { factor: f } => {
                        budget = out.cost + f * (budget - out.cost).max(0.0);
                        router
                            .set_budget(budget, now)
                            .within(|| format!("step {t}: budget change"))?;
                        out.final_budget = budget;
                    }
                }
            }
        }
        let still_to_come = (n - t - 1) as f64;
        router
            .set_keep_aside(still_to_come * episode.costs.reserve_per_query())
            .within(|| format!("step {t}: reserve"))?;
        let as_is = pool.len() == k
            && pool.iter().enumerate().all(|(a, &l)| a == l)
            && factor.iter().all(|&f| f == 1.0);
        let quote = if as_is {
            Quote::PerArm {
                estimate: episode.costs.estimate(i),
                worst: episode.costs.upper(i),
            }
        } else {
            let scaled =
                |row: &[f64], llm: usize| row.get(llm).copied().unwrap_or(0.0) * factor[llm];
            estimate.clear();
            worst.clear();
            for &llm in &pool {
                estimate.push(scaled(episode.costs.estimate(i), llm));
                worst.push(scaled(episode.costs.upper(i), llm));
            }
            Quote::PerArm {
                estimate: &estimate,
                worst: &worst,
            }
        };
        let decision = router
            .route(
                now,
                Input::Context(episode.contexts.row(i)),
                quote,
                now,
                &mut rng,
            )
            .within(|| format!("step {t}: route"))?;
        if decision.overridden {
            out.overridden += 1;
        }
        let chosen = decision.arm.and_then(|a| pool.get(a.index()).copied());
        let best = match changes {
            Some(c) => f64::from(c.oracle[t]),
            None => oracle.get(i).map_or(0.0, |o| f64::from(o.1)),
        };
        match chosen {
            Some(a) => {
                let (quality, cost) = match changes {
                    Some(c) => (c.quality[t * k + a], c.cost[t * k + a]),
                    None => (deployment.quality[i * k + a], deployment.cost[i * k + a]),
                };
                if changes.is_some() {
                    out.qualities.push(quality);
                    out.costs.push(cost);
                }
                out.cost += cost;
                out.quality += f64::from(quality);
                out.served += 1;
                regret += best - f64::from(quality);
                router
                    .settle(now, cost, now)
                    .within(|| format!("step {t}: settle (real cost)"))?;
                router
                    .feedback(now, quality, now)
                    .within(|| format!("step {t}: feedback"))?;
            }
            None => {
                out.unserved += 1;
                regret += best;
                if changes.is_some() {
                    out.qualities.push(0.0);
                    out.costs.push(0.0);
                }
            }
        }
        // A relative tolerance absorbs float summation order only.
        if out.cost > budget * (1.0 + 1e-9) {
            out.budget_held = false;
        }
        out.regret.push(regret as f32);
        out.choices.push(chosen);
    }
    out.events = router.drain_events();
    Ok(out)
}

/// The price recorded for a price change: the simulator quotes per arm, so the recorded price
/// only carries the factor (per million input and output tokens) for the event log.
fn scaled_price(factor: f64) -> Price {
    Price {
        input_per_mtok: factor,
        output_per_mtok: factor,
        ..Price::default()
    }
}

fn check_shapes(episode: &Episode<'_>, policy: &dyn RoutingPolicy, pool: usize) -> Result<()> {
    let problem = episode.problem;
    let n = problem.deployment().len();
    if policy.arm_count() != pool {
        return Err(SimError::invalid(format!(
            "policy has {} arms but the pool starts with {pool} LLMs",
            policy.arm_count()
        )));
    }
    if policy.dim() != episode.contexts.dim() {
        return Err(SimError::invalid(format!(
            "policy takes {}-dimensional contexts but table '{}' has dimension {}",
            policy.dim(),
            episode.contexts.name(),
            episode.contexts.dim()
        )));
    }
    if episode.contexts.len() != n || episode.costs.len() != n {
        return Err(SimError::invalid(format!(
            "{n} deployment queries but {} contexts and {} cost estimates",
            episode.contexts.len(),
            episode.costs.len()
        )));
    }
    if let Some(&bad) = episode.order.iter().find(|&&i| i >= n) {
        return Err(SimError::invalid(format!(
            "stream order refers to query {bad} of {n}"
        )));
    }
    if !episode.budget.is_finite() || episode.budget < 0.0 {
        return Err(SimError::invalid(format!(
            "budget {} must be finite and ≥ 0",
            episode.budget
        )));
    }
    Ok(())
}
