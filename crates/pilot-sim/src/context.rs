//! Policy contexts, computed once per problem for every deployment query.
//!
//! Each policy reads its context from one table: the linear bandits from the prior's map
//! (base embedding → `[normalize(W·x), 1]`), the kNN router from its per-arm predictions.
//! Computing them once keeps the per-seed replay to policy work only.

use crate::{Neighbours, Problem, Result, SimError};

/// A map from a base embedding to a policy context.
pub trait ContextMap {
    /// The context dimension.
    fn dim(&self) -> usize;

    /// Writes the context of base embedding `base` into `out` (`out.len() == dim()`).
    ///
    /// # Errors
    /// Whatever the map reports for a wrong dimension or a degenerate input.
    fn write(&self, base: &[f32], out: &mut [f32]) -> pilot_core::Result<()>;
}

/// Contexts of every deployment query, `len × dim`, row-major.
#[derive(Clone, Debug)]
pub struct ContextTable {
    name: String,
    dim: usize,
    data: Vec<f32>,
}

impl ContextTable {
    /// Applies `map` to every deployment query of `problem`.
    ///
    /// # Errors
    /// [`SimError::Core`] naming the query when the map fails, [`SimError::Invalid`] when it
    /// writes a NaN or infinite value.
    pub fn from_map(name: &str, problem: &Problem, map: &dyn ContextMap) -> Result<Self> {
        let dim = map.dim();
        let deployment = problem.deployment();
        let mut data = vec![0.0; deployment.len() * dim];
        for (i, out) in data.chunks_exact_mut(dim.max(1)).enumerate() {
            let base = deployment.base_row(i, problem.dim());
            map.write(base, out).map_err(|e| {
                SimError::core(
                    format!("context '{name}' of query {}", deployment.ids[i]),
                    e,
                )
            })?;
        }
        Self::from_rows(name, dim, data)
    }

    /// The full-information kNN router's contexts: for each deployment query, the mean real
    /// quality of each arm over its nearest learning queries.
    ///
    /// # Errors
    /// [`SimError::Invalid`] when the neighbours do not match the problem.
    pub fn knn_predictions(problem: &Problem, neighbours: &Neighbours) -> Result<Self> {
        let k = problem.arm_count();
        let learning = problem.learning();
        let mut data = Vec::with_capacity(problem.deployment().len() * k);
        for i in 0..problem.deployment().len() {
            let near = neighbours.of(i);
            if near.is_empty() || near.iter().any(|&j| j >= learning.len()) {
                return Err(SimError::invalid(format!(
                    "kNN router: neighbours of deployment query {i} do not match the problem"
                )));
            }
            for a in 0..k {
                let sum: f32 = near.iter().map(|&j| learning.quality[j * k + a]).sum();
                data.push(sum / near.len() as f32);
            }
        }
        Self::from_rows("knn", k, data)
    }

    /// Wraps precomputed rows.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for a zero dimension, a length that is not a multiple of it, or
    /// a NaN or infinite value.
    pub fn from_rows(name: &str, dim: usize, data: Vec<f32>) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(SimError::invalid(format!(
                "context '{name}': {} values do not form rows of dimension {dim}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(SimError::invalid(format!(
                "context '{name}': row {} has a non-finite value {}",
                i / dim,
                data[i]
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            dim,
            data,
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Context dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The context of deployment query `i` (empty when out of range).
    pub fn row(&self, i: usize) -> &[f32] {
        self.data
            .get(i * self.dim..(i + 1) * self.dim)
            .unwrap_or(&[])
    }
}
