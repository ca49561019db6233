//! Shared helpers for the host's integration tests: finding built plugins, skip-or-fail, and
//! compiling each plugin once per test binary (debug-built cranelift is slow).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use pilot_plugin_host::{CompiledPlugin, Limits, PluginEngine, locate};

/// The built component of guest crate `name`; `None` (with the reason printed) when it is
/// missing locally. Under `CI=true` a missing plugin fails the test instead.
pub fn plugin_path(name: &str) -> Option<PathBuf> {
    match locate::find(name) {
        Ok(path) => Some(path),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and {why}");
            }
            eprintln!("skipping: {why}");
            None
        }
    }
}

/// The shared engine; its tick is fine-grained so deadline tests are quick.
pub fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        PluginEngine::new(Limits {
            tick: std::time::Duration::from_millis(5),
            ..Limits::default()
        })
        .expect("engine")
    })
}

/// Plugin `name` compiled once, with `limits` for its instances; `None` when it is not built
/// (see [`plugin_path`]).
pub fn load(name: &str, limits: Limits) -> Option<CompiledPlugin> {
    static CACHE: OnceLock<Mutex<HashMap<String, CompiledPlugin>>> = OnceLock::new();
    let path = plugin_path(name)?;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let compiled = match cache.get(name) {
        Some(c) => c.clone(),
        None => {
            let c = engine().load_file(&path).expect("load plugin");
            cache.insert(name.to_string(), c.clone());
            c
        }
    };
    Some(compiled.with_limits(limits).expect("limits"))
}
