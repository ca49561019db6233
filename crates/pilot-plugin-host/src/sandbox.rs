//! One store with its limits armed before every call, and the mapping of traps to named errors.

use wasmtime::{Store, Trap};

use crate::engine::EngineInner;
use crate::limits::StoreState;
use crate::{Limits, PluginError};

/// A store whose every call gets fresh fuel and a fresh deadline under a fixed memory cap.
pub(crate) struct Sandbox {
    pub(crate) store: Store<StoreState>,
    fuel: u64,
    deadline_ticks: u64,
    deadline: std::time::Duration,
    memory_bytes: usize,
}

impl Sandbox {
    pub(crate) fn new(engine: &EngineInner, limits: &Limits) -> Self {
        let mut store = Store::new(&engine.engine, StoreState::new(limits));
        store.limiter(|state| state);
        store.epoch_deadline_trap();
        Self {
            store,
            fuel: limits.fuel_per_call,
            deadline_ticks: limits.deadline_ticks(),
            deadline: limits.deadline,
            memory_bytes: limits.memory_bytes,
        }
    }

    /// Runs `f` against the store with the limits re-armed; a trap becomes a named error.
    pub(crate) fn call<R>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.store
            .set_fuel(self.fuel)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store.data_mut().memory_denied = None;
        f(&mut self.store).map_err(|e| self.classify(call, &e))
    }

    fn classify(&self, call: &'static str, err: &wasmtime::Error) -> PluginError {
        if let Some(requested) = self.store.data().memory_denied {
            return PluginError::MemoryLimit {
                call,
                limit: self.memory_bytes,
                requested,
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                call,
                fuel: self.fuel,
            },
            Some(Trap::Interrupt) => PluginError::Timeout {
                call,
                deadline: self.deadline,
            },
            _ => PluginError::Trap {
                call,
                message: format!("{err:?}"),
            },
        }
    }
}
