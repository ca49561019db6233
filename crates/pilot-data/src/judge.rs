//! Judge scores: prompts answered by several LLMs, each answer scored by a judge.
//!
//! ```text
//! {"id": "...", "prompt": "...",
//!  "judge_score": {"gpt-4-1106-preview": 10.0, "claude-1": 2.0, ...},
//!  "answer_chars": {"gpt-4-1106-preview": 1938, ...}}
//! ```
//!
//! Cells may be missing or null. The model list is the union of the `judge_score` keys in order
//! of first appearance; `answer_chars` entries of models that never have a score are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pilot_core::ErrorKind;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{DataError, Result, describe_json};
use crate::jsonl::{At, OrderedMap, for_each_line, parse_line, read_text};

/// One prompt with the judge's score for each model, indexed like [`JudgeDataset::models`].
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeRow {
    /// The prompt id (the line number when the file has none).
    pub id: String,
    /// The prompt text.
    pub prompt: String,
    /// The judge's score per model; `None` when missing or null.
    pub scores: Vec<Option<f64>>,
    /// Answer length in characters per model; `None` when missing.
    pub answer_chars: Vec<Option<u64>>,
}

/// A judge-score dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JudgeDataset {
    /// Where it was read from.
    pub source: PathBuf,
    /// Every model that has at least one score.
    pub models: Vec<String>,
    /// One row per line.
    pub rows: Vec<JudgeRow>,
}

#[derive(Deserialize)]
struct RawRow {
    #[serde(default)]
    id: Option<String>,
    prompt: String,
    judge_score: OrderedMap,
    #[serde(default)]
    answer_chars: OrderedMap,
}

impl JudgeDataset {
    /// Reads a judge-score JSON-lines file.
    ///
    /// # Errors
    /// A [`DataError`] naming file, line and field: invalid JSON, a missing `prompt` or
    /// `judge_score`, a duplicate model, a non-numeric or non-finite score, a negative or
    /// fractional answer length, or a file with no rows.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses the text of a judge-score file; `path` only names it in errors.
    ///
    /// # Errors
    /// As [`load`](Self::load), except I/O.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        struct Parsed {
            id: String,
            prompt: String,
            scores: Vec<(usize, f64)>,
            chars: Vec<(String, u64)>,
        }
        let mut models: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut parsed = Vec::new();
        for_each_line(text, path, |line_no, line| {
            let raw: RawRow = parse_line(line, path, line_no)?;
            let at = At {
                path,
                line: line_no,
            };
            let mut scores = Vec::with_capacity(raw.judge_score.0.len());
            let mut seen = std::collections::HashSet::new();
            for (name, value) in &raw.judge_score.0 {
                let field = || format!("judge_score[\"{name}\"]");
                if !seen.insert(name.as_str()) {
                    return Err(at.err(ErrorKind::Malformed, field(), "the model appears twice"));
                }
                if value.is_null() {
                    continue;
                }
                let v = at.number(&field, value)?;
                let next = models.len();
                let m = *index.entry(name.clone()).or_insert(next);
                if m == next {
                    models.push(name.clone());
                }
                scores.push((m, v));
            }
            let mut chars = Vec::new();
            for (name, value) in &raw.answer_chars.0 {
                match value {
                    Value::Null => {}
                    Value::Number(n) if n.as_u64().is_some() => {
                        chars.push((name.clone(), n.as_u64().unwrap_or(0)));
                    }
                    other => {
                        return Err(at.err(
                            ErrorKind::Malformed,
                            format!("answer_chars[\"{name}\"]"),
                            format!(
                                "expected a whole number ≥ 0 or null, found {}",
                                describe_json(other)
                            ),
                        ));
                    }
                }
            }
            parsed.push(Parsed {
                id: raw.id.unwrap_or_else(|| format!("line-{line_no}")),
                prompt: raw.prompt,
                scores,
                chars,
            });
            Ok(())
        })?;
        if parsed.is_empty() {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "the file has no rows",
            ));
        }
        if models.is_empty() {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "no line has any judge score",
            ));
        }
        let rows = parsed
            .into_iter()
            .map(|p| {
                let mut scores = vec![None; models.len()];
                for (m, v) in p.scores {
                    scores[m] = Some(v);
                }
                let mut answer_chars = vec![None; models.len()];
                for (name, c) in p.chars {
                    if let Some(&m) = index.get(&name) {
                        answer_chars[m] = Some(c);
                    }
                }
                JudgeRow {
                    id: p.id,
                    prompt: p.prompt,
                    scores,
                    answer_chars,
                }
            })
            .collect();
        Ok(Self {
            source: path.to_path_buf(),
            models,
            rows,
        })
    }

    /// The index of a model by name.
    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.models.iter().position(|n| n == name)
    }
}
