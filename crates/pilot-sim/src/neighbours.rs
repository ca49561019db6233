//! Nearest learning queries of each deployment query (linfa-nn linear search, L2 distance on
//! the base embeddings), shared by the cost estimator and the full-information kNN router.

use linfa_nn::distance::L2Dist;
use linfa_nn::{LinearSearch, NearestNeighbour};
use ndarray::{ArrayView1, ArrayView2};

use crate::{Problem, Result, SimError};

/// For each deployment query, the indices of its `k` nearest learning queries, nearest first.
#[derive(Clone, Debug)]
pub struct Neighbours {
    k: usize,
    indices: Vec<usize>,
}

impl Neighbours {
    /// Finds the `k` nearest learning queries of every deployment query.
    ///
    /// Linear search: MiniLM vectors have 384 dimensions, where trees do not prune; the
    /// search runs once per problem, not once per seed.
    ///
    /// # Errors
    /// [`SimError::Invalid`] when `k` is 0 or the learning split is smaller than `k`.
    pub fn find(problem: &Problem, k: usize) -> Result<Self> {
        let learning = problem.learning();
        if k == 0 || learning.len() < k {
            return Err(SimError::invalid(format!(
                "kNN needs 1 ≤ k ≤ learning queries: k = {k}, learning queries = {}",
                learning.len()
            )));
        }
        let dim = problem.dim();
        let batch = ArrayView2::from_shape((learning.len(), dim), &learning.base)
            .map_err(|e| SimError::invalid(format!("learning embeddings: {e}")))?;
        let index = LinearSearch::new()
            .from_batch(&batch, L2Dist)
            .map_err(|e| SimError::invalid(format!("kNN index: {e}")))?;
        let deployment = problem.deployment();
        let mut indices = Vec::with_capacity(deployment.len() * k);
        for i in 0..deployment.len() {
            let point = ArrayView1::from(deployment.base_row(i, dim));
            let found = index
                .k_nearest(point, k)
                .map_err(|e| SimError::invalid(format!("kNN query {i}: {e}")))?;
            if found.len() != k {
                return Err(SimError::invalid(format!(
                    "kNN query {i}: expected {k} neighbours, found {}",
                    found.len()
                )));
            }
            indices.extend(found.into_iter().map(|(_, j)| j));
        }
        Ok(Self { k, indices })
    }

    /// Number of neighbours per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The nearest learning queries of deployment query `i` (empty when out of range).
    pub fn of(&self, i: usize) -> &[usize] {
        self.indices
            .get(i * self.k..(i + 1) * self.k)
            .unwrap_or(&[])
    }
}
