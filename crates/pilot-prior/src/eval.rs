//! The fit report on a routing dataset: held-out pairwise accuracy of the prior against the
//! "always prefer the globally better LLM" rules, and per-LLM mean predicted vs actual quality.

use pilot_core::ErrorKind;
use pilot_data::{Embeddings, RoutingDataset};

use crate::error::{PriorError, Result};
use crate::model::Prior;

/// One LLM's line of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmEval {
    /// The LLM.
    pub name: String,
    /// Whether it has a prior vector.
    pub has_prior: bool,
    /// Mean calibrated prediction over the evaluated rows (None without a prior).
    pub predicted: Option<f64>,
    /// Mean observed quality over the evaluated rows.
    pub actual: Option<f64>,
}

/// The report.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Strict pairs evaluated (both LLMs have a prior and a quality, and the qualities differ).
    pub pairs: usize,
    /// Accuracy of the prior's calibrated predictions (a tie in prediction counts half).
    pub prior_accuracy: f64,
    /// Accuracy of the global order by mean quality on the learning rows.
    pub global_learning_accuracy: f64,
    /// Accuracy of the best global order in hindsight: by mean quality on the evaluated rows
    /// themselves (an upper bound for any fixed order).
    pub global_oracle_accuracy: f64,
    /// Per LLM of the dataset's pool.
    pub per_llm: Vec<LlmEval>,
    /// Pool LLMs without a prior.
    pub without_prior: Vec<String>,
}

/// Evaluates `prior` on `eval_rows` of `data`, with the global rule learned on `learn_rows`.
///
/// # Errors
/// A [`DimensionMismatch`](ErrorKind::DimensionMismatch) when the embeddings do not have one row
/// per dataset line or the prior's dimension, [`Empty`](ErrorKind::Empty) when no LLM of the
/// pool has a prior or no strict pair exists, and the context's errors.
pub fn evaluate(
    prior: &Prior,
    emb: &Embeddings,
    data: &RoutingDataset,
    learn_rows: &[usize],
    eval_rows: &[usize],
) -> Result<EvalReport> {
    emb.expect_rows(data.rows.len())?;
    if emb.dim() != prior.d_in() {
        return Err(PriorError::new(
            ErrorKind::DimensionMismatch,
            format!(
                "{}: the prior expects base vectors of dimension {}, the embeddings have {}",
                emb.source().display(),
                prior.d_in(),
                emb.dim()
            ),
        ));
    }
    let k = data.llms.len();
    let theta: Vec<Option<&[f32]>> = data.llms.iter().map(|n| prior.theta(n)).collect();
    if theta.iter().all(Option::is_none) {
        return Err(PriorError::new(
            ErrorKind::Empty,
            format!(
                "the prior has no vector for any LLM of {} ({})",
                data.source.display(),
                data.llms.join(", ")
            ),
        ));
    }
    let learn_mean = data.mean_quality(learn_rows);
    let eval_mean = data.mean_quality(eval_rows);
    let mut ctx = vec![0.0f32; prior.context_dim()];
    let mut pred = vec![0.0f64; k];
    let mut pred_sum = vec![0.0f64; k];
    let mut pred_n = vec![0usize; k];
    let (mut prior_ok, mut learn_ok, mut oracle_ok, mut pairs) = (0.0, 0.0, 0.0, 0usize);
    let score = |a: f64, b: f64| {
        if a > b {
            1.0
        } else if a == b {
            0.5
        } else {
            0.0
        }
    };
    for &row in eval_rows {
        let (Some(r), Some(x)) = (data.rows.get(row), emb.get(row)) else {
            return Err(PriorError::new(
                ErrorKind::OutOfRange,
                format!("{}: row {row} does not exist", data.source.display()),
            ));
        };
        prior
            .context(x, &mut ctx)
            .map_err(|e| PriorError::core(format!("{}: row {row}", emb.source().display()), e))?;
        for a in 0..k {
            if let Some(t) = theta[a] {
                let p: f64 = t
                    .iter()
                    .zip(&ctx)
                    .map(|(t, c)| f64::from(*t) * f64::from(*c))
                    .sum();
                pred[a] = p;
                pred_sum[a] += p;
                pred_n[a] += 1;
            }
        }
        for i in 0..k {
            for j in (i + 1)..k {
                let (Some(Some(qi)), Some(Some(qj))) = (r.quality.get(i), r.quality.get(j)) else {
                    continue;
                };
                if qi == qj || theta[i].is_none() || theta[j].is_none() {
                    continue;
                }
                // Orient so that i is the better one.
                let (w, l) = if qi > qj { (i, j) } else { (j, i) };
                pairs += 1;
                prior_ok += score(pred[w], pred[l]);
                let m = |v: &[Option<f64>], a: usize| v.get(a).copied().flatten().unwrap_or(0.0);
                learn_ok += score(m(&learn_mean, w), m(&learn_mean, l));
                oracle_ok += score(m(&eval_mean, w), m(&eval_mean, l));
            }
        }
    }
    if pairs == 0 {
        return Err(PriorError::new(
            ErrorKind::Empty,
            "no strict preference pair among the LLMs with a prior on the evaluated rows",
        ));
    }
    let per_llm = data
        .llms
        .iter()
        .enumerate()
        .map(|(a, name)| LlmEval {
            name: name.clone(),
            has_prior: theta[a].is_some(),
            predicted: (pred_n[a] > 0).then(|| pred_sum[a] / pred_n[a] as f64),
            actual: eval_mean.get(a).copied().flatten(),
        })
        .collect();
    let n = pairs as f64;
    Ok(EvalReport {
        pairs,
        prior_accuracy: prior_ok / n,
        global_learning_accuracy: learn_ok / n,
        global_oracle_accuracy: oracle_ok / n,
        per_llm,
        without_prior: data
            .llms
            .iter()
            .zip(&theta)
            .filter(|(_, t)| t.is_none())
            .map(|(n, _)| n.clone())
            .collect(),
    })
}
