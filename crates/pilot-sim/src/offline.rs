//! Reference rows that need no replay: each single LLM, the per-query oracle, and the
//! offline-optimal assignment under a budget (a multiple-choice knapsack on the real costs).

use pilot_core::{MckpInstance, MckpSolver};

use crate::summary::SummaryRow;
use crate::{Problem, Result, SimError};

/// Capacity of the integer-scaled knapsack: costs are measured in units of
/// `budget / KNAPSACK_RESOLUTION`.
pub const KNAPSACK_RESOLUTION: u64 = 100_000;

/// The offline-optimal total quality and its real cost under `budget` (USD), on the
/// deployment split with every quality and cost known in advance.
///
/// Integer scaling: the unit is `budget / KNAPSACK_RESOLUTION`, each cost is rounded *up* to
/// whole units and the capacity is `KNAPSACK_RESOLUTION`, so the assignment found always fits
/// the real budget; the rounding can only lose value (at most one unit per query), which makes
/// the figure a slight underestimate of the true optimum. Dominated LLMs of each query (one
/// that is no cheaper and no better than another) are removed before solving; this changes no
/// optimum.
///
/// # Errors
/// [`SimError::Invalid`] for a non-positive budget; [`SimError::Core`] when the solver fails
/// (e.g. even the cheapest LLM of every query does not fit: `Infeasible`).
pub fn offline_optimum(
    problem: &Problem,
    budget: f64,
    solver: &mut dyn MckpSolver,
) -> Result<(f64, f64)> {
    if !budget.is_finite() || budget <= 0.0 {
        return Err(SimError::invalid(format!(
            "offline optimum: budget {budget} must be finite and > 0"
        )));
    }
    let unit = budget / KNAPSACK_RESOLUTION as f64;
    let k = problem.arm_count();
    let d = problem.deployment();
    let mut weights = Vec::new();
    let mut profits = Vec::new();
    let mut class_ends = Vec::with_capacity(d.len());
    let mut arms = Vec::new();
    for i in 0..d.len() {
        let q = d.quality_row(i, k);
        let c = d.cost_row(i, k);
        let w: Vec<u64> = c
            .iter()
            .map(|&c| ((c / unit).ceil()).min(u64::MAX as f64 / 4.0) as u64)
            .collect();
        for a in 0..k {
            let dominated = (0..k).any(|b| {
                b != a && w[b] <= w[a] && q[b] >= q[a] && (w[b] < w[a] || q[b] > q[a] || b < a)
            });
            if !dominated {
                weights.push(w[a]);
                profits.push(f64::from(q[a]));
                arms.push(a);
            }
        }
        class_ends.push(weights.len());
    }
    let instance = MckpInstance::new(KNAPSACK_RESOLUTION, &weights, &profits, &class_ends)
        .map_err(|e| SimError::core("offline optimum: knapsack instance", e))?;
    let mut choice = vec![0usize; d.len()];
    solver
        .solve(&instance, &mut choice)
        .map_err(|e| SimError::core("offline optimum: knapsack solver", e))?;
    let (mut quality, mut cost) = (0.0, 0.0);
    for (i, &item) in choice.iter().enumerate() {
        let flat = instance.class_range(i).start + item;
        let a = *arms.get(flat).ok_or_else(|| {
            SimError::invalid(format!(
                "offline optimum: solver chose item {item} of query {i}"
            ))
        })?;
        quality += f64::from(d.quality[i * k + a]);
        cost += d.cost[i * k + a];
    }
    Ok((quality, cost))
}

/// A reference row with no seeds and no learning (single LLM, oracle, offline optimum).
pub fn reference_row(
    problem: &Problem,
    reference_arm: usize,
    policy: &str,
    cost_policy: &str,
    budget_frac: Option<f64>,
    quality_sum: f64,
    cost_sum: f64,
) -> SummaryRow {
    let n = problem.deployment().len().max(1) as f64;
    let (ref_q, ref_c) = problem.single_llm(reference_arm);
    let quality_mean = quality_sum / n;
    let pct = |v: f64, of: f64| if of > 0.0 { 100.0 * v / of } else { f64::NAN };
    SummaryRow {
        scenario: "any".to_owned(),
        policy: policy.to_owned(),
        cost_policy: cost_policy.to_owned(),
        budget_frac,
        seeds: 1,
        quality_mean,
        quality_std: 0.0,
        quality_pct_of_best: pct(quality_mean, ref_q),
        cost_pct_of_best: pct(cost_sum / n, ref_c),
        regret_final: f64::NAN,
        regret_100: None,
        regret_300: None,
        unserved_mean: 0.0,
        overridden_mean: 0.0,
        budget_held: budget_frac.map(|b| cost_sum <= b * ref_c * n * (1.0 + 1e-9)),
        world: None,
    }
}

/// Reference rows for every single LLM and the per-query oracle (no budget).
pub fn unbudgeted_references(problem: &Problem, reference_arm: usize) -> Vec<SummaryRow> {
    let n = problem.deployment().len() as f64;
    let mut rows: Vec<SummaryRow> = (0..problem.arm_count())
        .map(|a| {
            let (q, c) = problem.single_llm(a);
            reference_row(
                problem,
                reference_arm,
                &format!("single:{}", problem.llms()[a]),
                "none",
                None,
                q * n,
                c * n,
            )
        })
        .collect();
    let oracle = problem.oracle();
    let q: f64 = oracle.iter().map(|o| f64::from(o.1)).sum();
    let c: f64 = oracle.iter().map(|o| o.2).sum();
    rows.push(reference_row(
        problem,
        reference_arm,
        "oracle",
        "none",
        None,
        q,
        c,
    ));
    rows
}
