//! Aggregates cells over seeds into report rows: mean quality and its spread, cost, regret,
//! budget adherence, and the area under each policy's cost–quality curve.

use std::collections::BTreeMap;

use crate::grid::{CellResult, Grid};
use crate::{Scenario, SimError};

/// One row of `summary.csv`: a (scenario, policy, cost policy, budget) over its seeds, or a
/// reference (single LLM, oracle, offline optimum) with one "seed".
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Stream order.
    pub scenario: String,
    /// Routing policy (or reference) name.
    pub policy: String,
    /// Cost policy name (`none` for unbudgeted references).
    pub cost_policy: String,
    /// Budget as a fraction of the reference LLM's cost (`None`: no budget).
    pub budget_frac: Option<f64>,
    /// Seeds aggregated.
    pub seeds: usize,
    /// Mean per-query quality, averaged over seeds.
    pub quality_mean: f64,
    /// Standard deviation of the per-seed mean quality.
    pub quality_std: f64,
    /// `quality_mean` as a percentage of the reference LLM's.
    pub quality_pct_of_best: f64,
    /// Total real cost as a percentage of the reference LLM's.
    pub cost_pct_of_best: f64,
    /// Final cumulative regret against the per-query oracle (mean over seeds).
    pub regret_final: f64,
    /// Cumulative regret after 100 queries (mean over seeds; `None` for shorter streams).
    pub regret_100: Option<f64>,
    /// Cumulative regret after 300 queries.
    pub regret_300: Option<f64>,
    /// Mean number of unserved queries.
    pub unserved_mean: f64,
    /// Mean number of decisions the budget guard overrode.
    pub overridden_mean: f64,
    /// Whether every seed stayed within budget (`None`: no budget).
    pub budget_held: Option<bool>,
    /// A world scenario's values (`None` for the grid's stream orders and the references).
    pub world: Option<WorldColumns>,
}

/// The columns a world scenario (`--scenario new-llm,…`) adds to its `summary.csv` rows.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldColumns {
    /// The step of the change.
    pub change_step: usize,
    /// Quality before the change, % of the reference LLM's on the same queries.
    pub quality_before_pct: f64,
    /// Quality from the change on, likewise.
    pub quality_after_pct: f64,
    /// After-change quality minus the stationary run's (points).
    pub delta_after: f64,
    /// New LLM: queries after its addition until adoption (mean over the seeds that adopted).
    pub adoption_steps: Option<f64>,
    /// Price or budget change: queries until spending re-settles.
    pub settle_steps: Option<f64>,
}

