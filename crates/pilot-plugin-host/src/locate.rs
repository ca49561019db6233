//! Finding the built plugin components (`cargo xtask plugins` writes `target/plugins/*.wasm`)
//! without hand-kept paths.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the plugin directory.
pub const DIR_VAR: &str = "PILOT_PLUGIN_DIR";

/// The directory holding built components: `$PILOT_PLUGIN_DIR`, else `target/plugins` at the
/// root of the repository this crate was built from.
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DIR_VAR) {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.join("../../target/plugins")
}

/// Every `*.wasm` file in [`plugin_dir`], sorted; empty when the directory does not exist.
pub fn list() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(plugin_dir())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The component built from the guest crate `name` (`hash-embedder` → `hash_embedder.wasm`).
///
/// # Errors
/// A message saying where it looked, what is there, and how to build it.
pub fn find(name: &str) -> Result<PathBuf, String> {
    let file = format!("{}.wasm", name.replace('-', "_"));
    let all = list();
    if let Some(path) = all
        .iter()
        .find(|p| p.file_name().is_some_and(|f| f == file.as_str()))
    {
        return Ok(path.clone());
    }
    let names: Vec<String> = all
        .iter()
        .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect();
    Err(format!(
        "plugin {file} not found in {} (found: {names:?}); run `cargo xtask plugins` first",
        plugin_dir().display()
    ))
}
