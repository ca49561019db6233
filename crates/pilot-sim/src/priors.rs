//! Bridges pilot-prior to the simulator: a prior's map gives the policy contexts, its
//! calibrated per-LLM vectors give PILOT's starting point. Also builds the pilot-data form of
//! the synthetic scenario so its prior is fitted like a real one.

use pilot_data::{Embeddings, RoutingDataset, RoutingRow};
use pilot_prior::{FitParams, FitSummary, Prior, Stage};

use crate::experiment::PriorSource;
use crate::synthetic::Synthetic;
use crate::{ContextMap, ContextTable, Problem, Result, SimError};

struct PriorMap<'a>(&'a Prior);

impl ContextMap for PriorMap<'_> {
    fn dim(&self) -> usize {
        self.0.context_dim()
    }

    fn write(&self, base: &[f32], out: &mut [f32]) -> pilot_core::Result<()> {
        self.0.context(base, out)
    }
}

/// The simulator's view of `prior` on `problem`'s pool.
///
/// # Errors
/// [`SimError::Invalid`] when the prior was learned on base vectors of another dimension, or
/// when it has a vector for none of the pool's LLMs (its LLM names do not match the dataset's;
/// both lists are in the message).
pub fn prior_source(name: &str, prior: &Prior, problem: &Problem) -> Result<PriorSource> {
    if prior.d_in() != problem.dim() {
        return Err(SimError::invalid(format!(
            "prior '{name}' maps {}-dimensional base vectors (embedder {}) but the embeddings \
             have dimension {}",
            prior.d_in(),
            prior.embedder_id(),
            problem.dim()
        )));
    }
    let vectors: Vec<Option<Vec<f32>>> = problem
        .llms()
        .iter()
        .map(|llm| prior.theta(llm).map(<[f32]>::to_vec))
        .collect();
    if vectors.iter().all(Option::is_none) {
        let known: Vec<&str> = prior.llms().iter().map(|l| l.name.as_str()).collect();
        return Err(SimError::invalid(format!(
            "prior '{name}' has no vector for any LLM of the dataset: the prior knows [{}], the \
             dataset's pool is [{}]",
            known.join(", "),
            problem.llms().join(", ")
        )));
    }
    let contexts = ContextTable::from_map(name, problem, &PriorMap(prior))?;
    Ok(PriorSource {
        name: name.to_owned(),
        contexts,
        joining: vec![None; vectors.len()],
        vectors,
    })
}

/// Each LLM of `pool`'s vector in `prior`'s space fitted from the judge scores `judge` (prompts
/// embedded in `embeddings`, by the prior's embedder) alone, against the LLMs the prior has
/// (pilot-prior's [`fit_llm`](pilot_prior::fit_llm)): the start of an LLM that joins without
/// learning data, "from the judge scores where it has them". `None` for an LLM without judge
/// scores.
///
/// # Errors
/// [`SimError::Invalid`] for judge data that does not match its embeddings or a failing fit.
pub fn joining_vectors(
    prior: &Prior,
    pool: &[String],
    judge: &pilot_data::JudgeDataset,
    embeddings: &Embeddings,
    params: &FitParams,
    tie_weight: f64,
) -> Result<Vec<Option<Vec<f32>>>> {
    let data = judge_preferences(judge, embeddings, pool, tie_weight)?;
    pool.iter()
        .map(|llm| {
            let has_pairs = data
                .prefs
                .llms
                .iter()
                .position(|l| l == llm)
                .is_some_and(|a| {
                    data.prefs
                        .pairs
                        .iter()
                        .any(|p| p.preferred == a || p.other == a)
                });
            if !has_pairs {
                return Ok(None);
            }
            pilot_prior::fit_llm(prior, llm, embeddings, &data.prefs, params)
                .map(|v| Some(v.theta))
                .map_err(|e| SimError::invalid(format!("{llm} from the judge scores: {e}")))
        })
        .collect()
}

