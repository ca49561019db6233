//! The whole fit: PCA → contrastive refinement → Bradley–Terry → calibration, deterministic
//! from the seed, with progress reported to the caller.

use std::time::Instant;

use pilot_core::ErrorKind;
use pilot_data::Embeddings;
use rand_core::SeedableRng;

use crate::bradley_terry;
use crate::calibrate::{self, Observations};
use crate::dataset::{LearningSet, contexts};
use crate::error::{PriorError, Result};
use crate::model::{LlmVector, Prior};
use crate::params::FitParams;
use crate::sources::{LearningData, QualityTable};
use crate::{contrastive, pca};

/// A stage of the fit, for progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// PCA initialisation of the projection.
    Pca,
    /// Contrastive refinement of the projection.
    Contrastive,
    /// Bradley–Terry fit of the LLM vectors.
    BradleyTerry,
    /// Calibration.
    Calibration,
}

/// What the fit did, for the fit report.
#[derive(Clone, Debug, PartialEq)]
pub struct FitSummary {
    /// Distinct learning queries.
    pub queries: usize,
    /// Pairs used for training / held out for early stopping.
    pub train_pairs: usize,
    /// Held-out pairs.
    pub valid_pairs: usize,
    /// Mean contrastive loss of the last epoch (NaN when skipped).
    pub contrastive_loss: f64,
    /// Bradley–Terry epochs run and the one kept.
    pub bt_epochs: usize,
    /// The kept epoch.
    pub bt_best_epoch: usize,
    /// Training BCE at the kept epoch.
    pub bt_train_loss: f64,
    /// Held-out BCE at the kept epoch.
    pub bt_valid_loss: f64,
    /// Pairwise accuracy on the held-out queries' strict pairs (NaN without any).
    pub valid_accuracy: f64,
    /// How many strict pairs `valid_accuracy` is measured on: print it next to the accuracy,
    /// since on a small dataset it can be a handful.
    pub valid_accuracy_pairs: usize,
    /// Seconds per stage: PCA, contrastive, Bradley–Terry, calibration.
    pub seconds: [f64; 4],
    /// Warnings from the source (LLMs without data...).
    pub warnings: Vec<String>,
}

impl FitSummary {
    /// Total fit time in seconds.
    pub fn total_seconds(&self) -> f64 {
        self.seconds.iter().sum()
    }
}

/// Learns a prior from `data` on base vectors `emb`.
///
/// `progress(stage, done, total)` is called as the fit advances (epochs for the iterative
/// stages).
///
/// # Errors
/// Invalid parameters (named), pairs that reference rows past `emb`, fewer than two LLMs, no
/// pairs, fewer learning queries than `dim`, or a numerical failure of PCA.
pub fn fit(
    emb: &Embeddings,
    data: &LearningData,
    params: &FitParams,
    progress: &mut dyn FnMut(Stage, usize, usize),
) -> Result<(Prior, FitSummary)> {
    params.check()?;
    let d = params.dim;
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(params.seed);
    let set = LearningSet::build(emb, &data.prefs, params.validation_fraction, &mut rng)?;
    let mut seconds = [0.0; 4];

    let t = Instant::now();
    progress(Stage::Pca, 0, 1);
    let (mut w, mut b) = pca::pca_init(&set, d)?;
    progress(Stage::Pca, 1, 1);
    seconds[0] = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let epochs = params.contrastive_epochs;
    let contrastive_loss = contrastive::refine(&set, &mut w, &mut b, params, &mut rng, &mut |e| {
        progress(Stage::Contrastive, e, epochs)
    });
    seconds[1] = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let dc = d + 1;
    let (ctx, _) = contexts(&set, &w, &b, d);
    let max = params.bt_max_epochs;
    let bt = bradley_terry::fit(
        &ctx,
        dc,
        set.k,
        &set.train,
        &set.valid,
        max,
        params.bt_lr,
        params.l2,
        params.patience,
        &mut |e, _| progress(Stage::BradleyTerry, e, max),
    );
    progress(Stage::BradleyTerry, max, max);
    seconds[2] = t.elapsed().as_secs_f64();
    let (valid_accuracy, valid_accuracy_pairs) = held_out_accuracy(&ctx, &bt.theta, dc, &set);

    let t = Instant::now();
    progress(Stage::Calibration, 0, 1);
    let (table, target) = match &data.quality {
        Some(q) => (
            q.clone(),
            "observed quality of the learning queries".to_string(),
        ),
        None => (
            win_fractions(&set, &data.prefs.llms),
            "per-query win fraction from the pairs (ties count half)".to_string(),
        ),
    };
    let obs = observations(emb, &table, &data.prefs.llms, &w, &b, d, &bt.theta)?;
    let calibration = calibrate::fit(&obs, target);
    progress(Stage::Calibration, 1, 1);
    seconds[3] = t.elapsed().as_secs_f64();

    let llms = data
        .prefs
        .llms
        .iter()
        .enumerate()
        .filter(|(a, _)| set.pairs_per_llm.get(*a).is_some_and(|&n| n > 0))
        .map(|(a, name)| {
            let raw = &bt.theta[a * dc..(a + 1) * dc];
            let mut theta: Vec<f32> = raw.iter().map(|v| (v * calibration.scale) as f32).collect();
            if let (Some(last), Some(c)) = (theta.last_mut(), calibration.intercepts.get(a)) {
                *last += *c as f32;
            }
            LlmVector {
                name: name.clone(),
                theta,
                raw: raw.iter().map(|&v| v as f32).collect(),
                pairs: set.pairs_per_llm[a],
            }
        })
        .collect::<Vec<_>>();
    let intercepts = data
        .prefs
        .llms
        .iter()
        .enumerate()
        .filter(|(a, _)| set.pairs_per_llm.get(*a).is_some_and(|&n| n > 0))
        .filter_map(|(a, _)| calibration.intercepts.get(a).copied())
        .collect();
    let missing = data
        .prefs
        .llms
        .iter()
        .enumerate()
        .filter(|(a, _)| set.pairs_per_llm.get(*a).is_none_or(|&n| n == 0))
        .map(|(_, n)| n.clone())
        .collect();
    let prior = Prior::new(
        params.embedder_id.clone(),
        set.d_in,
        d,
        w.iter().map(|&v| v as f32).collect(),
        b.iter().map(|&v| v as f32).collect(),
        llms,
        crate::model::Calibration {
            intercepts,
            ..calibration
        },
        missing,
        data.description.clone(),
        params.seed,
    )
    .map_err(|e| PriorError::core("the fitted prior is invalid (diverged?)", e))?;
    let summary = FitSummary {
        queries: set.n(),
        train_pairs: set.train.len(),
        valid_pairs: set.valid.len(),
        contrastive_loss,
        bt_epochs: bt.epochs,
        bt_best_epoch: bt.best_epoch,
        bt_train_loss: bt.train_loss,
        bt_valid_loss: bt.valid_loss,
        valid_accuracy,
        valid_accuracy_pairs,
        seconds,
        warnings: data.warnings.clone(),
    };
    Ok((prior, summary))
}

