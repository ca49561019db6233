//! The routing dataset: one query per line with every LLM's quality in [0, 1] and cost in USD.
//!
//! ```text
//! {"id": "...", "task": "arc-challenge", "split": "train", "query": "...",
//!  "quality": {"gpt-4-1106-preview": 1.0, "claude-v1": null, ...},
//!  "cost_usd": {"gpt-4-1106-preview": 0.00512, "claude-v1": null, ...}}
//! ```
//!
//! The pool is the keys of the first line's `quality`, in file order; every line must name the
//! same LLMs in both maps (in any order). Other fields (`prompt`, say) are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pilot_core::ErrorKind;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{DataError, Result, describe_json};
use crate::jsonl::{At, OrderedMap, for_each_line, parse_line, read_text};

/// One query and every LLM's outcome on it, indexed like [`RoutingDataset::llms`].
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingRow {
    /// The sample id (the line number when the file has none).
    pub id: String,
    /// The task the query comes from.
    pub task: String,
    /// The split (`"train"` for learning, `"test"` for deployment in RouterBench).
    pub split: String,
    /// The query text.
    pub query: String,
    /// Quality of each LLM's answer in [0, 1]; `None` where the file has null.
    pub quality: Vec<Option<f64>>,
    /// Cost of each LLM's call in USD (≥ 0); `None` where the file has null.
    pub cost: Vec<Option<f64>>,
}

/// A null cell: which row and LLM, and whether the quality, the cost or both are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingCell {
    /// Row index (0-based; the file line is `row + 1`).
    pub row: usize,
    /// LLM index in the pool.
    pub llm: usize,
    /// The quality is null.
    pub quality: bool,
    /// The cost is null.
    pub cost: bool,
}

/// A routing dataset: the pool of LLMs and one row per query, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoutingDataset {
    /// Where it was read from (for messages).
    pub source: PathBuf,
    /// The pool of LLMs, in the order of the first line's `quality` keys.
    pub llms: Vec<String>,
    /// One row per line.
    pub rows: Vec<RoutingRow>,
}

#[derive(Deserialize)]
struct RawRow {
    #[serde(default)]
    id: Option<String>,
    task: String,
    split: String,
    query: String,
    quality: OrderedMap,
    cost_usd: OrderedMap,
}

