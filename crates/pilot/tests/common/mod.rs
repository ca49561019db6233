//! Helpers the `pilot` command-line tests share: run the binary, make a scratch folder, read
//! what it wrote, find the real data.
// Each test binary compiles this module and uses its own subset of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `pilot` binary under test, as a command to add arguments to.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pilot"))
}

/// Runs `pilot ARGS` to completion.
pub fn pilot(args: &[&str]) -> Output {
    command().args(args).output().expect("run pilot")
}

/// A fresh, empty folder for one test, named after the test binary, the process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pilot-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Output bytes as text (lossy: a test wants to see what was printed, whatever it is).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `pilot` succeeded (showing what it printed if not) and returns its stdout.
pub fn succeeded(o: &Output) -> String {
    assert!(
        o.status.success(),
        "pilot failed:\nstdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Asserts that `pilot` failed cleanly: non-zero exit, no panic, and every needle in stderr.
pub fn fails_with(o: &Output, needles: &[&str]) {
    let err = text(&o.stderr);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// Raw little-endian f32 values (the format of `pilot embed` and `shared/data/*.minilm.f32`).
pub fn read_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The shared data folder (`$PILOT_SHARED_DATA`, else `shared/data` beside the checkout) when
/// it has RouterBench; else `None` with the reason printed on a developer's machine, and a
/// failure under `CI=true` or `PILOT_REQUIRE_DATA=1` (pilot-data's one rule for missing inputs).
pub fn shared_data() -> Option<PathBuf> {
    pilot_data::shared_input("routerbench-3k.jsonl")
        .unwrap_or_else(|fail| panic!("{fail}"))
        .and_then(|file| file.parent().map(PathBuf::from))
}

/// RouterBench's lines and their reference MiniLM rows (`routerbench-3k.minilm.f32`, 384
/// values a line), once the model loads; `None` with the reason printed when the model or the
/// data is missing on a developer's machine. The model is checked first: under `CI=true` or
/// `PILOT_REQUIRE_MINILM=1` a missing model fails even where the data is missing too, and under
/// `CI=true` or `PILOT_REQUIRE_DATA=1` missing data fails.
#[cfg(feature = "minilm")]
pub fn minilm_reference() -> Option<(String, Vec<f32>)> {
    use pilot_data::Input;
    let required = |input: Input, why: String| {
        if let Err(fail) = input.missing(&why) {
            panic!("{fail}");
        }
    };
    if let Err(e) = pilot_minilm::MiniLm::load_default() {
        required(Input::MiniLm, e.to_string());
        return None;
    }
    let data = pilot_data::shared_data_dir();
    let (Ok(jsonl), Ok(reference)) = (
        std::fs::read_to_string(data.join("routerbench-3k.jsonl")),
        std::fs::read(data.join("routerbench-3k.minilm.f32")),
    ) else {
        required(
            Input::Data,
            format!("shared data missing in {}", data.display()),
        );
        return None;
    };
    Some((jsonl, read_f32(&reference)))
}
