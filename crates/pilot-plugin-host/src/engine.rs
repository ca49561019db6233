//! The shared wasm engine (compile once) with its epoch timer, and loading a component: checking
//! that it is one, which world it exports and at which ABI version.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::{embedder, policy};
use crate::limits::StoreState;
use crate::{Limits, PluginError};

/// The ABI version this host speaks: the version of the `pilot:plugin` WIT package.
pub const ABI_VERSION: &str = "0.1.0";
/// The export name an embedder plugin must have.
pub const EMBEDDER_EXPORT: &str = "pilot:plugin/embedder@0.1.0";
/// The export name a policy plugin must have.
pub const POLICY_EXPORT: &str = "pilot:plugin/policy@0.1.0";
/// Type-only interface a component may import (it carries no functions).
const TYPES_IMPORT: &str = "pilot:plugin/types@0.1.0";

/// Which world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    /// `embedder-plugin`: text in, a vector out.
    Embedder,
    /// `policy-plugin`: a routing policy with learned state.
    Policy,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Embedder => "embedder-plugin",
            Self::Policy => "policy-plugin",
        })
    }
}

pub(crate) struct EngineInner {
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
}

/// A wasmtime engine configured for plugins (fuel, epoch interruption, the component model) and
/// the timer thread that advances its epoch. Cheap to clone; the timer stops when the engine
/// and every plugin compiled with it are dropped.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// An engine whose stores all get `limits`.
    ///
    /// # Errors
    /// [`PluginError::Engine`] for an invalid limit or when wasmtime cannot be configured.
    pub fn new(limits: Limits) -> Result<Self, PluginError> {
        limits.check()?;
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let inner = Arc::new(EngineInner { engine, limits });
        spawn_epoch_timer(Arc::downgrade(&inner), inner.limits.tick)?;
        Ok(Self { inner })
    }

    /// The limits every store of this engine gets.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Reads and compiles the component at `path`.
    ///
    /// # Errors
    /// [`PluginError::Io`] when the file cannot be read, otherwise as [`load_bytes`](Self::load_bytes).
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<CompiledPlugin, PluginError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| PluginError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        self.load_bytes(&bytes, &path.display().to_string())
    }

    /// Compiles a component once, checks its world and ABI version and pre-links it; `what`
    /// names it in errors (a file name, say).
    ///
    /// # Errors
    /// [`PluginError::NotAComponent`] for bytes that are not a valid component (a core module,
    /// not wasm at all, or a malformed component), [`PluginError::Abi`] when it exports another
    /// ABI version or world, imports something this host does not provide, or lacks a function
    /// of the world or has one of another type (named, with the expected and found signature).
    pub fn load_bytes(&self, bytes: &[u8], what: &str) -> Result<CompiledPlugin, PluginError> {
        check_component_header(bytes, what)?;
        let component =
            Component::new(&self.inner.engine, bytes).map_err(|e| PluginError::NotAComponent {
                what: what.to_string(),
                reason: format!("invalid component: {e:#}"),
            })?;
        let kind = world_of(&self.inner.engine, &component)?;
        // Every function of the world against the WIT: a wrong type is named here, with the
        // expected and found signatures, rather than failing inside `instantiate`.
        crate::signature::check(&self.inner.engine, &component, kind, what)?;
        let mut linker = Linker::<StoreState>::new(&self.inner.engine);
        // A type-only interface is harmless to provide even when the component does not import it.
        linker
            .instance(TYPES_IMPORT)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Abi(format!("cannot link {what}: {e:#}")))?;
        let pre = match kind {
            PluginKind::Embedder => Pre::Embedder(
                embedder::EmbedderPluginPre::new(pre)
                    .map_err(|e| PluginError::Abi(format!("{what}: {e:#}")))?,
            ),
            PluginKind::Policy => Pre::Policy(
                policy::PolicyPluginPre::new(pre)
                    .map_err(|e| PluginError::Abi(format!("{what}: {e:#}")))?,
            ),
        };
        Ok(CompiledPlugin {
            limits: self.inner.limits.clone(),
            engine: Arc::clone(&self.inner),
            kind,
            name: what.to_string(),
            pre: Arc::new(pre),
        })
    }
}

pub(crate) enum Pre {
    Embedder(embedder::EmbedderPluginPre<StoreState>),
    Policy(policy::PolicyPluginPre<StoreState>),
}

/// A component compiled once and pre-linked; instantiate it as many times as needed with
/// [`PluginEmbedder::new`](crate::PluginEmbedder::new) or
/// [`PluginPolicy::new`](crate::PluginPolicy::new). Cheap to clone.
#[derive(Clone)]
pub struct CompiledPlugin {
    pub(crate) engine: Arc<EngineInner>,
    limits: Limits,
    kind: PluginKind,
    name: String,
    pub(crate) pre: Arc<Pre>,
}

