//! Cost estimates made before a call: the router never sees a query's real cost in advance.
//!
//! Estimator: for arm `a` and a deployment query, the mean real cost of `a` on the query's `k`
//! nearest learning queries (base-embedding space). Neighbours capture what a price list
//! cannot: RouterBench's code questions (mbpp) have short prompts but long, expensive answers,
//! so a prompt-length model underestimates them several-fold.
//!
//! The upper estimate the budget guard holds must be a true bound, or the budget can be
//! overspent: the neighbours' maximum (times a safety factor) is not one when the deployment
//! traffic is unlike the learning rows (a code task held out: its long answers cost more than
//! any neighbour's). A deployment bounds a call by price × (prompt + `max_output`) tokens, a
//! setting of the provider, not of the query (the router's `Quote::Tokens`). The simulator has
//! no token counts, so its stand-in for that setting is each LLM's **cost cap**: the largest
//! real cost of that LLM on any row of the dataset (learning or deployment), i.e. a
//! `max_output` no answer of the dataset reached. The hold is the larger of the neighbours'
//! bound and the cap, so no real cost exceeds its hold. The cap is used for the hold only;
//! decisions use the neighbours' mean.

use crate::{Neighbours, Problem, Result, SimError};

/// Per-query cost estimates and upper estimates for the deployment split.
#[derive(Clone, Debug)]
pub struct CostModel {
    arms: usize,
    estimate: Vec<f64>,
    upper: Vec<f64>,
    reserve_per_query: f64,
}

/// How far the upper estimate sits above the neighbours' maximum.
pub const UPPER_SAFETY: f64 = 1.5;

impl CostModel {
    /// Builds estimates for every deployment query from its neighbours.
    ///
    /// `reserve_per_query` — what the budget guard keeps aside for each query still to come —
    /// is the mean over learning queries of the cheapest LLM's real cost, times
    /// [`UPPER_SAFETY`]: learning data only, never the deployment stream.
    ///
    /// # Errors
    /// [`SimError::Invalid`] when the neighbours were found for another problem.
    pub fn from_neighbours(problem: &Problem, neighbours: &Neighbours) -> Result<Self> {
        let k = problem.arm_count();
        let learning = problem.learning();
        let deployment = problem.deployment();
        let mut estimate = Vec::with_capacity(deployment.len() * k);
        let mut upper = Vec::with_capacity(deployment.len() * k);
        let cap = cost_caps(problem);
        for i in 0..deployment.len() {
            let near = neighbours.of(i);
            if near.is_empty() || near.iter().any(|&j| j >= learning.len()) {
                return Err(SimError::invalid(format!(
                    "cost model: neighbours of deployment query {i} do not match the problem"
                )));
            }
            for (a, &cap_a) in cap.iter().enumerate() {
                let costs = near.iter().map(|&j| learning.cost[j * k + a]);
                let (sum, max) = costs.fold((0.0, 0.0f64), |(s, m), c| (s + c, m.max(c)));
                estimate.push(sum / near.len() as f64);
                upper.push((max * UPPER_SAFETY).max(cap_a));
            }
        }
        let cheapest_sum: f64 = (0..learning.len())
            .map(|j| {
                learning
                    .cost_row(j, k)
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
            })
            .filter(|c| c.is_finite())
            .sum();
        let reserve_per_query = if learning.is_empty() {
            0.0
        } else {
            cheapest_sum / learning.len() as f64 * UPPER_SAFETY
        };
        Ok(Self {
            arms: k,
            estimate,
            upper,
            reserve_per_query,
        })
    }

    /// Whether every real deployment cost is at most its upper estimate (the guard's hold):
    /// the condition under which the budget guard guarantees no overspend.
    pub fn bounds(&self, problem: &Problem) -> bool {
        problem
            .deployment()
            .cost
            .iter()
            .zip(&self.upper)
            .all(|(c, u)| c <= u)
    }

    /// Builds a model from explicit tables (`len × K` each), for tests and other estimators.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for tables of different lengths, a length that is not a multiple
    /// of `arms`, a NaN/negative value or an upper estimate below its estimate.
    pub fn from_tables(
        arms: usize,
        estimate: Vec<f64>,
        upper: Vec<f64>,
        reserve_per_query: f64,
    ) -> Result<Self> {
        if arms == 0 || estimate.len() != upper.len() || !estimate.len().is_multiple_of(arms) {
            return Err(SimError::invalid(format!(
                "cost model: {} estimates and {} upper estimates for {arms} arms",
                estimate.len(),
                upper.len()
            )));
        }
        let bad = |v: f64| !v.is_finite() || v < 0.0;
        if let Some(i) = (0..estimate.len())
            .find(|&i| bad(estimate[i]) || bad(upper[i]) || upper[i] < estimate[i])
        {
            return Err(SimError::invalid(format!(
                "cost model: cell {i}: estimate {} / upper {} must be finite, ≥ 0, upper ≥ estimate",
                estimate[i], upper[i]
            )));
        }
        if bad(reserve_per_query) {
            return Err(SimError::invalid(format!(
                "cost model: reserve per query {reserve_per_query} must be finite and ≥ 0"
            )));
        }
        Ok(Self {
            arms,
            estimate,
            upper,
            reserve_per_query,
        })
    }

    /// Estimated cost of every arm for deployment query `i`.
    pub fn estimate(&self, i: usize) -> &[f64] {
        self.estimate
            .get(i * self.arms..(i + 1) * self.arms)
            .unwrap_or(&[])
    }

    /// Upper cost estimate of every arm for deployment query `i`.
    pub fn upper(&self, i: usize) -> &[f64] {
        self.upper
            .get(i * self.arms..(i + 1) * self.arms)
            .unwrap_or(&[])
    }

    /// Budget kept aside for each query still to come.
    pub fn reserve_per_query(&self) -> f64 {
        self.reserve_per_query
    }

    /// Number of deployment queries covered.
    pub fn len(&self) -> usize {
        self.estimate.len() / self.arms.max(1)
    }

    /// Whether no query is covered.
    pub fn is_empty(&self) -> bool {
        self.estimate.is_empty()
    }

    /// Mean absolute relative error of the estimates against the real deployment costs
    /// (a diagnostic for the report; the router never sees it).
    pub fn relative_error(&self, problem: &Problem) -> f64 {
        let d = problem.deployment();
        let (mut sum, mut n) = (0.0, 0usize);
        for (e, c) in self.estimate.iter().zip(&d.cost) {
            if *c > 0.0 {
                sum += (e - c).abs() / c;
                n += 1;
            }
        }
        if n == 0 { 0.0 } else { sum / n as f64 }
    }
}

/// Each LLM's cost cap: its largest real cost on any row of the problem (see the module docs).
fn cost_caps(problem: &Problem) -> Vec<f64> {
    let k = problem.arm_count();
    let mut cap = vec![0.0f64; k];
    for split in [problem.learning(), problem.deployment()] {
        for row in split.cost.chunks_exact(k.max(1)) {
            for (c, &v) in cap.iter_mut().zip(row) {
                if v.is_finite() {
                    *c = c.max(v);
                }
            }
        }
    }
    cap
}
