//! Event logs as JSON lines: one [`Record`] per line, written in order and read back up to the
//! first damaged line, which is reported with its byte offset while everything before it is kept.

use std::string::{String, ToString};
use std::vec::Vec;

use crate::event::{EVENT_VERSION, Record};

/// Where and why reading a log stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDamage {
    /// Byte offset of the first bad line.
    pub offset: usize,
    /// Its line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl core::fmt::Display for LogDamage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "event log damaged at line {} (byte {}): {}",
            self.line, self.offset, self.reason
        )
    }
}

/// One record as a JSON line (with its newline).
///
/// # Errors
/// serde_json's error (never for the router's own records).
pub fn to_line(record: &Record) -> serde_json::Result<String> {
    let mut s = serde_json::to_string(record)?;
    s.push('\n');
    Ok(s)
}

/// Reads JSON-lines records starting at sequence number `first_seq`. Stops at the first line
/// that is not valid JSON, has another format version, is out of sequence or lacks its final
/// newline (a torn write): the records before it are returned with the damage.
pub fn read(bytes: &[u8], first_seq: u64) -> (Vec<Record>, Option<LogDamage>) {
    let mut out = Vec::new();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    let mut expected = first_seq;
    while offset < bytes.len() {
        line_no += 1;
        let rest = &bytes[offset..];
        let damage = |reason: String| LogDamage {
            offset,
            line: line_no,
            reason,
        };
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return (
                out,
                Some(damage("truncated: the last line has no end".into())),
            );
        };
        let line = &rest[..end];
        let record: Record = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return (out, Some(damage(e.to_string()))),
        };
        if record.v != EVENT_VERSION {
            return (
                out,
                Some(damage(std::format!(
                    "format version {} (this build reads {EVENT_VERSION})",
                    record.v
                ))),
            );
        }
        if record.seq != expected {
            return (
                out,
                Some(damage(std::format!(
                    "sequence number {} where {expected} was expected",
                    record.seq
                ))),
            );
        }
        expected += 1;
        out.push(record);
        offset += end + 1;
    }
    (out, None)
}
