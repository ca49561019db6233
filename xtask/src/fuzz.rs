//! `cargo xtask fuzz [TARGET] [--time SECONDS] [--build-only] [--seeds]`: cargo-fuzz on nightly.
//!
//! Builds every target in `fuzz/` (its own workspace), then runs each (or just `TARGET`) for
//! `SECONDS` (default 60) on its corpus (`fuzz/corpus/<target>`, kept out of git) plus the
//! committed seeds (`fuzz/seeds/<target>`). A crash is minimised with `cargo fuzz tmin` and
//! saved under `fuzz/regressions/<target>/`, where the ordinary `cargo test` of
//! `tests/fuzz-replay` replays it on stable; the task then fails until the bug is fixed.
//!
//! `--seeds` first rewrites `fuzz/seeds/` from the crates' testkits. Targets run without a
//! sanitizer: the fuzz build contains none of our `unsafe`. The workspace's two `unsafe`
//! kernels are pilot-bandit's run-time AVX2 dispatch, compiled only with its `std` feature,
//! which the fuzz build leaves off (`testkit` needs `alloc` only), and pilot-minilm's `gemm.rs`,
//! which is not fuzzed; the plugin-host target is built without wasmtime. So panics (including
//! overflow checks, which cargo-fuzz turns on) are what can go wrong in our code, and
//! AddressSanitizer would halve the speed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Runner, cargo, workspace_root};

/// Seconds per target when `--time` is not given.
pub const DEFAULT_SECONDS: u64 = 60;
/// Seconds per target in `cargo xtask ci`: every target builds and runs briefly.
pub const CI_SECONDS: u64 = 20;
const SANITIZER: [&str; 2] = ["--sanitizer", "none"];

struct Options {
    target: Option<String>,
    seconds: u64,
    build_only: bool,
    seeds: bool,
}

fn parse(args: &[String]) -> Option<Options> {
    let mut opts = Options {
        target: None,
        seconds: DEFAULT_SECONDS,
        build_only: false,
        seeds: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => opts.seconds = it.next()?.parse().ok().filter(|&s| s > 0)?,
            "--build-only" => opts.build_only = true,
            "--seeds" => opts.seeds = true,
            name if !name.starts_with('-') && opts.target.is_none() => {
                opts.target = Some(name.to_string());
            }
            _ => return None,
        }
    }
    Some(opts)
}

/// `cargo +nightly` with the outer cargo's toolchain variables removed, so rustup picks nightly.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly");
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The targets: the stems of `fuzz/fuzz_targets/*.rs`, sorted.
fn targets(fuzz: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz.join("fuzz_targets");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// Files in `dir` whose names start with a libFuzzer finding prefix.
fn findings(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                ["crash-", "oom-", "timeout-", "leak-", "slow-unit-"]
                    .iter()
                    .any(|prefix| n.starts_with(prefix))
            })
        })
        .collect();
    found.sort();
    found
}

/// Minimises `finding` and copies the result to `fuzz/regressions/<target>/`.
fn save_regression(runner: &mut Runner, root: &Path, target: &str, finding: &Path) {
    let Some(name) = finding
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return;
    };
    let minimised = finding.with_file_name(format!(
        "minimized-from-{}",
        name.rsplit('-').next().unwrap_or(&name)
    ));
    let mut tmin = nightly_cargo();
    tmin.args(["fuzz", "tmin"])
        .args(SANITIZER)
        .arg(target)
        .arg(finding);
    tmin.args(["--runs", "20000"]);
    runner.run_in(&format!("fuzz tmin {target} {name}"), root, &mut tmin);
    let source = if minimised.is_file() {
        minimised
    } else {
        finding.to_path_buf()
    };
    let dir = root.join("fuzz/regressions").join(target);
    let dest = dir.join(&name);
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::copy(&source, &dest)) {
        Ok(_) => eprintln!(
            "xtask: saved {} (replayed by `cargo test -p pilot-fuzz-replay`)",
            dest.display()
        ),
        Err(e) => runner.fail(format!(
            "fuzz {target}: cannot save {}: {e}",
            dest.display()
        )),
    }
}

/// Builds and runs the fuzz targets; returns false for unknown arguments.
pub fn run(runner: &mut Runner, args: &[String]) -> bool {
    let Some(opts) = parse(args) else {
        return false;
    };
    let root = workspace_root();
    let fuzz = root.join("fuzz");
    let all = match targets(&fuzz) {
        Ok(all) => all,
        Err(e) => {
            runner.fail(format!("fuzz: {e}"));
            return true;
        }
    };
    let chosen: Vec<String> = match &opts.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => {
            runner.fail(format!(
                "fuzz: no target `{t}`; targets: {}",
                all.join(", ")
            ));
            return true;
        }
        None => all,
    };
    let mut probe = nightly_cargo();
    probe.args(["fuzz", "--version"]);
    if !runner.run("cargo-fuzz present", &mut probe) {
        eprintln!(
            "xtask: cargo-fuzz on nightly is needed: `rustup toolchain install nightly` and \
             `cargo install cargo-fuzz --locked`"
        );
        return true;
    }
    if opts.seeds {
        let mut seeds = cargo();
        seeds.args([
            "test",
            "-p",
            "pilot-fuzz-replay",
            "--test",
            "replay",
            "--",
            "--ignored",
            "write_seeds",
        ]);
        runner.run("fuzz seeds", &mut seeds);
    }
    let mut build = nightly_cargo();
    build.args(["fuzz", "build"]).args(SANITIZER);
    if !runner.run_in("fuzz build", &root, &mut build) || opts.build_only {
        return true;
    }
    for target in &chosen {
        let corpus = fuzz.join("corpus").join(target);
        let seeds = fuzz.join("seeds").join(target);
        let artifacts = fuzz.join("artifacts").join(target);
        if let Err(e) =
            std::fs::create_dir_all(&corpus).and_then(|()| std::fs::create_dir_all(&seeds))
        {
            runner.fail(format!("fuzz {target}: {e}"));
            continue;
        }
        let before = findings(&artifacts);
        let mut cmd = nightly_cargo();
        cmd.args(["fuzz", "run"])
            .args(SANITIZER)
            .arg(target)
            .arg(&corpus)
            .arg(&seeds);
        cmd.arg("--")
            .arg(format!("-max_total_time={}", opts.seconds));
        cmd.args(["-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1"]);
        if runner.run_in(
            &format!("fuzz {target} ({} s)", opts.seconds),
            &root,
            &mut cmd,
        ) {
            continue;
        }
        for finding in findings(&artifacts)
            .into_iter()
            .filter(|f| !before.contains(f))
        {
            save_regression(runner, &root, target, &finding);
        }
    }
    true
}
