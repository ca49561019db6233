//! Reading a `pilot serve` state as a decision log: the `events` table of `pilot.sqlite` (one
//! JSON `Record` per row) in sequence order, and its export to the JSON lines that
//! `pilot_router::log::read` and `pilot ope --log` read.
//!
//! Only reads: the database is opened without creating anything, and nothing is written to it,
//! so a running server's state can be exported (SQLite's WAL lets a reader see every committed
//! event while the server writes).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pilot_router::Record;
use rusqlite::{Connection, OpenFlags};

/// The first bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The database of a state: `path` itself when it is a file, `path/pilot.sqlite` when it is a
/// directory.
pub fn database(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("pilot.sqlite")
    } else {
        path.to_path_buf()
    }
}

/// Whether `path` is a `pilot serve` state: a directory holding `pilot.sqlite`, or a file that
/// starts with SQLite's header.
pub fn is_state(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("pilot.sqlite").is_file();
    }
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head == SQLITE_MAGIC)
}

/// Every stored event of the state at `path` (the state directory or its `pilot.sqlite`), in
/// sequence order.
///
/// # Errors
/// No database there, no `events` table (not a `pilot serve` state), a row that does not
/// decode, or a gap in the sequence numbers.
pub fn read_events(path: &Path) -> Result<Vec<Record>> {
    let db = database(path);
    if !db.is_file() {
        bail!(
            "{}: no pilot serve state there (expected the state directory of `[state] dir` or \
             its pilot.sqlite)",
            path.display()
        );
    }
    // Read-write without create: a read-only connection cannot open a WAL database whose
    // shared-memory file is gone (a server that stopped); nothing is written.
    let conn = Connection::open_with_flags(
        &db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the state database {}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut stmt = conn
        .prepare("SELECT seq, record FROM events ORDER BY seq")
        .with_context(|| {
            format!(
                "{}: no events table; is it a pilot serve state?",
                db.display()
            )
        })?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out: Vec<Record> = Vec::new();
    for row in rows {
        let (seq, json) = row?;
        let record: Record = serde_json::from_str(&json)
            .with_context(|| format!("{}: event {seq} does not decode", db.display()))?;
        if let Some(last) = out.last()
            && record.seq != last.seq + 1
        {
            bail!(
                "{}: the event log has a gap: event {} after {}",
                db.display(),
                record.seq,
                last.seq
            );
        }
        out.push(record);
    }
    Ok(out)
}

/// Writes every stored event of the state at `path` to `out` as JSON lines
/// (`pilot_router::log::to_line`); returns how many.
///
/// # Errors
/// As [`read_events`], and write errors.
pub fn export(path: &Path, out: &mut dyn Write) -> Result<usize> {
    let records = read_events(path)?;
    for r in &records {
        out.write_all(pilot_router::log::to_line(r)?.as_bytes())?;
    }
    out.flush()?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_missing_or_foreign_state_is_named() {
        let dir = std::env::temp_dir().join(format!("pilot-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!is_state(&dir));
        let err = read_events(&dir).unwrap_err().to_string();
        assert!(err.contains("no pilot serve state"), "{err}");
        let other = dir.join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER);")
            .unwrap();
        assert!(is_state(&other));
        let err = format!("{:#}", read_events(&other).unwrap_err());
        assert!(err.contains("no events table"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
