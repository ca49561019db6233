//! The full-information bandit log: every arm's reward (and optionally cost) at every step, so
//! any policy can be replayed on it and its decisions compared line by line with another tool's.
//!
//! ```text
//! {"K": 3, "d": 2, "arms": ["a", "b", "c"]}
//! {"x": [0.1, -0.4], "r": [1.0, 0.0, 0.5]}
//! {"x": [0.3, 0.2], "r": [0.0, 1.0, 0.5], "cost": [0.01, 0.002, 0.0]}
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use pilot_core::ErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DataError, Result};
use crate::jsonl::{At, OrderedMap, for_each_line, parse_line, read_text, write_line};

/// The first line: the number of arms, the context dimension and the arm names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanditLogHeader {
    /// Number of arms.
    #[serde(rename = "K")]
    pub k: usize,
    /// Context dimension.
    pub d: usize,
    /// Arm names, `K` of them.
    pub arms: Vec<String>,
}

impl BanditLogHeader {
    /// Checks `K ≥ 1`, `d ≥ 1` and `arms.len() == K`.
    ///
    /// # Errors
    /// A [`DataError`] naming the field, with `path` and line 1.
    pub fn check(&self, path: &Path) -> Result<()> {
        let at = At { path, line: 1 };
        if self.k == 0 {
            return Err(at.err(ErrorKind::Empty, "K", "expected at least 1 arm, found 0"));
        }
        if self.d == 0 {
            return Err(at.err(
                ErrorKind::InvalidParameter,
                "d",
                "expected a context dimension of at least 1, found 0",
            ));
        }
        if self.arms.len() != self.k {
            return Err(at.err(
                ErrorKind::DimensionMismatch,
                "arms",
                format!("expected K = {} names, found {}", self.k, self.arms.len()),
            ));
        }
        Ok(())
    }
}

/// One step: the context and every arm's reward, and costs when the log has them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BanditStep {
    /// The context, `d` values.
    pub x: Vec<f64>,
    /// Every arm's reward, `K` values.
    pub r: Vec<f64>,
    /// Every arm's cost (≥ 0), `K` values, when logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Vec<f64>>,
}

/// A whole bandit log in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct BanditLog {
    /// Where it was read from.
    pub source: PathBuf,
    /// The header line.
    pub header: BanditLogHeader,
    /// One entry per step line.
    pub steps: Vec<BanditStep>,
}

impl BanditLog {
    /// Reads a bandit log.
    ///
    /// # Errors
    /// A [`DataError`] naming file, line and field: a missing or invalid header, a step whose
    /// `x`, `r` or `cost` has the wrong length, a NaN/∞ or non-numeric value, a negative cost,
    /// an unknown key, or a log with no steps.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses the text of a bandit log; `path` only names it in errors.
    ///
    /// # Errors
    /// As [`load`](Self::load), except I/O.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut header: Option<BanditLogHeader> = None;
        let mut steps = Vec::new();
        for_each_line(text, path, |line_no, line| match &header {
            None => {
                let h: BanditLogHeader = parse_line(line, path, line_no)?;
                h.check(path)?;
                header = Some(h);
                Ok(())
            }
            Some(h) => {
                let map: OrderedMap = parse_line(line, path, line_no)?;
                steps.push(parse_step(
                    &map,
                    h,
                    At {
                        path,
                        line: line_no,
                    },
                )?);
                Ok(())
            }
        })?;
        let Some(header) = header else {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "the log is empty: expected a header line {\"K\":…,\"d\":…,\"arms\":[…]}",
            ));
        };
        if steps.is_empty() {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "the log has a header but no steps",
            ));
        }
        Ok(Self {
            source: path.to_path_buf(),
            header,
            steps,
        })
    }

    /// Writes the whole log.
    ///
    /// # Errors
    /// As [`BanditLogWriter`]: invalid header or steps, or I/O, naming `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
        let mut w = BanditLogWriter::new(std::io::BufWriter::new(file), self.header.clone(), path)?;
        for s in &self.steps {
            w.write_step(&s.x, &s.r, s.cost.as_deref())?;
        }
        w.finish()?;
        Ok(())
    }
}

