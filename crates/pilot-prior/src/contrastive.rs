//! Phase 1b: contrastive refinement of the projection. Queries on which the same LLMs win are
//! pulled together in the shared space, queries with opposite winners pushed apart.
//!
//! Each learning query gets a win pattern: for every LLM, its wins minus its losses on that
//! query, centred and normalised (queries where everything tied have none and are skipped).
//! For random pairs of queries the loss is `(⟨ẑ_q, ẑ_p⟩ − ⟨v_q, v_p⟩)²`: the cosine in the
//! shared space regresses onto the cosine of the win patterns. A pull `μ‖W − W₀‖²` towards the
//! PCA start keeps the directions the preferences say nothing about.

use rand_core::RngCore;

use crate::adam::Adam;
use crate::dataset::{LearningSet, below, contexts};
use crate::params::FitParams;

/// Per local query, its normalised win pattern over the K LLMs (training pairs only).
fn win_patterns(set: &LearningSet) -> Vec<Option<Vec<f64>>> {
    let mut score = vec![0.0; set.n() * set.k];
    let mut any = vec![false; set.n()];
    for p in &set.train {
        if p.target < 1.0 {
            continue;
        }
        score[p.q * set.k + p.win] += p.weight;
        score[p.q * set.k + p.lose] -= p.weight;
        any[p.q] = true;
    }
    score
        .chunks_exact(set.k)
        .zip(&any)
        .map(|(s, &any)| {
            if !any {
                return None;
            }
            let mean = s.iter().sum::<f64>() / s.len() as f64;
            let v: Vec<f64> = s.iter().map(|x| x - mean).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            (norm > 1e-12).then(|| v.iter().map(|x| x / norm).collect())
        })
        .collect()
}

/// Refines `w`, `b` in place; `progress(epoch)` after each epoch. Returns the last epoch's mean
/// loss (without the anchor term).
pub(crate) fn refine(
    set: &LearningSet,
    w: &mut [f64],
    b: &mut [f64],
    params: &FitParams,
    rng: &mut dyn RngCore,
    progress: &mut dyn FnMut(usize),
) -> f64 {
    let (d, epochs, partners) = (
        params.dim,
        params.contrastive_epochs,
        params.contrastive_partners,
    );
    let (lr, anchor) = (params.contrastive_lr, params.contrastive_anchor);
    let patterns = win_patterns(set);
    let anchors: Vec<usize> = set
        .train_queries
        .iter()
        .copied()
        .filter(|&q| patterns[q].is_some())
        .collect();
    if anchors.len() < 2 || epochs == 0 {
        return f64::NAN;
    }
    let d_in = set.d_in;
    let w0 = w.to_vec();
    let b0 = b.to_vec();
    let mut params: Vec<f64> = w.iter().chain(b.iter()).copied().collect();
    let mut adam = Adam::new(params.len(), lr);
    let mut grad = vec![0.0; params.len()];
    let mut last = f64::NAN;
    for epoch in 0..epochs {
        let (wc, bc) = params.split_at(d * d_in);
        let (ctx, norms) = contexts(set, wc, bc, d);
        let zhat = |q: usize| &ctx[q * (d + 1)..q * (d + 1) + d];
        // dL/dẑ per query, accumulated over the sampled pairs.
        let mut g_hat = vec![0.0; set.n() * d];
        let mut loss = 0.0;
        let mut count = 0usize;
        for &q in &anchors {
            for _ in 0..partners {
                let p = anchors[below(rng, anchors.len())];
                if p == q {
                    continue;
                }
                let (Some(vq), Some(vp)) = (&patterns[q], &patterns[p]) else {
                    continue;
                };
                let target: f64 = vq.iter().zip(vp).map(|(a, b)| a * b).sum();
                let (zq, zp) = (zhat(q), zhat(p));
                let cos: f64 = zq.iter().zip(zp).map(|(a, b)| a * b).sum();
                let r = cos - target;
                loss += r * r;
                count += 1;
                for k in 0..d {
                    g_hat[q * d + k] += 2.0 * r * zp[k];
                    g_hat[p * d + k] += 2.0 * r * zq[k];
                }
            }
        }
        if count == 0 {
            break;
        }
        let scale = 1.0 / count as f64;
        grad.iter_mut().for_each(|g| *g = 0.0);
        let (gw, gb) = grad.split_at_mut(d * d_in);
        let mut gz = vec![0.0; d];
        for q in 0..set.n() {
            let gh = &g_hat[q * d..(q + 1) * d];
            if gh.iter().all(|&g| g == 0.0) {
                continue;
            }
            // Through the normalisation: dL/dz = (I − ẑẑᵀ) dL/dẑ / ‖z‖.
            let zq = zhat(q);
            let along: f64 = gh.iter().zip(zq).map(|(a, b)| a * b).sum();
            for k in 0..d {
                gz[k] = scale * (gh[k] - along * zq[k]) / norms[q];
            }
            let x = set.x_row(q);
            for k in 0..d {
                let g = gz[k];
                gb[k] += g;
                for (gwk, xi) in gw[k * d_in..(k + 1) * d_in].iter_mut().zip(x) {
                    *gwk += g * xi;
                }
            }
        }
        for (i, g) in grad.iter_mut().enumerate() {
            let start = if i < d * d_in {
                w0[i]
            } else {
                b0[i - d * d_in]
            };
            *g += 2.0 * anchor * (params[i] - start);
        }
        adam.step(&mut params, &grad);
        last = loss * scale;
        progress(epoch + 1);
    }
    let (wc, bc) = params.split_at(d * d_in);
    w.copy_from_slice(wc);
    b.copy_from_slice(bc);
    last
}