/// Pairwise accuracy on the held-out strict pairs, and how many there are.
fn held_out_accuracy(ctx: &[f64], theta: &[f64], dc: usize, set: &LearningSet) -> (f64, usize) {
    let (mut right, mut n) = (0.0, 0usize);
    for p in set.valid.iter().filter(|p| p.target == 1.0) {
        let c = &ctx[p.q * dc..(p.q + 1) * dc];
        let s = |a: usize| -> f64 {
            c.iter()
                .zip(&theta[a * dc..(a + 1) * dc])
                .map(|(x, y)| x * y)
                .sum()
        };
        let (si, sj) = (s(p.win), s(p.lose));
        right += if si > sj {
            1.0
        } else if si == sj {
            0.5
        } else {
            0.0
        };
        n += 1;
    }
    (if n > 0 { right / n as f64 } else { f64::NAN }, n)
}

/// Each learning query's win fraction per LLM, for sources without a quality.
fn win_fractions(set: &LearningSet, llms: &[String]) -> QualityTable {
    let k = set.k;
    let mut won = vec![0.0; set.n() * k];
    let mut games = vec![0.0; set.n() * k];
    for p in set.train.iter().chain(&set.valid) {
        won[p.q * k + p.win] += p.weight * p.target;
        won[p.q * k + p.lose] += p.weight * (1.0 - p.target);
        games[p.q * k + p.win] += p.weight;
        games[p.q * k + p.lose] += p.weight;
    }
    QualityTable {
        llms: llms.to_vec(),
        rows: set.rows.clone(),
        values: won
            .iter()
            .zip(&games)
            .map(|(w, g)| (*g > 0.0).then(|| w / g))
            .collect(),
    }
}

/// (affinity, quality) per LLM of the learning set, over the quality table's rows.
fn observations(
    emb: &Embeddings,
    table: &QualityTable,
    llms: &[String],
    w: &[f64],
    b: &[f64],
    d: usize,
    theta: &[f64],
) -> Result<Observations> {
    let dc = d + 1;
    let column: Vec<Option<usize>> = llms
        .iter()
        .map(|n| table.llms.iter().position(|t| t == n))
        .collect();
    let mut per_llm = vec![Vec::new(); llms.len()];
    let mut c = vec![0.0; dc];
    for (i, &row) in table.rows.iter().enumerate() {
        let x = emb.get(row).ok_or_else(|| {
            PriorError::new(
                ErrorKind::DimensionMismatch,
                format!(
                    "{}: row {row} of the quality table is past the embeddings' {} rows",
                    emb.source().display(),
                    emb.rows()
                ),
            )
        })?;
        for (k, (wr, bk)) in w.chunks_exact(x.len()).zip(b).enumerate() {
            c[k] = wr
                .iter()
                .zip(x)
                .map(|(a, v)| a * f64::from(*v))
                .sum::<f64>()
                + bk;
        }
        let norm = c[..d].iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        c[..d].iter_mut().for_each(|v| *v /= norm);
        c[d] = 1.0;
        for (a, col) in column.iter().enumerate() {
            let Some(q) = col.and_then(|col| table.get(i, col)) else {
                continue;
            };
            let aff: f64 = c
                .iter()
                .zip(&theta[a * dc..(a + 1) * dc])
                .map(|(x, y)| x * y)
                .sum();
            per_llm[a].push((aff, q));
        }
    }
    Ok(Observations { per_llm })
}
