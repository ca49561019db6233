//! Shared test helpers: the model loaded once (or a printed reason to skip), and the data dir.

#![allow(dead_code, clippy::panic)] // Not every test binary uses every helper; panics report failures.

use std::path::PathBuf;
use std::sync::OnceLock;

use pilot_data::Input;
use pilot_minilm::MiniLm;

/// The model from the default directory, loaded once per test binary. `None` (after printing
/// why) when it cannot be loaded on a developer's machine; a failure under `CI=true` or
/// `PILOT_REQUIRE_MINILM=1` (pilot-data's [`Input`](pilot_data::Input) rule).
pub fn model_or_skip(test: &str) -> Option<&'static MiniLm> {
    static MODEL: OnceLock<Result<MiniLm, String>> = OnceLock::new();
    match MODEL.get_or_init(|| MiniLm::load_default().map_err(|e| e.to_string())) {
        Ok(model) => Some(model),
        Err(why) => {
            if let Err(fail) = Input::MiniLm.missing(&format!("{test}: {why}")) {
                panic!("{fail}");
            }
            None
        }
    }
}

/// The shared data folder (`$PILOT_SHARED_DATA`, else `shared/data` beside the checkout).
pub fn data_dir() -> PathBuf {
    pilot_data::shared_data_dir()
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
