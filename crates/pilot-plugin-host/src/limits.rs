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
        Ok(())
    }

    /// The deadline in epoch ticks, rounded up, at least one.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        let ticks = self.deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// What a plugin store holds: the limiter (StoreLimits plus a note of the last denied growth).
pub(crate) struct StoreState {
    limits: StoreLimits,
    /// The size a memory asked to grow to when the cap refused it.
    pub(crate) memory_denied: Option<usize>,
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
            self.memory_denied = Some(desired);
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
