//! One store with its limits armed before every call, and the mapping of traps to named errors.

use wasmtime::{Store, Trap, WasmBacktrace};

use crate::engine::EngineInner;
use crate::limits::StoreState;
use crate::text::{MAX_TRAP_CHARS, sanitize};
use crate::{Limits, PluginError};

/// The largest a wasm32 memory can be: 4 GiB.
const WASM32_MAX_BYTES: usize = 1 << 32;
/// Backtrace frames kept in a trap's description.
const TRAP_FRAMES: usize = 6;

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

    /// Instantiates `pre` and loads the world's typed exports. A trap while instantiating (in
    /// the start function, say) is a sandbox error; an export whose function type differs from
    /// the world's is an ABI mismatch, named with the export.
    pub(crate) fn instantiate<B>(
        &mut self,
        what: &str,
        pre: &wasmtime::component::InstancePre<StoreState>,
        load: impl FnOnce(&mut Store<StoreState>, &wasmtime::component::Instance) -> wasmtime::Result<B>,
    ) -> Result<B, PluginError> {
        let instance = self.call("instantiate", |s| pre.instantiate(s))?;
        load(&mut self.store, &instance).map_err(|e| {
            PluginError::Abi(format!(
                "{what}: an export of the right name has the wrong type ({}); rebuild it \
                 against this version of pilot-plugin-sdk",
                describe(&e)
            ))
        })
    }

    fn classify(&self, call: &'static str, err: &wasmtime::Error) -> PluginError {
        if let Some(denied) = self.store.data().memory_denied {
            return match denied.maximum {
                // The memory's own maximum stopped it, below the configured cap: say so rather
                // than quote a cap that was never reached.
                Some(maximum) if denied.requested > maximum && maximum < self.memory_bytes => {
                    let why = if maximum >= WASM32_MAX_BYTES - (64 << 10) {
                        format!(
                            "that is wasm32's 4 GiB address space, which no configured cap \
                             (here {} bytes) can raise",
                            self.memory_bytes
                        )
                    } else {
                        format!(
                            "the plugin declared that maximum itself (the configured cap is {} \
                             bytes)",
                            self.memory_bytes
                        )
                    };
                    PluginError::MemoryCeiling {
                        call,
                        maximum,
                        requested: denied.requested,
                        why,
                    }
                }
                _ => PluginError::MemoryLimit {
                    call,
                    limit: self.memory_bytes,
                    requested: denied.requested,
                },
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
                message: describe(err),
            },
        }
    }
}

/// A trap's reason first ("call stack exhausted", "wasm `unreachable` instruction executed"
/// for a panic, …), then where: the innermost frames of the wasm backtrace on one line. The
/// function names come from the plugin, so everything is sanitized and capped.
pub(crate) fn describe(err: &wasmtime::Error) -> String {
    let reason = match err.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => format!(
            "{} (a Rust plugin panicked; its panic message stays inside the sandbox)",
            Trap::UnreachableCodeReached
        ),
        Some(trap) => trap.to_string(),
        // Not a wasm trap (a host-side failure while calling): the whole chain, on one line.
        None => err
            .chain()
            .map(ToString::to_string)
            .filter(|m| !m.contains("wasm backtrace"))
            .collect::<Vec<_>>()
            .join(": "),
    };
    let mut out = reason;
    if let Some(trace) = err.downcast_ref::<WasmBacktrace>() {
        // The panic machinery's own frames say nothing about where the plugin failed.
        let machinery = |name: &str| {
            ["panic", "rust_begin_unwind", "backtrace", "abort"]
                .iter()
                .any(|m| name.contains(m))
        };
        let useful: Vec<_> = trace
            .frames()
            .iter()
            .filter(|f| !f.func_name().is_some_and(machinery))
            .collect();
        let frames: Vec<String> = useful
            .iter()
            .take(TRAP_FRAMES)
            .map(|f| match f.func_name() {
                Some(name) => sanitize(name, 120),
                None => format!("<func {}>", f.func_index()),
            })
            .collect();
        if !frames.is_empty() {
            let more = useful.len().saturating_sub(TRAP_FRAMES);
            out.push_str(" at ");
            out.push_str(&frames.join(" ← "));
            if more > 0 {
                out.push_str(&format!(" ← … ({more} more frames)"));
            }
        }
    }
    sanitize(&out, MAX_TRAP_CHARS)
}
