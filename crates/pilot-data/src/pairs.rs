//! Pairwise preferences: on the query of embedding row `row`, LLM `preferred` beat `other` (or
//! tied with it). The input of the preference prior, and a file format for any other source.
//!
//! ```text
//! {"llms": ["gpt-4-1106-preview", "claude-v2", ...]}
//! {"row": 17, "preferred": "gpt-4-1106-preview", "other": "claude-v2"}
//! {"row": 17, "preferred": "claude-v2", "other": "mistral-7b", "tie": true, "weight": 0.5}
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use pilot_core::ErrorKind;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::jsonl::{At, for_each_line, parse_line, read_text, write_line};

/// One preference between two LLMs of a pool on one query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preference {
    /// The query's row in the embedding file.
    pub row: usize,
    /// Index of the preferred LLM (for a tie, either one).
    pub preferred: usize,
    /// Index of the other LLM.
    pub other: usize,
    /// The two were equally good: a target of ½, not 1.
    pub tie: bool,
    /// Weight of this pair in the loss (> 0).
    pub weight: f64,
}

/// A pool of LLMs and preferences between them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreferenceSet {
    /// Where it came from (a file, or a description of how it was derived).
    pub source: PathBuf,
    /// The pool.
    pub llms: Vec<String>,
    /// The preferences, indices into `llms`.
    pub pairs: Vec<Preference>,
}

#[derive(Deserialize, Serialize)]
struct Header {
    llms: Vec<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    row: usize,
    preferred: String,
    other: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    tie: bool,
    #[serde(default = "one")]
    weight: f64,
}

fn one() -> f64 {
    1.0
}

impl PreferenceSet {
    /// Reads a pairs file. With `rows = Some(n)`, each `row` must be below `n` (the row count
    /// of the embedding file used with it).
    ///
    /// # Errors
    /// A [`DataError`] naming file, line and field: a missing or empty `llms` header, a duplicate
    /// LLM, an unknown LLM name, an LLM compared with itself, a row past the embeddings, a weight
    /// that is not a finite positive number, or no pairs at all.
    pub fn load(path: impl AsRef<Path>, rows: Option<usize>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        Self::parse(&text, path, rows)
    }

    /// Parses the text of a pairs file; `path` only names it in errors.
    ///
    /// # Errors
    /// As [`load`](Self::load), except I/O.
    pub fn parse(text: &str, path: impl AsRef<Path>, rows: Option<usize>) -> Result<Self> {
        let path = path.as_ref();
        let mut llms: Option<Vec<String>> = None;
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut pairs = Vec::new();
        for_each_line(text, path, |line_no, line| {
            let at = At {
                path,
                line: line_no,
            };
            let Some(pool) = &llms else {
                let h: Header = parse_line(line, path, line_no)?;
                if h.llms.is_empty() {
                    return Err(at.err(
                        ErrorKind::Empty,
                        "llms",
                        "expected at least 2 LLMs, found 0",
                    ));
                }
                for (i, name) in h.llms.iter().enumerate() {
                    if index.insert(name.clone(), i).is_some() {
                        return Err(at.err(
                            ErrorKind::Malformed,
                            format!("llms[{i}]"),
                            format!("LLM \"{name}\" appears twice"),
                        ));
                    }
                }
                llms = Some(h.llms);
                return Ok(());
            };
            let raw: RawPair = parse_line(line, path, line_no)?;
            let find = |field: &str, name: &str| {
                index.get(name).copied().ok_or_else(|| {
                    at.err(
                        ErrorKind::UnknownArm,
                        field,
                        format!(
                            "LLM \"{name}\" is not in the header's pool ({})",
                            pool.join(", ")
                        ),
                    )
                })
            };
            let preferred = find("preferred", &raw.preferred)?;
            let other = find("other", &raw.other)?;
            let pair = Preference {
                row: raw.row,
                preferred,
                other,
                tie: raw.tie,
                weight: raw.weight,
            };
            check_pair(&pair, pool.len(), rows)
                .map_err(|(kind, field, msg)| at.err(kind, field, msg))?;
            pairs.push(pair);
            Ok(())
        })?;
        let Some(llms) = llms else {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "the file is empty: expected a header line {\"llms\": [...]}",
            ));
        };
        if pairs.is_empty() {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "no preference pairs after the header",
            ));
        }
        Ok(Self {
            source: path.to_path_buf(),
            llms,
            pairs,
        })
    }

    /// Checks every pair against the pool and, with `rows = Some(n)`, the embedding rows.
    ///
    /// # Errors
    /// The first bad pair, by its position (pair `i` is line `i + 2` of a saved file).
    pub fn check(&self, rows: Option<usize>) -> Result<()> {
        for (i, p) in self.pairs.iter().enumerate() {
            check_pair(p, self.llms.len(), rows).map_err(|(kind, field, msg)| {
                DataError::new(kind, &self.source, msg)
                    .at_line(i + 2)
                    .in_field(field)
            })?;
        }
        Ok(())
    }

    /// Writes the set as a pairs file.
    ///
    /// # Errors
    /// An invalid pair (as [`check`](Self::check)) or an I/O failure, naming `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.check(None)?;
        let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
        let mut out = std::io::BufWriter::new(file);
        write_line(
            &mut out,
            path,
            &Header {
                llms: self.llms.clone(),
            },
        )?;
        for p in &self.pairs {
            let raw = RawPair {
                row: p.row,
                preferred: self.llms.get(p.preferred).cloned().unwrap_or_default(),
                other: self.llms.get(p.other).cloned().unwrap_or_default(),
                tie: p.tie,
                weight: p.weight,
            };
            write_line(&mut out, path, &raw)?;
        }
        out.flush().map_err(|e| DataError::io(path, e))
    }
}

fn check_pair(
    p: &Preference,
    llms: usize,
    rows: Option<usize>,
) -> std::result::Result<(), (ErrorKind, &'static str, String)> {
    if p.preferred >= llms {
        return Err((
            ErrorKind::UnknownArm,
            "preferred",
            format!("LLM index {} is not in a pool of {llms}", p.preferred),
        ));
    }
    if p.other >= llms {
        return Err((
            ErrorKind::UnknownArm,
            "other",
            format!("LLM index {} is not in a pool of {llms}", p.other),
        ));
    }
    if p.preferred == p.other {
        return Err((
            ErrorKind::InvalidParameter,
            "other",
            "an LLM is compared with itself".to_string(),
        ));
    }
    if !(p.weight.is_finite() && p.weight > 0.0) {
        return Err((
            ErrorKind::InvalidParameter,
            "weight",
            format!("expected a finite weight > 0, found {}", p.weight),
        ));
    }
    if let Some(n) = rows
        && p.row >= n
    {
        return Err((
            ErrorKind::DimensionMismatch,
            "row",
            format!("row {} is past the embeddings' {n} rows", p.row),
        ));
    }
    Ok(())
}
