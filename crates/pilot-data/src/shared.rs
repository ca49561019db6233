//! Where the read-only shared data lives beside the checkout, for tests, benches and examples.

use std::path::PathBuf;

/// The embedder id of the `*.minilm.f32` files.
pub const MINILM_ID: &str = "all-MiniLM-L6-v2";

/// The dimension of the `*.minilm.f32` files.
pub const MINILM_DIM: usize = 384;

/// The embedder id to record for vectors read from `path` (`dim` values per row) when the user
/// named none: [`MINILM_ID`] only for a 384-value file named `*.minilm.f32` (the shared data's
/// convention), otherwise `unnamed:d=<dim>`, which claims nothing. Vectors from
/// `pilot embed --model hash` should be named by the id it prints (`hash-v1:d=256`).
pub fn default_embedder_id(path: &std::path::Path, dim: usize) -> String {
    let minilm_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".minilm.f32"));
    if minilm_name && dim == MINILM_DIM {
        MINILM_ID.to_owned()
    } else {
        format!("unnamed:d={dim}")
    }
}

/// The shared data folder: `$PILOT_SHARED_DATA` when set, else `../shared/data` beside the
/// repository root (resolved from this crate's manifest directory at compile time).
pub fn shared_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PILOT_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// A file in the shared data folder, or `Err(reason)` saying why it is not there, so a test can
/// print the reason and skip.
///
/// # Errors
/// A sentence naming the missing path.
pub fn shared_file(name: &str) -> Result<PathBuf, String> {
    let path = shared_data_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "shared data file {} is missing (set PILOT_SHARED_DATA or place ../shared/data beside the checkout)",
            path.display()
        ))
    }
}
