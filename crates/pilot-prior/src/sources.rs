//! Preference sources: a routing dataset's learning split, judge scores mapped onto a routing
//! pool, or a pairs file; each also gives the quality table the calibration is fitted on.

use std::path::PathBuf;

use pilot_core::ErrorKind;
use pilot_data::{JudgeDataset, Preference, PreferenceSet, RoutingDataset};

use crate::error::{PriorError, Result};

/// Judge-score model names that are the same LLM as a RouterBench one (`../shared/README.md`):
/// `(arena name, RouterBench name)`. `claude-2.1` stands in for `claude-v2`.
pub const ARENA_TO_ROUTERBENCH: &[(&str, &str)] = &[
    ("gpt-4-1106-preview", "gpt-4-1106-preview"),
    ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106"),
    ("claude-1", "claude-v1"),
    ("claude-2.1", "claude-v2"),
    ("claude-instant-1", "claude-instant-v1"),
    ("Llama-2-70b-chat", "meta/llama-2-70b-chat"),
    (
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "mistralai/mixtral-8x7b-chat",
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.1",
        "mistralai/mistral-7b-chat",
    ),
];

/// Observed quality in [0, 1] per (learning query, LLM), the target of the calibration and of
/// the fit report's "actual" column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QualityTable {
    /// The LLMs, columns of `values`.
    pub llms: Vec<String>,
    /// Embedding rows of the queries, rows of `values`.
    pub rows: Vec<usize>,
    /// `rows.len() × llms.len()`, row-major; `None` where unobserved.
    pub values: Vec<Option<f64>>,
}

impl QualityTable {
    /// The quality of `llm` (column) on the `i`-th query.
    pub fn get(&self, i: usize, llm: usize) -> Option<f64> {
        self.values
            .get(i.checked_mul(self.llms.len())?.checked_add(llm)?)
            .copied()
            .flatten()
    }
}

/// What a prior is learned from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LearningData {
    /// The preferences (rows index the embedding file).
    pub prefs: PreferenceSet,
    /// Observed quality on the learning queries, when the source has it (a pairs file does not).
    pub quality: Option<QualityTable>,
    /// A short description of the source, saved in the prior file.
    pub description: String,
    /// Warnings for the user (LLMs without data, dropped cells).
    pub warnings: Vec<String>,
}

/// The preference between LLMs `i` and `j` on one row from their qualities or scores: the
/// better one preferred, an equal pair a tie of weight `tie_weight` (none when it is 0).
fn compare(
    row: usize,
    (i, vi): (usize, f64),
    (j, vj): (usize, f64),
    tie_weight: f64,
) -> Option<Preference> {
    let strict = |preferred, other| Preference {
        row,
        preferred,
        other,
        tie: false,
        weight: 1.0,
    };
    if vi > vj {
        Some(strict(i, j))
    } else if vj > vi {
        Some(strict(j, i))
    } else if tie_weight > 0.0 {
        Some(Preference {
            row,
            preferred: i,
            other: j,
            tie: true,
            weight: tie_weight,
        })
    } else {
        None
    }
}

/// Preferences from the rows `rows` of a routing dataset: on each query, LLM i is preferred to
/// LLM j when its quality is higher; equal quality is a tie (target ½) of weight `tie_weight`
/// (0 drops ties). Null cells give no pair.
///
/// Ties are weighted rather than subsampled: the expected gradient is the same as keeping a
/// `tie_weight` fraction of them, without the variance or a dependence on the seed.
///
/// # Errors
/// [`InvalidParameter`](ErrorKind::InvalidParameter) for a `tie_weight` outside [0, 1],
/// [`OutOfRange`](ErrorKind::OutOfRange) for a row past the dataset, and
/// [`Empty`](ErrorKind::Empty) when no pair has a strict preference.
pub fn from_routing(
    data: &RoutingDataset,
    rows: &[usize],
    tie_weight: f64,
) -> Result<LearningData> {
    check_tie_weight(tie_weight)?;
    let k = data.llms.len();
    let mut pairs = Vec::new();
    let mut strict = 0usize;
    let mut values = Vec::with_capacity(rows.len() * k);
    for &row in rows {
        let r = data.rows.get(row).ok_or_else(|| {
            PriorError::new(
                ErrorKind::OutOfRange,
                format!(
                    "{}: row {row} does not exist ({} rows)",
                    data.source.display(),
                    data.rows.len()
                ),
            )
        })?;
        values.extend(r.quality.iter().copied());
        for i in 0..k {
            for j in (i + 1)..k {
                let (Some(Some(qi)), Some(Some(qj))) = (r.quality.get(i), r.quality.get(j)) else {
                    continue;
                };
                let Some(pair) = compare(row, (i, *qi), (j, *qj), tie_weight) else {
                    continue;
                };
                strict += usize::from(!pair.tie);
                pairs.push(pair);
            }
        }
    }
    if strict == 0 {
        return Err(PriorError::new(
            ErrorKind::Empty,
            format!(
                "{}: no preference pairs: on none of the {} selected rows did two LLMs differ in quality",
                data.source.display(),
                rows.len()
            ),
        ));
    }
    let mut warnings = Vec::new();
    let mut seen = vec![false; k];
    for p in &pairs {
        seen[p.preferred] = true;
        seen[p.other] = true;
    }
    let unseen: Vec<&str> = (0..k)
        .filter(|&a| !seen[a])
        .filter_map(|a| data.llms.get(a).map(String::as_str))
        .collect();
    if !unseen.is_empty() {
        warnings.push(format!("no preference data for: {}", unseen.join(", ")));
    }
    Ok(LearningData {
        prefs: PreferenceSet {
            source: data.source.clone(),
            llms: data.llms.clone(),
            pairs,
        },
        quality: Some(QualityTable {
            llms: data.llms.clone(),
            rows: rows.to_vec(),
            values,
        }),
        description: format!(
            "routing dataset {} ({} rows)",
            data.source.display(),
            rows.len()
        ),
        warnings,
    })
}

