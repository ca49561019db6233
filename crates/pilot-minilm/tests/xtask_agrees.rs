//! `cargo xtask fetch-model` repeats the file names and checksums (xtask does not depend on
//! candle); this keeps the two copies from drifting apart.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests may unwrap: a panic is the failure report.

use pilot_minilm::MODEL_FILES;

#[test]
fn xtask_fetches_the_files_this_crate_verifies() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../xtask/src/minilm.rs");
    let source = std::fs::read_to_string(path).unwrap();
    for file in MODEL_FILES {
        assert!(
            source.contains(file.name),
            "xtask does not fetch {}",
            file.name
        );
        assert!(
            source.contains(file.sha256),
            "xtask has another sha256 for {}",
            file.name
        );
    }
    assert!(
        source.contains("pilot/all-MiniLM-L6-v2"),
        "xtask uses another cache directory"
    );
}