fn parse_step(map: &OrderedMap, h: &BanditLogHeader, at: At<'_>) -> Result<BanditStep> {
    let (mut x, mut r, mut cost) = (None, None, None);
    for (key, value) in &map.0 {
        let slot = match key.as_str() {
            "x" => &mut x,
            "r" => &mut r,
            "cost" => &mut cost,
            other => {
                return Err(at.err(
                    ErrorKind::Malformed,
                    other,
                    "unknown key: a step has \"x\", \"r\" and optionally \"cost\"",
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(at.err(ErrorKind::Malformed, key.as_str(), "the key appears twice"));
        }
    }
    let missing = |f: &str| at.err(ErrorKind::Malformed, f, "missing field");
    let x = at.numbers("x", x.ok_or_else(|| missing("x"))?, h.d)?;
    let r = at.numbers("r", r.ok_or_else(|| missing("r"))?, h.k)?;
    let cost = match cost {
        None | Some(Value::Null) => None,
        Some(v) => {
            let c = at.numbers("cost", v, h.k)?;
            if let Some(i) = c.iter().position(|&c| c < 0.0) {
                return Err(at.err(
                    ErrorKind::NegativeCost,
                    format!("cost[{i}]"),
                    format!("expected a cost ≥ 0, found {}", c[i]),
                ));
            }
            Some(c)
        }
    };
    Ok(BanditStep { x, r, cost })
}

/// Writes a bandit log line by line, validating each step as the reader would.
pub struct BanditLogWriter<W: Write> {
    out: W,
    header: BanditLogHeader,
    name: PathBuf,
    line: usize,
}

impl<W: Write> BanditLogWriter<W> {
    /// Writes the header; `name` names the output in errors.
    ///
    /// # Errors
    /// An invalid header ([`BanditLogHeader::check`]) or an I/O failure.
    pub fn new(mut out: W, header: BanditLogHeader, name: impl AsRef<Path>) -> Result<Self> {
        let name = name.as_ref().to_path_buf();
        header.check(&name)?;
        write_line(&mut out, &name, &header)?;
        Ok(Self {
            out,
            header,
            name,
            line: 1,
        })
    }

    /// Writes one step. Nothing is written when the step is invalid.
    ///
    /// # Errors
    /// Wrong lengths, NaN/∞ values or negative costs (the error names the line it would have
    /// been and the field), or an I/O failure.
    pub fn write_step(&mut self, x: &[f64], r: &[f64], cost: Option<&[f64]>) -> Result<()> {
        let line = self.line + 1;
        let at = At {
            path: &self.name,
            line,
        };
        check_values(&at, "x", x, self.header.d, false)?;
        check_values(&at, "r", r, self.header.k, false)?;
        if let Some(c) = cost {
            check_values(&at, "cost", c, self.header.k, true)?;
        }
        let step = BanditStep {
            x: x.to_vec(),
            r: r.to_vec(),
            cost: cost.map(<[f64]>::to_vec),
        };
        write_line(&mut self.out, &self.name, &step)?;
        self.line = line;
        Ok(())
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// An I/O failure on flush.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(|e| DataError::io(&self.name, e))?;
        Ok(self.out)
    }
}

fn check_values(at: &At<'_>, field: &str, v: &[f64], len: usize, cost: bool) -> Result<()> {
    if v.len() != len {
        return Err(at.err(
            ErrorKind::DimensionMismatch,
            field,
            format!("expected {len} values, found {}", v.len()),
        ));
    }
    for (i, &x) in v.iter().enumerate() {
        if !x.is_finite() {
            return Err(at.err(
                ErrorKind::NonFinite,
                format!("{field}[{i}]"),
                format!("expected a finite number, found {x}"),
            ));
        }
        if cost && x < 0.0 {
            return Err(at.err(
                ErrorKind::NegativeCost,
                format!("{field}[{i}]"),
                format!("expected a cost ≥ 0, found {x}"),
            ));
        }
    }
    Ok(())
}
