//! One episode: a policy and a cost policy replay the deployment stream under a budget, with
//! bandit feedback (only the chosen LLM's quality and cost are revealed).
//!
//! Per query: context → `Policy::select` (per-arm scores) → estimated costs →
//! `CostPolicy::choose` → the budget guard → the real quality and cost of the chosen arm →
//! `Policy::update`, `CostPolicy::charge`.
//!
//! The budget guard makes the budget hold against *real* costs, which are unknown before a
//! call: an arm is called only if its upper cost estimate fits in what is left after keeping
//! [`CostModel::reserve_per_query`] for every query still to come. When the cost policy's
//! choice does not fit (or it reports the budget exhausted), the guard falls back to the arm
//! with the best estimate among those that fit, then to the cheapest arm that fits without
//! the reserve; when nothing fits, the query is not served (quality 0, counted).

use pilot_core::{ArmId, ArmScore, Cost, CostPolicy, Decision, Policy, Reward};

use crate::error::CoreContext;
use crate::stream::rng_for;
use crate::{ContextTable, CostModel, Problem, Result, SimError};

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
}

/// Runs one episode of `policy` and `cost_policy` over `episode.order`.
///
/// # Errors
/// [`SimError::Invalid`] when the contexts, cost model or order do not match the problem or
/// the policy's dimensions; [`SimError::Core`] (naming the step) when a policy or cost policy
/// refuses its input.
pub fn run_episode(
    episode: &Episode<'_>,
    policy: &mut dyn Policy<f32>,
    cost_policy: &mut dyn CostPolicy<f64>,
) -> Result<Outcome> {
    let problem = episode.problem;
    let k = problem.arm_count();
    let deployment = problem.deployment();
    check_shapes(episode, policy)?;
    let oracle = problem.oracle();
    let mut rng = rng_for(episode.seed, 2);
    let mut scores = vec![ArmScore::<f32>::default(); k];
    let mut scores64 = vec![ArmScore::<f64>::default(); k];
    let n = episode.order.len();
    let mut out = Outcome {
        budget_held: true,
        regret: Vec::with_capacity(n),
        choices: Vec::with_capacity(n),
        ..Outcome::default()
    };
    let mut regret = 0.0f64;
    for (t, &i) in episode.order.iter().enumerate() {
        let context = episode.contexts.row(i);
        policy
            .select(context, &mut rng, &mut scores)
            .within(|| format!("step {t}: policy select"))?;
        for (wide, s) in scores64.iter_mut().zip(&scores) {
            *wide = ArmScore {
                estimate: f64::from(s.estimate),
                width: f64::from(s.width),
                score: f64::from(s.score),
            };
        }
        let estimate = episode.costs.estimate(i);
        let upper = episode.costs.upper(i);
        let decision = cost_policy
            .choose(&scores64, estimate)
            .within(|| format!("step {t}: cost policy choose"))?;
        let still_to_come = (n - t - 1) as f64;
        let left = episode.budget - out.cost;
        let slack = left - still_to_come * episode.costs.reserve_per_query();
        let chosen = guard(decision, &scores, upper, slack, left);
        if chosen != decision_arm(decision) {
            out.overridden += 1;
        }
        let best = oracle.get(i).map_or(0.0, |o| f64::from(o.1));
        match chosen {
            Some(a) => {
                let quality = deployment.quality[i * k + a];
                let cost = deployment.cost[i * k + a];
                out.cost += cost;
                out.quality += f64::from(quality);
                out.served += 1;
                regret += best - f64::from(quality);
                let charge = Cost::new(cost).within(|| format!("step {t}: real cost"))?;
                cost_policy
                    .charge(ArmId::new(a), charge)
                    .within(|| format!("step {t}: cost policy charge"))?;
                let reward = Reward::new(quality).within(|| format!("step {t}: reward"))?;
                policy
                    .update(ArmId::new(a), context, reward)
                    .within(|| format!("step {t}: policy update"))?;
            }
            None => {
                out.unserved += 1;
                regret += best;
            }
        }
        // A relative tolerance absorbs float summation order only.
        if out.cost > episode.budget * (1.0 + 1e-9) {
            out.budget_held = false;
        }
        out.regret.push(regret as f32);
        out.choices.push(chosen);
    }
    Ok(out)
}

fn decision_arm(decision: Decision) -> Option<usize> {
    match decision {
        Decision::Route(a) => Some(a.index()),
        Decision::BudgetExhausted => None,
    }
}

/// The arm actually called: the cost policy's if its upper cost fits `slack` (the budget left
/// after the reserve), else the best estimate that fits, else the cheapest arm that fits in
/// `left`, else none.
fn guard(
    decision: Decision,
    scores: &[ArmScore<f32>],
    upper: &[f64],
    slack: f64,
    left: f64,
) -> Option<usize> {
    if let Decision::Route(a) = decision
        && upper.get(a.index()).is_some_and(|&u| u <= slack)
    {
        return Some(a.index());
    }
    let fits = |budget: f64| {
        upper
            .iter()
            .enumerate()
            .filter(move |&(_, &u)| u <= budget)
            .map(|(a, _)| a)
    };
    if matches!(decision, Decision::Route(_)) {
        let best = fits(slack).max_by(|&a, &b| {
            let (sa, sb) = (scores[a].estimate, scores[b].estimate);
            sa.partial_cmp(&sb)
                .unwrap_or(core::cmp::Ordering::Equal)
                .then(b.cmp(&a))
        });
        if best.is_some() {
            return best;
        }
    }
    fits(left).min_by(|&a, &b| {
        upper[a]
            .partial_cmp(&upper[b])
            .unwrap_or(core::cmp::Ordering::Equal)
    })
}

fn check_shapes(episode: &Episode<'_>, policy: &dyn Policy<f32>) -> Result<()> {
    let problem = episode.problem;
    let n = problem.deployment().len();
    let k = problem.arm_count();
    if policy.arm_count() != k {
        return Err(SimError::invalid(format!(
            "policy has {} arms but the pool has {k} LLMs",
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
