//! Adding an LLM to a fitted prior from preferences gathered elsewhere (judge scores on other
//! prompts, say): its vector is fitted in the prior's space against the LLMs the prior already
//! has, whose vectors and the projection stay as they are.
//!
//! This is the start of an LLM that joins a running pool without learning data: the
//! Bradley–Terry phase of [`fit`](crate::fit) for one vector, on the contexts this prior gives
//! the other source's prompts, with every pair against an LLM the prior knows.

use pilot_core::ErrorKind;
use pilot_data::{Embeddings, PreferenceSet};

use crate::adam::Adam;
use crate::bradley_terry::sigmoid;
use crate::error::{PriorError, Result};
use crate::model::{LlmVector, Prior};
use crate::params::FitParams;

/// One pair between the new LLM and a known one on a prompt: `sign` is +1 when the new LLM
/// was preferred (−1 when the other was), `other` is ⟨context, raw θ_other⟩.
struct Duel {
    ctx: usize,
    sign: f64,
    other: f64,
    target: f64,
    weight: f64,
}

/// Fits the vector of LLM `name` in `prior`'s space from `prefs` (rows index `emb`, whose
/// vectors must come from the prior's embedder): its pairs against LLMs the prior has a
/// vector for, Bradley–Terry with their vectors fixed, `params.bt_max_epochs` full-batch Adam
/// steps at `params.bt_lr` with the L2 penalty `params.l2`. Any vector the prior has for
/// `name` is not used. The calibrated vector takes the prior's shared scale and the mean of
/// the other LLMs' intercepts: its level against the others comes from the pairs.
///
/// # Errors
/// [`InvalidParameter`](ErrorKind::InvalidParameter) for bad `params`;
/// [`Empty`](ErrorKind::Empty) when `prefs` has no pair between `name` and an LLM the prior
/// knows; [`OutOfRange`](ErrorKind::OutOfRange) for a row past `emb`;
/// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for vectors of another dimension.
pub fn fit_llm(
    prior: &Prior,
    name: &str,
    emb: &Embeddings,
    prefs: &PreferenceSet,
    params: &FitParams,
) -> Result<LlmVector> {
    params.check()?;
    if emb.dim() != prior.d_in() {
        return Err(PriorError::new(
            ErrorKind::DimensionMismatch,
            format!(
                "fit_llm: the prior maps {}-dimensional vectors, the embeddings have {}",
                prior.d_in(),
                emb.dim()
            ),
        ));
    }
    let known = |llm: usize| -> Option<&[f32]> {
        let other = prefs.llms.get(llm)?;
        (other != name)
            .then(|| prior.llms().iter().find(|l| &l.name == other))
            .flatten()
            .map(|l| l.raw.as_slice())
    };
    let dc = prior.context_dim();
    let mut contexts: Vec<f64> = Vec::new();
    let mut rows: Vec<usize> = Vec::new();
    let mut context = vec![0.0f32; dc];
    let mut duels = Vec::new();
    for p in &prefs.pairs {
        let (sign, other) = match (
            prefs.llms.get(p.preferred).map(String::as_str),
            prefs.llms.get(p.other).map(String::as_str),
        ) {
            (Some(a), _) if a == name => (1.0, p.other),
            (_, Some(b)) if b == name => (-1.0, p.preferred),
            _ => continue,
        };
        let Some(raw) = known(other) else { continue };
        let ctx = match rows.iter().position(|&r| r == p.row) {
            Some(i) => i,
            None => {
                let x = emb.get(p.row).ok_or_else(|| {
                    PriorError::new(
                        ErrorKind::OutOfRange,
                        format!("fit_llm: pair on row {} of {}", p.row, emb.rows()),
                    )
                })?;
                prior
                    .context(x, &mut context)
                    .map_err(|e| PriorError::core("fit_llm: a prompt's context", e))?;
                contexts.extend(context.iter().map(|&v| f64::from(v)));
                rows.push(p.row);
                rows.len() - 1
            }
        };
        let c = &contexts[ctx * dc..(ctx + 1) * dc];
        duels.push(Duel {
            ctx,
            sign,
            other: c.iter().zip(raw).map(|(c, t)| c * f64::from(*t)).sum(),
            target: if p.tie { 0.5 } else { 1.0 },
            weight: p.weight,
        });
    }
    let total: f64 = duels.iter().map(|d| d.weight).sum();
    if duels.is_empty() || total <= 0.0 {
        return Err(PriorError::new(
            ErrorKind::Empty,
            format!("fit_llm: no preference between {name} and an LLM the prior knows"),
        ));
    }
    let mut theta = vec![0.0f64; dc];
    let mut grad = vec![0.0f64; dc];
    let mut adam = Adam::new(dc, params.bt_lr);
    for _ in 0..params.bt_max_epochs {
        for (g, t) in grad.iter_mut().zip(&theta) {
            *g = 2.0 * params.l2 * t;
        }
        for d in &duels {
            let c = &contexts[d.ctx * dc..(d.ctx + 1) * dc];
            let mine: f64 = c.iter().zip(&theta).map(|(c, t)| c * t).sum();
            // The pair's margin from the preferred side, and d loss / d margin.
            let u = d.sign * (mine - d.other);
            let slope = d.weight * (sigmoid(u) - d.target) / total;
            for (g, c) in grad.iter_mut().zip(c) {
                *g += slope * d.sign * c;
            }
        }
        adam.step(&mut theta, &grad);
    }
    if let Some(bad) = theta.iter().find(|v| !v.is_finite()) {
        return Err(PriorError::new(
            ErrorKind::NonFinite,
            format!("fit_llm: the fit diverged ({bad})"),
        ));
    }
    let calibration = prior.calibration();
    let others: Vec<f64> = prior
        .llms()
        .iter()
        .zip(&calibration.intercepts)
        .filter(|(l, _)| l.name != name)
        .map(|(_, &c)| c)
        .collect();
    let intercept = if others.is_empty() {
        0.0
    } else {
        others.iter().sum::<f64>() / others.len() as f64
    };
    let mut calibrated: Vec<f32> = theta
        .iter()
        .map(|v| (v * calibration.scale) as f32)
        .collect();
    if let Some(last) = calibrated.last_mut() {
        *last += intercept as f32;
    }
    Ok(LlmVector {
        name: name.to_owned(),
        theta: calibrated,
        raw: theta.iter().map(|&v| v as f32).collect(),
        pairs: duels.len(),
    })
}
