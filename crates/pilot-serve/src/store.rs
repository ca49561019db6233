//! Durable state in SQLite (WAL): the router's events (one JSON record per row, by sequence
//! number), its snapshots (with the sequence they include), the pool it started from and the
//! upstreams added by an operator.

use std::path::Path;

use anyhow::{Context, Result, bail};
use pilot_router::Record;
use rusqlite::{Connection, OptionalExtension, params};

use crate::config::UpstreamConfig;

/// The database of one server.
pub struct Store {
    conn: Connection,
    last_snapshot: u64,
}

impl Store {
    /// Opens (creating) `dir/pilot.sqlite` in WAL mode; `full_sync` makes each commit reach the
    /// disk (power-loss safe) rather than the OS (process-crash safe).
    ///
    /// # Errors
    /// The directory or database cannot be created or opened.
    pub fn open(dir: &Path, full_sync: bool) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let path = dir.join("pilot.sqlite");
        let conn = Connection::open(&path)
            .with_context(|| format!("cannot open the state database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if full_sync { "FULL" } else { "NORMAL" },
        )?;
        // Checkpoints copy the WAL into the database and fsync it: a few milliseconds that
        // would stall the request whose commit triggered one. `checkpointer` runs them on
        // its own thread instead.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS upstreams (name TEXT PRIMARY KEY, spec TEXT NOT NULL);",
        )
        .context("cannot create the state tables")?;
        let last_snapshot: Option<i64> = conn
            .query_row("SELECT MAX(seq) FROM snapshots", [], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(Self {
            conn,
            last_snapshot: last_snapshot.map_or(0, |s| s as u64),
        })
    }

    /// Checkpoints the WAL of `dir`'s database every `every` from a thread of its own (a
    /// second connection; writers are not blocked) while `alive` says so.
    ///
    /// # Errors
    /// The database cannot be opened.
    pub fn checkpointer(
        dir: &Path,
        every: std::time::Duration,
        alive: impl Fn() -> bool + Send + 'static,
    ) -> Result<std::thread::JoinHandle<()>> {
        let conn = Connection::open(dir.join("pilot.sqlite"))?;
        conn.busy_timeout(std::time::Duration::from_secs(1))?;
        Ok(std::thread::spawn(move || {
            while alive() {
                std::thread::sleep(every);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    eprintln!("pilot serve: WAL checkpoint: {e}");
                }
            }
        }))
    }

    /// A value of the `meta` table.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a value of the `meta` table.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Appends records in one transaction (durable when this returns).
    ///
    /// # Errors
    /// SQLite or encoding errors; a sequence number already stored.
    pub fn append(&mut self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO events (seq, record) VALUES (?1, ?2)")?;
            for r in records {
                let json = serde_json::to_string(r)?;
                stmt.execute(params![r.seq as i64, json])
                    .with_context(|| format!("cannot store event {}", r.seq))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sequence number of the last snapshot (0: none).
    pub fn last_snapshot(&self) -> u64 {
        self.last_snapshot
    }

    /// Stores a snapshot that includes every event before `seq`; keeps the last two.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn snapshot(&mut self, seq: u64, bytes: &[u8]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO snapshots (seq, bytes) VALUES (?1, ?2)",
            params![seq as i64, bytes],
        )?;
        tx.execute(
            "DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 2)",
            [],
        )?;
        tx.commit()?;
        self.last_snapshot = seq;
        Ok(())
    }

    /// The newest snapshot: the sequence it includes up to and its bytes.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn latest_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, bytes FROM snapshots ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?)
    }

    /// The records from `from` on, in order; stops with an error at a gap or a bad row.
    ///
    /// # Errors
    /// SQLite errors, a record that does not decode, a gap in the sequence.
    pub fn events_from(&self, from: u64) -> Result<Vec<Record>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, record FROM events WHERE seq >= ?1 ORDER BY seq")?;
        let rows = stmt.query_map([from as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for (expected, row) in (from..).zip(rows) {
            let (seq, json) = row?;
            if seq != expected {
                bail!("the event log has a gap: event {seq} where {expected} was expected");
            }
            let record: Record = serde_json::from_str(&json)
                .with_context(|| format!("event {seq} does not decode"))?;
            out.push(record);
        }
        Ok(out)
    }

    /// Number of stored events.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn event_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Upstreams added by an operator (name → spec).
    ///
    /// # Errors
    /// SQLite or decoding errors.
    pub fn upstreams(&self) -> Result<Vec<UpstreamConfig>> {
        let mut stmt = self
            .conn
            .prepare("SELECT spec FROM upstreams ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Records an operator-added upstream.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn put_upstream(&self, spec: &UpstreamConfig) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO upstreams (name, spec) VALUES (?1, ?2)",
            params![spec.name, serde_json::to_string(spec)?],
        )?;
        Ok(())
    }
}