/// Mean regret curve of one (scenario, policy, cost policy, budget).
#[derive(Clone, Debug, PartialEq)]
pub struct RegretCurve {
    /// Stream order.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Cost policy name.
    pub cost_policy: String,
    /// Budget fraction.
    pub budget_frac: f64,
    /// Mean cumulative regret after each step.
    pub mean: Vec<f64>,
    /// The step where the world changed (world scenarios; marked on the plot).
    pub change_step: Option<usize>,
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Aggregates the cells of `grid` into summary rows and regret curves, in grid order.
///
/// # Errors
/// [`SimError::Invalid`] when the reference LLM has zero quality or cost (percentages would be
/// meaningless).
pub fn aggregate(
    grid: &Grid<'_>,
    cells: &[CellResult],
) -> crate::Result<(Vec<SummaryRow>, Vec<RegretCurve>)> {
    let n = grid.problem.deployment().len() as f64;
    let (ref_quality, ref_cost_mean) = grid.problem.single_llm(grid.reference_arm);
    let ref_cost = ref_cost_mean * n;
    if ref_quality.is_nan() || ref_quality <= 0.0 || ref_cost.is_nan() || ref_cost <= 0.0 {
        return Err(SimError::invalid(format!(
            "reference LLM {} has mean quality {ref_quality} and total cost {ref_cost}; both \
             must be > 0",
            grid.problem.llms()[grid.reference_arm]
        )));
    }
    type Key = (usize, usize, usize, usize);
    let scenario_index = |s: Scenario| grid.scenarios.iter().position(|&x| x == s).unwrap_or(0);
    let mut groups: BTreeMap<Key, Vec<&CellResult>> = BTreeMap::new();
    for c in cells {
        groups
            .entry((
                scenario_index(c.scenario),
                c.policy,
                c.cost_policy,
                c.budget,
            ))
            .or_default()
            .push(c);
    }
    let mut rows = Vec::with_capacity(groups.len());
    let mut curves = Vec::with_capacity(groups.len());
    for ((s, p, cp, b), group) in groups {
        let qualities: Vec<f64> = group.iter().map(|c| c.outcome.quality / n).collect();
        let (quality_mean, quality_std) = mean_std(&qualities);
        let cost = group.iter().map(|c| c.outcome.cost).sum::<f64>() / group.len() as f64;
        let at = |t: usize| -> Option<f64> {
            let v: Vec<f64> = group
                .iter()
                .filter_map(|c| c.outcome.regret.get(t - 1).map(|&r| f64::from(r)))
                .collect();
            (v.len() == group.len()).then(|| mean_std(&v).0)
        };
        let len = group
            .iter()
            .map(|c| c.outcome.regret.len())
            .min()
            .unwrap_or(0);
        let mut mean = vec![0.0; len];
        for c in &group {
            for (m, r) in mean.iter_mut().zip(&c.outcome.regret) {
                *m += f64::from(*r) / group.len() as f64;
            }
        }
        let per_seed = |f: fn(&CellResult) -> usize| {
            group.iter().map(|c| f(c) as f64).sum::<f64>() / group.len() as f64
        };
        let scenario = grid.scenarios[s].name().to_owned();
        let policy = grid.policies[p].name.clone();
        let cost_policy = grid.cost_policies[cp].name.clone();
        let budget_frac = grid.budget_fracs[b];
        rows.push(SummaryRow {
            scenario: scenario.clone(),
            policy: policy.clone(),
            cost_policy: cost_policy.clone(),
            budget_frac: Some(budget_frac),
            seeds: group.len(),
            quality_mean,
            quality_std,
            quality_pct_of_best: 100.0 * quality_mean / ref_quality,
            cost_pct_of_best: 100.0 * cost / ref_cost,
            regret_final: mean.last().copied().unwrap_or(0.0),
            regret_100: at(100),
            regret_300: at(300),
            unserved_mean: per_seed(|c| c.outcome.unserved),
            overridden_mean: per_seed(|c| c.outcome.overridden),
            budget_held: Some(group.iter().all(|c| c.outcome.budget_held)),
            world: None,
        });
        curves.push(RegretCurve {
            scenario,
            policy,
            cost_policy,
            budget_frac,
            mean,
            change_step: None,
        });
    }
    Ok((rows, curves))
}

/// Area under each (scenario, policy, cost policy)'s quality-versus-budget curve, divided by
/// the budget range: the mean quality over the budget range (trapezoid rule on the budget
/// fractions run). Rows without a budget are skipped; a single budget gives its quality.
pub fn frontier_auc(rows: &[SummaryRow]) -> Vec<(String, String, String, f64)> {
    let mut groups: BTreeMap<(String, String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows {
        if let Some(b) = r.budget_frac {
            groups
                .entry((r.scenario.clone(), r.policy.clone(), r.cost_policy.clone()))
                .or_default()
                .push((b, r.quality_mean));
        }
    }
    groups
        .into_iter()
        .map(|((s, p, c), mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let width = pts.last().map_or(0.0, |l| l.0) - pts.first().map_or(0.0, |f| f.0);
            let auc = if width > 0.0 {
                pts.windows(2)
                    .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
                    .sum::<f64>()
                    / width
            } else {
                pts.first().map_or(0.0, |p| p.1)
            };
            (s, p, c, auc)
        })
        .collect()
}
