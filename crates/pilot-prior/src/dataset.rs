//! The learning set in the form the trainers want: the distinct queries of the preferences as
//! dense f64 rows, pairs re-indexed onto them, and a seeded validation split by query.

use pilot_core::ErrorKind;
use pilot_data::{Embeddings, PreferenceSet};
use rand_core::RngCore;

use crate::error::{PriorError, Result};

/// One pair on local query indices.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair {
    pub q: usize,
    pub win: usize,
    pub lose: usize,
    /// 1 for a strict preference, ½ for a tie.
    pub target: f64,
    pub weight: f64,
}

pub(crate) struct LearningSet {
    pub d_in: usize,
    pub k: usize,
    /// Embedding row of each local query.
    pub rows: Vec<usize>,
    /// `n × d_in`.
    pub x: Vec<f64>,
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    /// Local queries of the training part.
    pub train_queries: Vec<usize>,
    /// Pairs per LLM over the whole set.
    pub pairs_per_llm: Vec<usize>,
}

/// A uniform index below `n` (`n > 0`) by Lemire's multiply-shift.
pub(crate) fn below(rng: &mut dyn RngCore, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

impl LearningSet {
    pub(crate) fn build(
        emb: &Embeddings,
        prefs: &PreferenceSet,
        validation_fraction: f64,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        if prefs.pairs.is_empty() {
            return Err(PriorError::new(
                ErrorKind::Empty,
                format!(
                    "{}: no preference pairs to learn from",
                    prefs.source.display()
                ),
            ));
        }
        if prefs.llms.len() < 2 {
            return Err(PriorError::new(
                ErrorKind::Empty,
                format!(
                    "{}: at least 2 LLMs are needed, found {}",
                    prefs.source.display(),
                    prefs.llms.len()
                ),
            ));
        }
        prefs.check(Some(emb.rows())).map_err(|e| {
            PriorError::new(
                e.kind(),
                format!(
                    "{e} (embeddings {} have {} rows)",
                    emb.source().display(),
                    emb.rows()
                ),
            )
        })?;
        let d_in = emb.dim();
        let mut local = vec![usize::MAX; emb.rows()];
        let mut rows = Vec::new();
        for p in &prefs.pairs {
            if local[p.row] == usize::MAX {
                local[p.row] = rows.len();
                rows.push(p.row);
            }
        }
        let mut x = Vec::with_capacity(rows.len() * d_in);
        for &r in &rows {
            let v = emb.get(r).ok_or_else(|| {
                PriorError::new(
                    ErrorKind::OutOfRange,
                    format!("embedding row {r} is missing"),
                )
            })?;
            x.extend(v.iter().map(|&f| f64::from(f)));
        }
        // Validation by query, not by pair: pairs of one query share its embedding, so a pair
        // split would leak the query into both sides.
        let n = rows.len();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, below(rng, i + 1));
        }
        let n_valid = if n >= 10 {
            ((n as f64) * validation_fraction).round() as usize
        } else {
            0
        };
        let mut is_valid = vec![false; n];
        for &q in order.iter().take(n_valid) {
            is_valid[q] = true;
        }
        let mut train = Vec::new();
        let mut valid = Vec::new();
        let mut pairs_per_llm = vec![0usize; prefs.llms.len()];
        for p in &prefs.pairs {
            let q = local[p.row];
            pairs_per_llm[p.preferred] += 1;
            pairs_per_llm[p.other] += 1;
            let pair = Pair {
                q,
                win: p.preferred,
                lose: p.other,
                target: if p.tie { 0.5 } else { 1.0 },
                weight: p.weight,
            };
            if is_valid[q] {
                valid.push(pair);
            } else {
                train.push(pair);
            }
        }
        let train_queries = (0..n).filter(|&q| !is_valid[q]).collect();
        Ok(Self {
            d_in,
            k: prefs.llms.len(),
            rows,
            x,
            train,
            valid,
            train_queries,
            pairs_per_llm,
        })
    }

    pub(crate) fn n(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn x_row(&self, q: usize) -> &[f64] {
        &self.x[q * self.d_in..(q + 1) * self.d_in]
    }
}

/// Every query's `[ẑ, 1]` (`n × (d + 1)`) and `‖W·x + b‖` for the current projection.
pub(crate) fn contexts(set: &LearningSet, w: &[f64], b: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = set.n();
    let mut ctx = vec![0.0; n * (d + 1)];
    let mut norms = vec![0.0; n];
    for q in 0..n {
        let x = set.x_row(q);
        let c = &mut ctx[q * (d + 1)..(q + 1) * (d + 1)];
        for (k, (row, bk)) in w.chunks_exact(set.d_in).zip(b).enumerate() {
            c[k] = row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>() + bk;
        }
        let norm = c[..d].iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        for v in &mut c[..d] {
            *v /= norm;
        }
        c[d] = 1.0;
        norms[q] = norm;
    }
    (ctx, norms)
}
