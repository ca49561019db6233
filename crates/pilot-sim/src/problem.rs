//! The routing problem the simulator replays: a pool of LLMs, a learning split and a
//! deployment split, each query with its base embedding and every LLM's real quality and cost.

use crate::{Result, SimError};

/// One split of queries, stored column-wise: row `i` owns `base[i*dim..]`, `quality[i*K..]`,
/// `cost[i*K..]`.
#[derive(Clone, Debug, Default)]
pub struct Queries {
    /// Query identifiers (for error messages and decision logs).
    pub ids: Vec<String>,
    /// Task index of each query (into [`Problem::tasks`]).
    pub task: Vec<usize>,
    /// Base embeddings, `len × dim`, row-major.
    pub base: Vec<f32>,
    /// Quality of every LLM's answer, `len × K`, in `[0, 1]`.
    pub quality: Vec<f32>,
    /// Real cost of every LLM's call (USD), `len × K`, finite and ≥ 0.
    pub cost: Vec<f64>,
}

impl Queries {
    /// Number of queries.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no queries.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends one query; the caller's slices are copied.
    pub fn push(&mut self, id: String, task: usize, base: &[f32], quality: &[f32], cost: &[f64]) {
        self.ids.push(id);
        self.task.push(task);
        self.base.extend_from_slice(base);
        self.quality.extend_from_slice(quality);
        self.cost.extend_from_slice(cost);
    }

    /// The base embedding of query `i` (empty when out of range).
    pub fn base_row(&self, i: usize, dim: usize) -> &[f32] {
        self.base.get(i * dim..(i + 1) * dim).unwrap_or(&[])
    }

    /// The qualities of query `i` (empty when out of range).
    pub fn quality_row(&self, i: usize, arms: usize) -> &[f32] {
        self.quality.get(i * arms..(i + 1) * arms).unwrap_or(&[])
    }

    /// The costs of query `i` (empty when out of range).
    pub fn cost_row(&self, i: usize, arms: usize) -> &[f64] {
        self.cost.get(i * arms..(i + 1) * arms).unwrap_or(&[])
    }
}

/// A complete, validated routing problem.
#[derive(Clone, Debug)]
pub struct Problem {
    llms: Vec<String>,
    tasks: Vec<String>,
    dim: usize,
    learning: Queries,
    deployment: Queries,
    dropped: usize,
}

impl Problem {
    /// Checks and wraps a problem.
    ///
    /// `dropped` is how many source rows were left out (for missing cells), reported as is.
    ///
    /// # Errors
    /// [`SimError::Invalid`] when the pool or a split is empty, a column has the wrong length,
    /// a task index is unknown, a quality is outside `[0, 1]` or NaN, or a cost is negative or
    /// not finite; the message names the split, the query id, the LLM and the value.
    pub fn new(
        llms: Vec<String>,
        tasks: Vec<String>,
        dim: usize,
        learning: Queries,
        deployment: Queries,
        dropped: usize,
    ) -> Result<Self> {
        if llms.is_empty() {
            return Err(SimError::invalid("the pool has no LLMs"));
        }
        if dim == 0 {
            return Err(SimError::invalid("embedding dimension is 0"));
        }
        if deployment.is_empty() {
            return Err(SimError::invalid("the deployment split has no queries"));
        }
        let k = llms.len();
        for (name, split) in [("learning", &learning), ("deployment", &deployment)] {
            let n = split.len();
            let columns = [
                ("task", split.task.len(), n),
                ("base embedding values", split.base.len(), n * dim),
                ("quality values", split.quality.len(), n * k),
                ("cost values", split.cost.len(), n * k),
            ];
            for (column, found, expected) in columns {
                if found != expected {
                    return Err(SimError::invalid(format!(
                        "{name} split: {column}: expected {expected}, found {found}"
                    )));
                }
            }
            for i in 0..n {
                let id = &split.ids[i];
                if split.task[i] >= tasks.len() {
                    return Err(SimError::invalid(format!(
                        "{name} split, query {id}: task index {} but only {} tasks",
                        split.task[i],
                        tasks.len()
                    )));
                }
                if let Some(v) = split.base_row(i, dim).iter().find(|v| !v.is_finite()) {
                    return Err(SimError::invalid(format!(
                        "{name} split, query {id}: embedding value {v} is not finite"
                    )));
                }
                for (a, llm) in llms.iter().enumerate() {
                    let q = split.quality[i * k + a];
                    if !(0.0..=1.0).contains(&q) {
                        return Err(SimError::invalid(format!(
                            "{name} split, query {id}, LLM {llm}: quality {q} is outside [0, 1]"
                        )));
                    }
                    let c = split.cost[i * k + a];
                    if !c.is_finite() || c < 0.0 {
                        return Err(SimError::invalid(format!(
                            "{name} split, query {id}, LLM {llm}: cost {c} is not a finite \
                             non-negative number"
                        )));
                    }
                }
            }
        }
        Ok(Self {
            llms,
            tasks,
            dim,
            learning,
            deployment,
            dropped,
        })
    }

    /// The LLM names, in arm order.
    pub fn llms(&self) -> &[String] {
        &self.llms
    }

    /// Number of arms (LLMs).
    pub fn arm_count(&self) -> usize {
        self.llms.len()
    }

    /// Task names.
    pub fn tasks(&self) -> &[String] {
        &self.tasks
    }

    /// Base embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The learning split (for priors, supervised baselines and cost estimates).
    pub fn learning(&self) -> &Queries {
        &self.learning
    }

    /// The deployment split (replayed with bandit feedback).
    pub fn deployment(&self) -> &Queries {
        &self.deployment
    }

    /// Source rows left out for missing cells.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Index of an LLM by name.
    pub fn arm_index(&self, name: &str) -> Option<usize> {
        self.llms.iter().position(|l| l == name)
    }

    /// Mean quality and mean cost of always calling `arm` on the deployment split.
    pub fn single_llm(&self, arm: usize) -> (f64, f64) {
        let d = &self.deployment;
        let k = self.arm_count();
        let n = d.len().max(1) as f64;
        let q: f64 = (0..d.len())
            .map(|i| f64::from(d.quality[i * k + arm]))
            .sum();
        let c: f64 = (0..d.len()).map(|i| d.cost[i * k + arm]).sum();
        (q / n, c / n)
    }

    /// The arm with the highest mean deployment quality (the "best single LLM" of the report).
    pub fn best_single_llm(&self) -> usize {
        let mut best = (0, f64::NEG_INFINITY);
        for a in 0..self.arm_count() {
            let (q, _) = self.single_llm(a);
            if q > best.1 {
                best = (a, q);
            }
        }
        best.0
    }

    /// The per-query oracle on the deployment split: the best quality, and among the arms that
    /// reach it the cheapest. Returns `(arm, quality, cost)` per query.
    pub fn oracle(&self) -> Vec<(usize, f32, f64)> {
        let d = &self.deployment;
        let k = self.arm_count();
        (0..d.len())
            .map(|i| {
                let q = d.quality_row(i, k);
                let c = d.cost_row(i, k);
                let mut best = (0usize, f32::NEG_INFINITY, f64::INFINITY);
                for a in 0..k {
                    if q[a] > best.1 || (q[a] == best.1 && c[a] < best.2) {
                        best = (a, q[a], c[a]);
                    }
                }
                best
            })
            .collect()
    }
}
