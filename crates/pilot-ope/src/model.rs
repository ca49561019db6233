//! The direct method's reward model: one ridge regression per LLM, fitted on the log's contexts
//! and rewards of the calls made to that LLM.

use crate::Logged;

/// Per-LLM ridge regressions `r̂(x, a) = m_a + θ_aᵀ x`, predictions clamped to `[0, 1]`: `m_a`
/// is the LLM's mean logged reward shrunk toward the overall mean (one pseudo-call), `θ_a` the
/// ridge fit of the residuals, so that a rarely called LLM is predicted near its own mean rather
/// than near 0. An LLM with no logged call predicts the overall mean.
#[derive(Clone, Debug, PartialEq)]
pub struct RewardModel {
    dim: usize,
    theta: Vec<Option<Vec<f64>>>,
    offset: Vec<f64>,
    mean: f64,
}

impl RewardModel {
    /// Fits on the decisions `rows` of `log` (indices may repeat: a bootstrap resample), with
    /// ridge weight `lambda` (> 0) and `arms` LLMs.
    pub fn fit(log: &[Logged], rows: &[usize], arms: usize, lambda: f64) -> Self {
        let dim = log.first().map_or(0, |d| d.context.len());
        let usable = |i: usize| {
            log.get(i)
                .filter(|d| d.reward.is_some() && d.chosen < arms && d.context.len() == dim)
        };
        let mut sum_a = vec![0.0f64; arms];
        let mut seen = vec![0usize; arms];
        let (mut sum, mut n) = (0.0, 0usize);
        for &i in rows {
            let Some(d) = usable(i) else { continue };
            let r = f64::from(d.reward.unwrap_or(0.0));
            sum_a[d.chosen] += r;
            seen[d.chosen] += 1;
            sum += r;
            n += 1;
        }
        let mean = if n > 0 { sum / n as f64 } else { 0.5 };
        let offset: Vec<f64> = (0..arms)
            .map(|a| (sum_a[a] + mean) / (seen[a] as f64 + 1.0))
            .collect();
        let mut gram = vec![vec![0.0f64; dim * dim]; arms];
        let mut rhs = vec![vec![0.0f64; dim]; arms];
        for &i in rows {
            let Some(d) = usable(i) else { continue };
            let a = d.chosen;
            let r = f64::from(d.reward.unwrap_or(0.0)) - offset[a];
            let g = &mut gram[a];
            for (p, &xp) in d.context.iter().enumerate() {
                let xp = f64::from(xp);
                rhs[a][p] += xp * r;
                for (q, &xq) in d.context.iter().enumerate().take(p + 1) {
                    g[p * dim + q] += xp * f64::from(xq);
                }
            }
        }
        let theta = (0..arms)
            .map(|a| {
                if seen[a] == 0 {
                    return None;
                }
                let g = &mut gram[a];
                for p in 0..dim {
                    g[p * dim + p] += lambda;
                    for q in 0..p {
                        g[q * dim + p] = g[p * dim + q];
                    }
                }
                solve_spd(g, &rhs[a], dim)
            })
            .collect();
        Self {
            dim,
            theta,
            offset,
            mean,
        }
    }

    /// Cross-fitted predictions for every decision of `log` and every arm: decision `i` is
    /// predicted by a model fitted on the `rows` outside its fold (`i mod folds`), so that its
    /// own reward never shapes its prediction (an in-sample fit shrinks the residuals doubly
    /// robust estimators correct with, most for rarely called LLMs).
    pub fn cross_fit(
        log: &[Logged],
        rows: &[usize],
        arms: usize,
        lambda: f64,
        folds: usize,
    ) -> Vec<Vec<f64>> {
        let folds = folds.max(2);
        let models: Vec<Self> = (0..folds)
            .map(|f| {
                let train: Vec<usize> = rows.iter().copied().filter(|i| i % folds != f).collect();
                Self::fit(log, &train, arms, lambda)
            })
            .collect();
        log.iter()
            .enumerate()
            .map(|(i, d)| {
                let m = &models[i % folds];
                (0..d.arms.len())
                    .map(|a| m.predict(a, &d.context))
                    .collect()
            })
            .collect()
    }

    /// The predicted reward of LLM `arm` on `context`, in `[0, 1]`.
    pub fn predict(&self, arm: usize, context: &[f32]) -> f64 {
        let base = self.offset.get(arm).copied().unwrap_or(self.mean);
        match self.theta.get(arm) {
            Some(Some(t)) if context.len() == self.dim => (base
                + t.iter()
                    .zip(context)
                    .map(|(a, &b)| a * f64::from(b))
                    .sum::<f64>())
            .clamp(0.0, 1.0),
            _ => base,
        }
    }
}

/// Solves `A x = b` for a symmetric positive definite `A` (`n × n`, row-major) by Cholesky;
/// `None` when it is not positive definite.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(s > 0.0) {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0f64; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    let mut x = vec![0.0f64; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = solve_spd(&a, &[2.0, 1.0], 2).unwrap_or_default();
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * x[0] + 3.0 * x[1] - 1.0).abs() < 1e-12);
        assert!(solve_spd(&[0.0], &[1.0], 1).is_none());
    }
}
