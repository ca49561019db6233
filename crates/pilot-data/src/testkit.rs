//! Fuzzing oracles for the loaders: arbitrary bytes through every parser. A fuzz target is
//! three lines:
//!
//! ```
//! # let data: &[u8] = b"\x02{\"K\":1,\"d\":1,\"arms\":[\"a\"]}\n{\"x\":[1],\"r\":[0]}";
//! if let Err(why) = pilot_data::testkit::check_parsers(data) {
//!     panic!("{why}");
//! }
//! ```

use std::path::Path;

use pilot_core::ErrorKind;

use crate::{
    BanditLog, BanditLogWriter, DataError, Embeddings, JudgeDataset, PreferenceSet, RoutingDataset,
};

const NAME: &str = "fuzz.jsonl";

/// Byte 0 picks a loader (routing dataset, judge scores, bandit log, preference pairs, raw
/// embeddings); the rest is its file. Checks: no panic; every error names the file, and a
/// line-based error names a line that exists (only whole-file errors, such as an empty file,
/// may have none); what parses is valid, and a bandit log writes back and re-reads equal.
///
/// # Errors
/// A message naming the broken property.
pub fn check_parsers(data: &[u8]) -> Result<(), String> {
    let Some((&which, file)) = data.split_first() else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(file);
    let lines = text.lines().count();
    let located = |e: DataError| check_error(&e, lines);
    match which % 5 {
        0 => match RoutingDataset::parse(&text, NAME) {
            Ok(d) => check_routing(&d),
            Err(e) => located(e),
        },
        1 => match JudgeDataset::parse(&text, NAME) {
            Ok(d) => check_judge(&d),
            Err(e) => located(e),
        },
        2 => match BanditLog::parse(&text, NAME) {
            Ok(log) => check_bandit_log(&log),
            Err(e) => located(e),
        },
        3 => {
            let rows = (which / 5 % 2 == 1).then_some(usize::from(which / 10));
            match PreferenceSet::parse(&text, NAME, rows) {
                Ok(set) => check_pairs(&set, rows),
                Err(e) => located(e),
            }
        }
        _ => {
            let dim = usize::from(which / 5);
            match Embeddings::from_le_bytes(file, dim, NAME) {
                Ok(emb) => {
                    if emb.rows() * emb.dim() != emb.as_slice().len() || emb.rows() == 0 {
                        return Err(String::from("embeddings: rows × dim != values"));
                    }
                    if emb.as_slice().iter().any(|v| !v.is_finite()) {
                        return Err(String::from("embeddings: a NaN/∞ value was accepted"));
                    }
                    Ok(())
                }
                Err(e) if e.path() == Path::new(NAME) && !e.message().is_empty() => Ok(()),
                Err(e) => Err(format!("embeddings error without file or message: {e}")),
            }
        }
    }
}

fn check_error(e: &DataError, lines: usize) -> Result<(), String> {
    if e.path() != Path::new(NAME) || e.message().is_empty() {
        return Err(format!("error without file or message: {e:?}"));
    }
    match e.line() {
        Some(line) if line == 0 || line > lines.max(1) => {
            Err(format!("error at line {line} of a {lines}-line file: {e}"))
        }
        Some(_) => Ok(()),
        None if e.kind() == ErrorKind::Empty => Ok(()),
        None => Err(format!("error without a line number: {e}")),
    }
}

fn finite(values: impl IntoIterator<Item = f64>) -> bool {
    values.into_iter().all(f64::is_finite)
}

fn check_routing(d: &RoutingDataset) -> Result<(), String> {
    if d.rows.is_empty() || d.llms.is_empty() {
        return Err(String::from("routing: parsed with no rows or no LLMs"));
    }
    for (i, row) in d.rows.iter().enumerate() {
        if row.quality.len() != d.llms.len() || row.cost.len() != d.llms.len() {
            return Err(format!("routing row {i}: one cell per LLM expected"));
        }
        if row
            .quality
            .iter()
            .flatten()
            .any(|q| !(0.0..=1.0).contains(q))
        {
            return Err(format!("routing row {i}: quality outside [0, 1] accepted"));
        }
        if row
            .cost
            .iter()
            .flatten()
            .any(|c| !(*c >= 0.0 && c.is_finite()))
        {
            return Err(format!(
                "routing row {i}: negative or non-finite cost accepted"
            ));
        }
    }
    Ok(())
}