/// The judge scores as preferences between the pool's LLMs (judge names mapped to RouterBench's).
fn judge_preferences(
    judge: &pilot_data::JudgeDataset,
    embeddings: &Embeddings,
    pool: &[String],
    tie_weight: f64,
) -> Result<pilot_prior::sources::LearningData> {
    if embeddings.rows() != judge.rows.len() {
        return Err(SimError::invalid(format!(
            "{} has {} embedding rows but {} has {} prompts",
            embeddings.source().display(),
            embeddings.rows(),
            judge.source.display(),
            judge.rows.len()
        )));
    }
    pilot_prior::sources::from_judge(
        judge,
        pilot_prior::sources::ARENA_TO_ROUTERBENCH,
        pool,
        true,
        tie_weight,
    )
    .map_err(|e| SimError::invalid(format!("judge preferences: {e}")))
}

/// Fits a prior on the learning rows `rows` of `dataset` (preferences from observed quality,
/// ties at weight `tie_weight`).
///
/// # Errors
/// [`SimError::Invalid`] carrying pilot-prior's message.
pub fn fit_prior(
    dataset: &RoutingDataset,
    embeddings: &Embeddings,
    rows: &[usize],
    params: &FitParams,
    tie_weight: f64,
) -> Result<(Prior, FitSummary)> {
    let data = pilot_prior::sources::from_routing(dataset, rows, tie_weight)
        .map_err(|e| SimError::invalid(format!("prior preferences: {e}")))?;
    let mut quiet = |_: Stage, _: usize, _: usize| {};
    pilot_prior::fit(embeddings, &data, params, &mut quiet)
        .map_err(|e| SimError::invalid(format!("prior fit: {e}")))
}

/// Fits a prior on judge scores (e.g. the arena file), names mapped onto `pool` through
/// pilot-prior's arena-to-RouterBench table; judge models outside the pool still shape the
/// projection. Returns the source's warnings (LLMs of the pool without judge data) too.
///
/// # Errors
/// [`SimError::Invalid`] when the embeddings do not have one row per judge prompt, or carrying
/// pilot-prior's message.
pub fn fit_judge_prior(
    judge: &pilot_data::JudgeDataset,
    embeddings: &Embeddings,
    pool: &[String],
    params: &FitParams,
    tie_weight: f64,
) -> Result<(Prior, FitSummary, Vec<String>)> {
    let data = judge_preferences(judge, embeddings, pool, tie_weight)?;
    let warnings = data.warnings.clone();
    let mut quiet = |_: Stage, _: usize, _: usize| {};
    let (prior, summary) = pilot_prior::fit(embeddings, &data, params, &mut quiet)
        .map_err(|e| SimError::invalid(format!("judge prior fit: {e}")))?;
    Ok((prior, summary, warnings))
}

/// The synthetic scenario as a routing dataset and embedding file (learning rows first, split
/// `train`; deployment rows split `test`), and the indices of the learning rows.
///
/// # Errors
/// [`SimError::Invalid`] if the embeddings cannot be wrapped (never for a generated scenario).
pub fn synthetic_dataset(s: &Synthetic) -> Result<(RoutingDataset, Embeddings, Vec<usize>)> {
    let p = &s.problem;
    let k = p.arm_count();
    let mut rows = Vec::new();
    let mut base = Vec::new();
    for (split, queries, texts) in [
        ("train", p.learning(), &s.learning_text),
        ("test", p.deployment(), &s.deployment_text),
    ] {
        for i in 0..queries.len() {
            rows.push(RoutingRow {
                id: queries.ids[i].clone(),
                task: p.tasks()[queries.task[i]].clone(),
                split: split.to_owned(),
                query: texts.get(i).cloned().unwrap_or_default(),
                quality: queries
                    .quality_row(i, k)
                    .iter()
                    .map(|&q| Some(f64::from(q)))
                    .collect(),
                cost: queries.cost_row(i, k).iter().map(|&c| Some(c)).collect(),
            });
            base.extend_from_slice(queries.base_row(i, p.dim()));
        }
    }
    let dataset = RoutingDataset {
        source: "synthetic".into(),
        llms: p.llms().to_vec(),
        rows,
    };
    let embeddings = Embeddings::from_vec(base, p.dim(), "synthetic")
        .map_err(|e| SimError::invalid(format!("synthetic embeddings: {e}")))?;
    Ok((dataset, embeddings, (0..p.learning().len()).collect()))
}
