//! Shared test helpers: the model loaded once (or a printed reason to skip), and the data dir.

#![allow(dead_code, clippy::panic)] // Not every test binary uses every helper; panics report failures.

use std::path::PathBuf;
use std::sync::OnceLock;

use pilot_minilm::MiniLm;

/// Set to `1` to turn "model not available, skipping" into a failure (`cargo xtask minilm`).
pub const REQUIRE_ENV: &str = "PILOT_REQUIRE_MINILM";

/// The model from the default directory, loaded once per test binary. `None` (after printing
/// why) when it cannot be loaded, unless `PILOT_REQUIRE_MINILM=1`, which makes that a failure.
pub fn model_or_skip(test: &str) -> Option<&'static MiniLm> {
    static MODEL: OnceLock<Result<MiniLm, String>> = OnceLock::new();
    match MODEL.get_or_init(|| MiniLm::load_default().map_err(|e| e.to_string())) {
        Ok(model) => Some(model),
        Err(why) if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") => {
            panic!("{REQUIRE_ENV}=1 but the model cannot be loaded: {why}")
        }
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

/// `shared/data` beside the repository checkout.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// Dot product; the embedder's rows are unit length, so this is their cosine.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// Cosine of two vectors of any length.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}