impl RoutingDataset {
    /// Reads a routing dataset from a JSON-lines file.
    ///
    /// # Errors
    /// A [`DataError`] naming the file, line and field: unreadable file, invalid JSON, missing
    /// field, an empty pool, an LLM missing from a line or not in the pool, a duplicate key, a
    /// quality outside [0, 1], a negative or non-numeric cost, or a file with no rows.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses the text of a routing dataset; `path` only names it in errors.
    ///
    /// # Errors
    /// As [`load`](Self::load), except I/O.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut llms: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut rows = Vec::new();
        for_each_line(text, path, |line_no, line| {
            let raw: RawRow = parse_line(line, path, line_no)?;
            let at = At {
                path,
                line: line_no,
            };
            if llms.is_empty() {
                for (name, _) in &raw.quality.0 {
                    if index.insert(name.clone(), llms.len()).is_some() {
                        return Err(at.err(
                            ErrorKind::Malformed,
                            format!("quality[\"{name}\"]"),
                            "the LLM appears twice",
                        ));
                    }
                    llms.push(name.clone());
                }
                if llms.is_empty() {
                    return Err(at.err(
                        ErrorKind::Empty,
                        "quality",
                        "expected at least one LLM, found an empty object",
                    ));
                }
            }
            let quality = cells(&at, "quality", &raw.quality, &llms, &index, |v| {
                if (0.0..=1.0).contains(&v) {
                    Ok(())
                } else {
                    Err((
                        ErrorKind::OutOfRange,
                        format!("expected a quality in [0, 1], found {v}"),
                    ))
                }
            })?;
            let cost = cells(&at, "cost_usd", &raw.cost_usd, &llms, &index, |v| {
                if v >= 0.0 {
                    Ok(())
                } else {
                    Err((
                        ErrorKind::NegativeCost,
                        format!("expected a cost ≥ 0 USD, found {v}"),
                    ))
                }
            })?;
            rows.push(RoutingRow {
                id: raw.id.unwrap_or_else(|| format!("line-{line_no}")),
                task: raw.task,
                split: raw.split,
                query: raw.query,
                quality,
                cost,
            });
            Ok(())
        })?;
        if rows.is_empty() {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "the dataset has no rows",
            ));
        }
        Ok(Self {
            source: path.to_path_buf(),
            llms,
            rows,
        })
    }

    /// The number of LLMs in the pool.
    pub fn num_llms(&self) -> usize {
        self.llms.len()
    }

    /// The index of an LLM by name.
    pub fn llm_index(&self, name: &str) -> Option<usize> {
        self.llms.iter().position(|n| n == name)
    }

    /// Indices of the rows of one split, in file order.
    pub fn split_indices(&self, split: &str) -> Vec<usize> {
        self.indices_where(|r| r.split == split)
    }

    /// Indices of the rows of one task, in file order.
    pub fn task_indices(&self, task: &str) -> Vec<usize> {
        self.indices_where(|r| r.task == task)
    }

    /// Indices of the rows for which `keep` holds, in file order.
    pub fn indices_where(&self, mut keep: impl FnMut(&RoutingRow) -> bool) -> Vec<usize> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| keep(r))
            .map(|(i, _)| i)
            .collect()
    }

    /// The distinct splits, in order of first appearance.
    pub fn splits(&self) -> Vec<String> {
        distinct(self.rows.iter().map(|r| r.split.as_str()))
    }

    /// The distinct tasks, in order of first appearance.
    pub fn tasks(&self) -> Vec<String> {
        distinct(self.rows.iter().map(|r| r.task.as_str()))
    }

    /// A dataset with only the given rows (in the given order), same pool.
    ///
    /// # Errors
    /// An index past the end is an [`OutOfRange`](ErrorKind::OutOfRange) error naming it.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let mut rows = Vec::with_capacity(indices.len());
        for &i in indices {
            let row = self.rows.get(i).ok_or_else(|| {
                DataError::new(
                    ErrorKind::OutOfRange,
                    &self.source,
                    format!(
                        "row {i} does not exist (the dataset has {} rows)",
                        self.rows.len()
                    ),
                )
            })?;
            rows.push(row.clone());
        }
        Ok(Self {
            source: self.source.clone(),
            llms: self.llms.clone(),
            rows,
        })
    }

    /// Every null cell, row by row.
    pub fn missing_cells(&self) -> Vec<MissingCell> {
        let mut out = Vec::new();
        for (row, r) in self.rows.iter().enumerate() {
            for llm in 0..self.llms.len() {
                let quality = r.quality.get(llm).is_none_or(Option::is_none);
                let cost = r.cost.get(llm).is_none_or(Option::is_none);
                if quality || cost {
                    out.push(MissingCell {
                        row,
                        llm,
                        quality,
                        cost,
                    });
                }
            }
        }
        out
    }

    /// Mean quality per LLM over `rows`, skipping null cells; `None` when an LLM has none.
    pub fn mean_quality(&self, rows: &[usize]) -> Vec<Option<f64>> {
        self.mean_of(rows, |r| &r.quality)
    }

    /// Mean cost per LLM over `rows`, skipping null cells; `None` when an LLM has none.
    pub fn mean_cost(&self, rows: &[usize]) -> Vec<Option<f64>> {
        self.mean_of(rows, |r| &r.cost)
    }

    fn mean_of(
        &self,
        rows: &[usize],
        cells: impl Fn(&RoutingRow) -> &Vec<Option<f64>>,
    ) -> Vec<Option<f64>> {
        let k = self.llms.len();
        let mut sum = vec![0.0; k];
        let mut count = vec![0usize; k];
        for r in rows.iter().filter_map(|&i| self.rows.get(i)) {
            for (a, v) in cells(r).iter().enumerate().take(k) {
                if let Some(v) = v {
                    sum[a] += v;
                    count[a] += 1;
                }
            }
        }
        sum.iter()
            .zip(&count)
            .map(|(&s, &c)| (c > 0).then(|| s / c as f64))
            .collect()
    }
}

type CellCheck = fn(f64) -> std::result::Result<(), (ErrorKind, String)>;

/// Reads one LLM-keyed map into pool order, checking names and values.
fn cells(
    at: &At<'_>,
    field: &str,
    map: &OrderedMap,
    llms: &[String],
    index: &HashMap<String, usize>,
    check: CellCheck,
) -> Result<Vec<Option<f64>>> {
    let mut out: Vec<Option<f64>> = vec![None; llms.len()];
    let mut seen = vec![false; llms.len()];
    for (name, value) in &map.0 {
        let field_name = || format!("{field}[\"{name}\"]");
        let Some(&a) = index.get(name) else {
            return Err(at.err(
                ErrorKind::UnknownArm,
                field_name(),
                format!(
                    "LLM \"{name}\" is not in the pool of the first line ({})",
                    llms.join(", ")
                ),
            ));
        };
        if std::mem::replace(&mut seen[a], true) {
            return Err(at.err(ErrorKind::Malformed, field_name(), "the LLM appears twice"));
        }
        out[a] = match value {
            Value::Null => None,
            Value::Number(_) => {
                let v = at.number(&field_name, value)?;
                check(v).map_err(|(kind, msg)| at.err(kind, field_name(), msg))?;
                Some(v)
            }
            other => {
                return Err(at.err(
                    ErrorKind::Malformed,
                    field_name(),
                    format!("expected a number or null, found {}", describe_json(other)),
                ));
            }
        };
    }
    if let Some(a) = seen.iter().position(|s| !s) {
        return Err(at.err(
            ErrorKind::DimensionMismatch,
            field,
            format!(
                "LLM \"{}\" of the pool is missing (write null for a missing value); expected {} LLMs, found {}",
                llms[a],
                llms.len(),
                map.0.len()
            ),
        ));
    }
    Ok(out)
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in items {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}