impl std::fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPlugin")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CompiledPlugin {
    /// Which world the component implements.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// The name it was loaded under (its file name, say).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ABI (WIT package) version it was built against, which equals this host's.
    pub fn abi_version(&self) -> &'static str {
        ABI_VERSION
    }

    /// The limits its stores get.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The same compiled code with other limits for the instances created from it (no
    /// recompilation). The epoch tick is the engine's: `limits.tick` is replaced by it.
    ///
    /// # Errors
    /// [`PluginError::Engine`] for an invalid limit.
    pub fn with_limits(&self, limits: Limits) -> Result<Self, PluginError> {
        let limits = Limits {
            tick: self.engine.limits.tick,
            ..limits
        };
        limits.check()?;
        Ok(Self {
            limits,
            ..self.clone()
        })
    }
}

fn check_component_header(bytes: &[u8], what: &str) -> Result<(), PluginError> {
    let not = |reason: &str| PluginError::NotAComponent {
        what: what.to_string(),
        reason: reason.to_string(),
    };
    match bytes {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Err(not(
            "it is a core wasm module; link it with `wasm-component-ld` (see docs/plugins.md)",
        )),
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Ok(()),
        [0, b'a', b's', b'm', ..] => Err(not("unknown wasm binary version or layer")),
        _ if bytes.len() < 8 => Err(not("the file is shorter than a wasm header")),
        _ => Err(not("no wasm magic number (\\0asm) at the start")),
    }
}

/// Finds the plugin world among the exports, telling an ABI version mismatch apart from a
/// component that is no plugin at all.
fn world_of(engine: &Engine, component: &Component) -> Result<PluginKind, PluginError> {
    let ty = component.component_type();
    let imports: Vec<&str> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| *name != TYPES_IMPORT)
        .collect();
    if !imports.is_empty() {
        return Err(PluginError::Abi(format!(
            "the plugin imports {imports:?}, but the host provides no imports \
             (build it for wasm32-unknown-unknown, not WASI)"
        )));
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let has = |name: &str| exports.contains(&name);
    match (has(EMBEDDER_EXPORT), has(POLICY_EXPORT)) {
        (true, false) => Ok(PluginKind::Embedder),
        (false, true) => Ok(PluginKind::Policy),
        (true, true) => Err(PluginError::Abi(
            "the plugin exports both the embedder and the policy world; one per component".into(),
        )),
        (false, false) => {
            if let Some(other) = exports.iter().find(|e| e.starts_with("pilot:plugin/")) {
                Err(PluginError::Abi(format!(
                    "the plugin exports `{other}`, but this host speaks ABI {ABI_VERSION} \
                     (`{EMBEDDER_EXPORT}` or `{POLICY_EXPORT}`); rebuild it against this \
                     version of pilot-plugin-sdk"
                )))
            } else {
                Err(PluginError::Abi(format!(
                    "the component exports {exports:?}, none of which is `{EMBEDDER_EXPORT}` \
                     or `{POLICY_EXPORT}`"
                )))
            }
        }
    }
}

fn spawn_epoch_timer(engine: Weak<EngineInner>, tick: Duration) -> Result<(), PluginError> {
    std::thread::Builder::new()
        .name("pilot-plugin-epoch".into())
        .spawn(move || {
            // Holding only a weak reference lets the engine drop; the thread then ends within
            // one tick.
            loop {
                std::thread::sleep(tick);
                match engine.upgrade() {
                    Some(inner) => inner.engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| PluginError::Engine(format!("cannot start the epoch timer thread: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        let core_module = b"\0asm\x01\0\0\0";
        let err = check_component_header(core_module, "m.wasm").unwrap_err();
        assert!(err.to_string().contains("core wasm module"), "{err}");
        let err = check_component_header(b"hello world!", "t.txt").unwrap_err();
        assert!(err.to_string().contains("no wasm magic"), "{err}");
        let err = check_component_header(b"\0as", "short").unwrap_err();
        assert!(err.to_string().contains("shorter"), "{err}");
        assert!(check_component_header(b"\0asm\x0d\0\x01\0", "c").is_ok());
    }

    #[test]
    fn garbage_and_core_modules_are_named_errors() {
        let engine = PluginEngine::new(Limits::default()).unwrap();
        let err = engine.load_bytes(b"\0asm\x01\0\0\0", "core").unwrap_err();
        assert!(matches!(err, PluginError::NotAComponent { .. }), "{err}");
        assert_eq!(err.kind(), pilot_core::ErrorKind::WrongFormat);
        let err = engine
            .load_bytes(b"\0asm\x0d\0\x01\0\xff\xff", "broken")
            .unwrap_err();
        assert!(err.to_string().contains("invalid component"), "{err}");
        let err = engine.load_file("/nonexistent/plugin.wasm").unwrap_err();
        assert_eq!(err.kind(), pilot_core::ErrorKind::Io);
    }
}
