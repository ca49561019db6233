//! Phase 2: the LLM vectors, by Bradley–Terry. For a pair where LLM i beat LLM j on a query with
//! context c = [ẑ, 1], `P(i ≻ j) = σ(⟨c, θ_i⟩ − ⟨c, θ_j⟩)`; the loss is the weighted binary
//! cross-entropy against 1 (or ½ for a tie) plus `λ‖θ‖²`, minimised full-batch with Adam and
//! stopped early on the held-out queries' pairs (keeping the best epoch).

use crate::adam::Adam;
use crate::dataset::Pair;

/// Outcome of the Bradley–Terry phase.
#[derive(Clone, Debug, PartialEq)]
pub struct BtOutcome {
    /// θ, `K × (d + 1)`.
    pub theta: Vec<f64>,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch whose θ was kept.
    pub best_epoch: usize,
    /// Weighted training loss at the kept epoch.
    pub train_loss: f64,
    /// Weighted held-out loss at the kept epoch (NaN without a held-out set).
    pub valid_loss: f64,
}

/// σ(u), computed without overflow for large |u|.
pub(crate) fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// Binary cross-entropy of σ(u) against t, computed stably from u.
fn bce(u: f64, t: f64) -> f64 {
    // −t·log σ(u) − (1−t)·log σ(−u), with log σ(u) = −softplus(−u).
    let softplus = |v: f64| {
        if v > 0.0 {
            v + (-v).exp().ln_1p()
        } else {
            v.exp().ln_1p()
        }
    };
    t * softplus(-u) + (1.0 - t) * softplus(u)
}

fn margin(ctx: &[f64], theta: &[f64], dc: usize, p: &Pair) -> f64 {
    let c = &ctx[p.q * dc..(p.q + 1) * dc];
    let ti = &theta[p.win * dc..(p.win + 1) * dc];
    let tj = &theta[p.lose * dc..(p.lose + 1) * dc];
    c.iter()
        .zip(ti.iter().zip(tj))
        .map(|(c, (a, b))| c * (a - b))
        .sum()
}

/// Mean weighted loss of `pairs` (NaN for none).
pub(crate) fn loss(ctx: &[f64], theta: &[f64], dc: usize, pairs: &[Pair]) -> f64 {
    let (mut sum, mut wsum) = (0.0, 0.0);
    for p in pairs {
        sum += p.weight * bce(margin(ctx, theta, dc, p), p.target);
        wsum += p.weight;
    }
    if wsum > 0.0 { sum / wsum } else { f64::NAN }
}

/// Fits θ for `k` LLMs on contexts `ctx` (`n × dc`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit(
    ctx: &[f64],
    dc: usize,
    k: usize,
    train: &[Pair],
    valid: &[Pair],
    max_epochs: usize,
    lr: f64,
    l2: f64,
    patience: usize,
    progress: &mut dyn FnMut(usize, f64),
) -> BtOutcome {
    let mut theta = vec![0.0; k * dc];
    let mut adam = Adam::new(theta.len(), lr);
    let mut grad = vec![0.0; theta.len()];
    let wsum: f64 = train
        .iter()
        .map(|p| p.weight)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let mut best = BtOutcome {
        theta: theta.clone(),
        epochs: 0,
        best_epoch: 0,
        train_loss: loss(ctx, &theta, dc, train),
        valid_loss: loss(ctx, &theta, dc, valid),
    };
    let mut since_best = 0usize;
    for epoch in 1..=max_epochs {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut train_sum = 0.0;
        for p in train {
            let u = margin(ctx, &theta, dc, p);
            train_sum += p.weight * bce(u, p.target);
            let g = p.weight * (sigmoid(u) - p.target) / wsum;
            let c = &ctx[p.q * dc..(p.q + 1) * dc];
            for (x, &cv) in c.iter().enumerate() {
                grad[p.win * dc + x] += g * cv;
                grad[p.lose * dc + x] -= g * cv;
            }
        }
        for (g, t) in grad.iter_mut().zip(&theta) {
            *g += 2.0 * l2 * t;
        }
        adam.step(&mut theta, &grad);
        let train_loss = train_sum / wsum;
        best.epochs = epoch;
        if valid.is_empty() {
            best.theta.copy_from_slice(&theta);
            best.best_epoch = epoch;
            best.train_loss = train_loss;
            progress(epoch, train_loss);
            continue;
        }
        let valid_loss = loss(ctx, &theta, dc, valid);
        progress(epoch, valid_loss);
        if valid_loss < best.valid_loss - 1e-6 || best.best_epoch == 0 {
            best.theta.copy_from_slice(&theta);
            best.best_epoch = epoch;
            best.train_loss = train_loss;
            best.valid_loss = valid_loss;
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= patience {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_is_stable_and_matches_the_definition() {
        let u: f64 = 0.3;
        let p = sigmoid(u);
        let direct = -(0.7 * p.ln() + 0.3 * (1.0 - p).ln());
        assert!((bce(u, 0.7) - direct).abs() < 1e-12);
        assert!(bce(800.0, 1.0).is_finite() && bce(-800.0, 1.0) > 799.0);
        assert!((bce(0.0, 0.5) - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn learns_a_context_dependent_winner() {
        // Two queries, two LLMs: LLM 0 wins on query 0, LLM 1 on query 1.
        let dc = 3;
        let ctx = vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let pair = |q, win, lose| Pair {
            q,
            win,
            lose,
            target: 1.0,
            weight: 1.0,
        };
        let train = vec![pair(0, 0, 1), pair(1, 1, 0)];
        let out = fit(&ctx, dc, 2, &train, &[], 300, 0.05, 0.0, 10, &mut |_, _| {});
        let score = |q: usize, a: usize| -> f64 {
            (0..dc)
                .map(|x| ctx[q * dc + x] * out.theta[a * dc + x])
                .sum()
        };
        assert!(score(0, 0) > score(0, 1));
        assert!(score(1, 1) > score(1, 0));
        assert!(out.train_loss < 0.1, "{}", out.train_loss);
    }
}
