//! Builds a [`Problem`] from pilot-data's routing dataset and its embedding file.

use pilot_data::{Embeddings, RoutingDataset};

use crate::{Problem, Queries, Result, SimError};

/// Which split names are learning and which are deployment.
#[derive(Clone, Debug)]
pub struct SplitNames {
    /// Rows whose `split` is this are the learning split (RouterBench: `train`).
    pub learning: String,
    /// Rows whose `split` is this are the deployment stream (RouterBench: `test`).
    pub deployment: String,
}

impl Default for SplitNames {
    fn default() -> Self {
        Self {
            learning: "train".into(),
            deployment: "test".into(),
        }
    }
}

/// The problem of `dataset` with row `i`'s base embedding = row `i` of `embeddings`.
///
/// Rows with a missing (null) quality or cost for any LLM are left out and counted
/// ([`Problem::dropped`]): an LLM with no outcome on a query cannot be replayed honestly.
/// Rows of other splits are ignored.
///
/// # Errors
/// [`SimError::Invalid`] when the embedding rows do not match the dataset lines (naming both
/// files and counts), a split has no rows (naming the splits found), or a value is invalid.
pub fn problem_from_dataset(
    dataset: &RoutingDataset,
    embeddings: &Embeddings,
    splits: &SplitNames,
) -> Result<Problem> {
    check_rows_match(dataset, embeddings)?;
    let rows_of = |name: &str| -> Result<Vec<usize>> {
        let rows = dataset.split_indices(name);
        if rows.is_empty() {
            return Err(SimError::invalid(format!(
                "{}: no rows in split '{name}' (splits found: {})",
                dataset.source.display(),
                dataset.splits().join(", ")
            )));
        }
        Ok(rows)
    };
    let learning = rows_of(&splits.learning)?;
    let deployment = rows_of(&splits.deployment)?;
    problem_from_rows(dataset, embeddings, &learning, &deployment)
}

/// One embedding row per dataset line, or an error naming both files and their counts.
fn check_rows_match(dataset: &RoutingDataset, embeddings: &Embeddings) -> Result<()> {
    if embeddings.rows() != dataset.rows.len() {
        return Err(SimError::invalid(format!(
            "{} has {} embedding rows of dimension {} but {} has {} lines",
            embeddings.source().display(),
            embeddings.rows(),
            embeddings.dim(),
            dataset.source.display(),
            dataset.rows.len()
        )));
    }
    Ok(())
}

/// The problem whose learning split is rows `learning` of `dataset` and whose deployment
/// stream is rows `deployment` (indices into `dataset.rows`), e.g. a fit / validation split of
/// the learning rows for tuning. Incomplete rows are left out and counted as in
/// [`problem_from_dataset`].
///
/// # Errors
/// As [`problem_from_dataset`], plus a row index past the dataset.
pub fn problem_from_rows(
    dataset: &RoutingDataset,
    embeddings: &Embeddings,
    learning_rows: &[usize],
    deployment_rows: &[usize],
) -> Result<Problem> {
    check_rows_match(dataset, embeddings)?;
    let tasks = dataset.tasks();
    let k = dataset.llms.len();
    let mut learning = Queries::default();
    let mut deployment = Queries::default();
    let mut dropped = 0;
    let mut quality = vec![0.0f32; k];
    let mut cost = vec![0.0f64; k];
    for (target, rows, name) in [
        (&mut learning, learning_rows, "learning"),
        (&mut deployment, deployment_rows, "deployment"),
    ] {
        for &i in rows {
            let row = dataset.rows.get(i).ok_or_else(|| {
                SimError::invalid(format!(
                    "{} row {i} is past the {} lines of {}",
                    name,
                    dataset.rows.len(),
                    dataset.source.display()
                ))
            })?;
            let complete =
                row.quality.iter().all(Option::is_some) && row.cost.iter().all(Option::is_some);
            if !complete || row.quality.len() != k || row.cost.len() != k {
                dropped += 1;
                continue;
            }
            for a in 0..k {
                quality[a] = row.quality[a].unwrap_or(0.0) as f32;
                cost[a] = row.cost[a].unwrap_or(0.0);
            }
            let task = tasks.iter().position(|t| *t == row.task).unwrap_or(0);
            let base = embeddings.get(i).ok_or_else(|| {
                SimError::invalid(format!(
                    "{}: no embedding row {i}",
                    embeddings.source().display()
                ))
            })?;
            target.push(row.id.clone(), task, base, &quality, &cost);
        }
        if target.is_empty() {
            return Err(SimError::invalid(format!(
                "{}: no complete rows in the {name} split",
                dataset.source.display()
            )));
        }
    }
    Problem::new(
        dataset.llms.clone(),
        tasks,
        embeddings.dim(),
        learning,
        deployment,
        dropped,
    )
}