fn check_judge(d: &JudgeDataset) -> Result<(), String> {
    for (i, row) in d.rows.iter().enumerate() {
        if row.scores.len() != d.models.len() || row.answer_chars.len() != d.models.len() {
            return Err(format!("judge row {i}: one cell per model expected"));
        }
        if !finite(row.scores.iter().flatten().copied()) {
            return Err(format!("judge row {i}: a NaN/∞ score accepted"));
        }
    }
    Ok(())
}

fn check_pairs(set: &PreferenceSet, rows: Option<usize>) -> Result<(), String> {
    for (i, p) in set.pairs.iter().enumerate() {
        if p.preferred >= set.llms.len() || p.other >= set.llms.len() || p.preferred == p.other {
            return Err(format!("pair {i}: LLM indices invalid"));
        }
        if !(p.weight > 0.0 && p.weight.is_finite()) {
            return Err(format!("pair {i}: weight {} accepted", p.weight));
        }
        if rows.is_some_and(|n| p.row >= n) {
            return Err(format!("pair {i}: row {} past the embeddings", p.row));
        }
    }
    set.check(rows)
        .map_err(|e| format!("a parsed set fails its own check: {e}"))
}

fn check_bandit_log(log: &BanditLog) -> Result<(), String> {
    let h = &log.header;
    for (i, s) in log.steps.iter().enumerate() {
        let costs_ok = s
            .cost
            .as_ref()
            .is_none_or(|c| c.len() == h.k && c.iter().all(|&v| v >= 0.0 && v.is_finite()));
        if s.x.len() != h.d
            || s.r.len() != h.k
            || !costs_ok
            || !finite(s.x.iter().chain(&s.r).copied())
        {
            return Err(format!("bandit log step {i}: invalid step accepted"));
        }
    }
    let mut w = BanditLogWriter::new(Vec::new(), h.clone(), NAME)
        .map_err(|e| format!("a parsed header does not write: {e}"))?;
    for s in &log.steps {
        w.write_step(&s.x, &s.r, s.cost.as_deref())
            .map_err(|e| format!("a parsed step does not write: {e}"))?;
    }
    let bytes = w.finish().map_err(|e| format!("{e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| format!("written log is not UTF-8: {e}"))?;
    let again =
        BanditLog::parse(&text, NAME).map_err(|e| format!("written log does not re-read: {e}"))?;
    if again.header != log.header || again.steps != log.steps {
        return Err(String::from("bandit log: write → read changed it"));
    }
    Ok(())
}

/// Valid inputs for [`check_parsers`], one or more per loader. Seeds for the corpus.
pub fn parser_seeds() -> Vec<Vec<u8>> {
    let files: [(u8, &str); 6] = [
        (
            0,
            "{\"id\":\"q1\",\"task\":\"mmlu\",\"split\":\"train\",\"query\":\"2+2?\",\"quality\":{\"a\":1.0,\"b\":0.0},\"cost_usd\":{\"a\":0.01,\"b\":0.001}}\n{\"task\":\"gsm8k\",\"split\":\"test\",\"query\":\"x\",\"quality\":{\"a\":0.5,\"b\":null},\"cost_usd\":{\"a\":0.02,\"b\":null}}\n",
        ),
        (
            1,
            "{\"id\":\"p1\",\"prompt\":\"hi\",\"judge_score\":{\"m1\":7.5,\"m2\":null},\"answer_chars\":{\"m1\":120}}\n{\"prompt\":\"yo\",\"judge_score\":{\"m1\":3,\"m2\":9}}\n",
        ),
        (
            2,
            "{\"K\": 3, \"d\": 2, \"arms\": [\"a\", \"b\", \"c\"]}\n{\"x\": [0.1, -0.4], \"r\": [1.0, 0.0, 0.5]}\n{\"x\": [0.3, 0.2], \"r\": [0.0, 1.0, 0.5], \"cost\": [0.01, 0.002, 0.0]}\n",
        ),
        (
            3,
            "{\"llms\":[\"a\",\"b\",\"c\"]}\n{\"row\":0,\"preferred\":\"a\",\"other\":\"b\"}\n{\"row\":1,\"preferred\":\"c\",\"other\":\"a\",\"tie\":true,\"weight\":0.5}\n",
        ),
        (
            3 + 5 * 7,
            "{\"llms\":[\"a\",\"b\"]}\n{\"row\":2,\"preferred\":\"b\",\"other\":\"a\"}\n",
        ),
        (4 + 5 * 2, "\u{0}\u{0}\u{80}\u{3f}\u{0}\u{0}\u{0}\u{40}"),
    ];
    files
        .iter()
        .map(|(which, text)| {
            let mut s = vec![*which];
            s.extend_from_slice(text.as_bytes());
            s
        })
        .collect()
}
