//! The sandbox limits every plugin store gets, with safe defaults, and the limiter that enforces
//! the memory cap while remembering that it did.

use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use crate::PluginError;

/// Limits applied to every call into a plugin. Each call gets a fresh fuel budget and a fresh
/// deadline; the memory cap holds for the life of the instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) one call may burn. Default 200 million.
    pub fuel_per_call: u64,
    /// Wall-clock limit of one call, enforced by epoch interruption. Default 1 s.
    pub deadline: Duration,
    /// How often the engine's timer thread ticks; the deadline is rounded up to whole ticks.
    /// Default 10 ms.
    pub tick: Duration,
    /// Cap on each linear memory of the plugin, in bytes. Default 64 MiB.
    pub memory_bytes: usize,
    /// Cap on each table's elements. Default 100 000.
    pub table_elements: usize,
    /// Largest magnitude an embedding value or a score may have; beyond it the output is
    /// rejected as out of range. Default 1e6.
    pub output_bound: f32,
    /// A policy plugin's learned state is checkpointed (snapshotted by the host) every this many
    /// updates, so a trap costs at most this many replayed updates. Default 64.
    pub checkpoint_every: usize,
    /// A policy plugin fails for good (a [`PluginError::CheckpointFailed`]) after this many
    /// checkpoints in a row failed (the snapshot trapped, ran out of fuel or time, or returned
    /// an error). Default 3.
    pub checkpoint_failures: usize,
    /// Most updates the host journals between two checkpoints (it replays them after a trap);
    /// reaching it without a successful checkpoint fails the policy. At least
    /// `checkpoint_every`. Default 1024.
    pub journal_len: usize,
    /// Most bytes of contexts the journal holds; reaching it forces a checkpoint, and fails the
    /// policy when that checkpoint fails. Default 64 MiB.
    pub journal_bytes: usize,
    /// Largest output dimension an embedder plugin may declare (at most
    /// [`validate::MAX_EMBED_DIM`](crate::validate::MAX_EMBED_DIM)). Default 8192.
    pub max_embed_dim: usize,
    /// Most host memory a plugin's outputs may make the host hold as one table: rows ×
    /// dimension × 4 bytes of embeddings, checked by
    /// [`PluginEmbedder::reserve_rows`](crate::PluginEmbedder::reserve_rows) before a table
    /// is embedded. Default 1 GiB.
    pub output_table_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel_per_call: 200_000_000,
            deadline: Duration::from_secs(1),
            tick: Duration::from_millis(10),
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            output_bound: 1.0e6,
            checkpoint_every: 64,
            checkpoint_failures: 3,
            journal_len: 1024,
            journal_bytes: 64 << 20,
            max_embed_dim: 8192,
            output_table_bytes: 1 << 30,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable.
    ///
    /// # Errors
    /// [`PluginError::Engine`] naming the field that is zero or not finite.
    pub fn check(&self) -> Result<(), PluginError> {
        let bad = |field: &str| {
            Err(PluginError::Engine(format!(
                "limits: `{field}` must be > 0"
            )))
        };
        if self.fuel_per_call == 0 {
            return bad("fuel_per_call");
        }
        if self.deadline.is_zero() {
            return bad("deadline");
        }
        if self.tick.is_zero() {
            return bad("tick");
        }
        if self.memory_bytes == 0 {
            return bad("memory_bytes");
        }
        if !(self.output_bound > 0.0) || !self.output_bound.is_finite() {
            return Err(PluginError::Engine(format!(
                "limits: `output_bound` must be finite and > 0, found {}",
                self.output_bound
            )));
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every");
        }
        if self.checkpoint_failures == 0 {
            return bad("checkpoint_failures");
        }
        if self.journal_bytes == 0 {
            return bad("journal_bytes");
        }
        if self.output_table_bytes == 0 {
            return bad("output_table_bytes");
        }
        if self.journal_len < self.checkpoint_every {
            return Err(PluginError::Engine(format!(
                "limits: `journal_len` ({}) must be at least `checkpoint_every` ({})",
                self.journal_len, self.checkpoint_every
            )));
        }
        if self.max_embed_dim == 0 || self.max_embed_dim > crate::validate::MAX_EMBED_DIM {
            return Err(PluginError::Engine(format!(
                "limits: `max_embed_dim` must be in 1..={}, found {}",
                crate::validate::MAX_EMBED_DIM,
                self.max_embed_dim
            )));
        }
        Ok(())
    }

    /// The deadline in epoch ticks, rounded up, at least one.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        let ticks = self.deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// A memory growth the limiter refused.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Denied {
    /// The size the memory asked to grow to.
    pub(crate) requested: usize,
    /// The memory's own maximum (for wasm32 without a declared one, its 4 GiB address space).
    pub(crate) maximum: Option<usize>,
}

/// What a plugin store holds: the limiter (StoreLimits plus a note of the last denied growth).
pub(crate) struct StoreState {
    limits: StoreLimits,
    /// The last growth the limiter refused.
    pub(crate) memory_denied: Option<Denied>,
}

impl StoreState {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .table_elements(limits.table_elements)
                .instances(16)
                .tables(16)
                .memories(4)
                // A refused grow traps at once instead of returning -1, so a plugin cannot
                // mistake the cap for ordinary allocation failure and limp on.
                .trap_on_grow_failure(true)
                .build(),
            memory_denied: None,
        }
    }
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let verdict = self.limits.memory_growing(current, desired, maximum);
        if !matches!(verdict, Ok(true)) {
            self.memory_denied = Some(Denied {
                requested: desired,
                maximum,
            });
        }
        verdict
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        let limits = Limits {
            deadline: Duration::from_millis(25),
            tick: Duration::from_millis(10),
            ..Limits::default()
        };
        assert_eq!(limits.deadline_ticks(), 3);
        assert_eq!(Limits::default().deadline_ticks(), 100);
    }

    #[test]
    fn zero_limits_are_rejected_by_name() {
        let err = Limits {
            fuel_per_call: 0,
            ..Limits::default()
        }
        .check()
        .unwrap_err();
        assert!(err.to_string().contains("fuel_per_call"), "{err}");
        let err = Limits {
            output_bound: f32::NAN,
            ..Limits::default()
        }
        .check()
        .unwrap_err();
        assert!(err.to_string().contains("output_bound"), "{err}");
        assert!(Limits::default().check().is_ok());
    }
}