/// Preferences from judge scores: a pair wherever two answers' scores differ, a tie of weight
/// `tie_weight` where they are equal. Model names are mapped through `name_map` (judge name →
/// pool name); models not in the map are kept under their own name when `keep_unmapped` (they
/// help learn the projection) and dropped otherwise. Pool LLMs that receive no data are named
/// in a warning.
///
/// The quality table maps scores linearly onto [0, 1] using the lowest and highest score in the
/// file (1–10 for the arena file), so the calibration is on the same scale as a routing reward.
///
/// # Errors
/// [`InvalidParameter`](ErrorKind::InvalidParameter) for a bad `tie_weight`,
/// [`Empty`](ErrorKind::Empty) when no two scores differ on any prompt.
pub fn from_judge(
    judge: &JudgeDataset,
    name_map: &[(&str, &str)],
    pool: &[String],
    keep_unmapped: bool,
    tie_weight: f64,
) -> Result<LearningData> {
    check_tie_weight(tie_weight)?;
    // Column per judge model: its name in the learning set, or None when dropped.
    let mut llms: Vec<String> = Vec::new();
    let mut column: Vec<Option<usize>> = Vec::with_capacity(judge.models.len());
    for m in &judge.models {
        let mapped = name_map
            .iter()
            .find(|(from, _)| from == m)
            .map(|(_, to)| *to);
        let name = match mapped {
            Some(to) => Some(to.to_string()),
            None if keep_unmapped => Some(m.clone()),
            None => None,
        };
        column.push(name.map(|n| match llms.iter().position(|l| *l == n) {
            Some(i) => i,
            None => {
                llms.push(n);
                llms.len() - 1
            }
        }));
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in judge.rows.iter().flat_map(|r| r.scores.iter().flatten()) {
        lo = lo.min(*s);
        hi = hi.max(*s);
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let k = llms.len();
    let mut pairs = Vec::new();
    let mut strict = 0usize;
    let mut values = vec![None; judge.rows.len() * k];
    for (row, r) in judge.rows.iter().enumerate() {
        let cells: Vec<(usize, f64)> = r
            .scores
            .iter()
            .zip(&column)
            .filter_map(|(s, c)| Some(((*c)?, (*s)?)))
            .collect();
        for &(a, s) in &cells {
            values[row * k + a] = Some((s - lo) / span);
        }
        for (x, &(i, si)) in cells.iter().enumerate() {
            for &(j, sj) in cells.iter().skip(x + 1) {
                let Some(pair) = compare(row, (i, si), (j, sj), tie_weight) else {
                    continue;
                };
                strict += usize::from(!pair.tie);
                pairs.push(pair);
            }
        }
    }
    if strict == 0 {
        return Err(PriorError::new(
            ErrorKind::Empty,
            format!(
                "{}: no preference pairs: no two scores differ on any prompt",
                judge.source.display()
            ),
        ));
    }
    let mut warnings = Vec::new();
    let without: Vec<&str> = pool
        .iter()
        .filter(|p| !llms.contains(p))
        .map(String::as_str)
        .collect();
    if !without.is_empty() {
        warnings.push(format!(
            "no judge data for {} of the pool's LLMs, they get no prior: {}",
            without.len(),
            without.join(", ")
        ));
    }
    Ok(LearningData {
        prefs: PreferenceSet {
            source: judge.source.clone(),
            llms: llms.clone(),
            pairs,
        },
        quality: Some(QualityTable {
            llms,
            rows: (0..judge.rows.len()).collect(),
            values,
        }),
        description: format!(
            "judge scores {} ({} prompts, scores {lo}–{hi} mapped to [0, 1])",
            judge.source.display(),
            judge.rows.len()
        ),
        warnings,
    })
}

/// A pairs file as learning data. It has no quality table; the calibration then uses each
/// query's win fraction (ties count half) as its quality.
pub fn from_pairs(prefs: PreferenceSet) -> LearningData {
    let source: PathBuf = prefs.source.clone();
    LearningData {
        description: format!(
            "pairs file {} ({} pairs)",
            source.display(),
            prefs.pairs.len()
        ),
        prefs,
        quality: None,
        warnings: Vec::new(),
    }
}

fn check_tie_weight(w: f64) -> Result<()> {
    if (0.0..=1.0).contains(&w) {
        Ok(())
    } else {
        Err(PriorError::new(
            ErrorKind::InvalidParameter,
            format!("tie weight: expected a value in [0, 1], found {w}"),
        ))
    }
}
