//! JSON-lines plumbing shared by the loaders: reading, line numbering, key order, number checks.

use std::fmt;
use std::path::Path;

use pilot_core::ErrorKind;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

use crate::error::{DataError, Result, describe_json};

/// Reads a whole text file, naming the file on failure.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))
}

/// Calls `f(line_number, text)` for each line (1-based). A blank line is an error because rows
/// are matched to embedding rows by position, and a skipped line would shift every later row.
pub(crate) fn for_each_line(
    text: &str,
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<()>,
) -> Result<()> {
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            return Err(DataError::new(
                ErrorKind::Malformed,
                path,
                "empty line: every line must hold one JSON object",
            )
            .at_line(line_no));
        }
        f(line_no, line)?;
    }
    Ok(())
}

/// Parses one line into `T`, turning serde's message into a located error.
pub(crate) fn parse_line<'de, T: Deserialize<'de>>(
    line: &'de str,
    path: &Path,
    line_no: usize,
) -> Result<T> {
    serde_json::from_str(line).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => format!("unexpected content: {e}"),
            _ => format!("not valid JSON: {e}"),
        };
        DataError::new(ErrorKind::Malformed, path, message).at_line(line_no)
    })
}

/// A JSON object kept in file order (serde_json's own map sorts keys unless a feature that
/// would change every crate's build is on). Duplicate keys are rejected by the loaders.
#[derive(Debug, Default)]
pub(crate) struct OrderedMap(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    entries.push((k, v));
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

/// A located error builder for one line of one file.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub path: &'a Path,
    pub line: usize,
}

impl At<'_> {
    pub(crate) fn err(
        &self,
        kind: ErrorKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> DataError {
        DataError::new(kind, self.path, message)
            .at_line(self.line)
            .in_field(field)
    }

    /// A finite number, or an error naming the field and what was found instead.
    pub(crate) fn number(&self, field: &dyn Fn() -> String, value: &Value) -> Result<f64> {
        match value.as_f64() {
            Some(v) if v.is_finite() => Ok(v),
            Some(v) => Err(self.err(
                ErrorKind::NonFinite,
                field(),
                format!("expected a finite number, found {v}"),
            )),
            None => Err(self.err(
                ErrorKind::Malformed,
                field(),
                format!("expected a number, found {}", describe_json(value)),
            )),
        }
    }

    /// An array of exactly `len` finite numbers.
    pub(crate) fn numbers(&self, field: &str, value: &Value, len: usize) -> Result<Vec<f64>> {
        let Value::Array(items) = value else {
            return Err(self.err(
                ErrorKind::Malformed,
                field,
                format!(
                    "expected an array of {len} numbers, found {}",
                    describe_json(value)
                ),
            ));
        };
        if items.len() != len {
            return Err(self.err(
                ErrorKind::DimensionMismatch,
                field,
                format!("expected {len} values, found {}", items.len()),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| self.number(&|| format!("{field}[{i}]"), v))
            .collect()
    }
}

/// Writes one JSON value as a line.
pub(crate) fn write_line(
    out: &mut dyn std::io::Write,
    path: &Path,
    value: &impl serde::Serialize,
) -> Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(|e| {
        DataError::new(
            ErrorKind::Io,
            path,
            format!("cannot write a JSON line: {e}"),
        )
    })?;
    out.write_all(b"\n").map_err(|e| DataError::io(path, e))
}
