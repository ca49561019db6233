//! The fuzz targets' oracles by target name, so an ordinary `cargo test` replays every input
//! saved under `fuzz/regressions/<target>/` and `fuzz/seeds/<target>/` without nightly or
//! libFuzzer.
//!
//! Each entry names the function its `fuzz/fuzz_targets/<target>.rs` calls; a test checks the
//! table and the target files agree, so a new target cannot go unreplayed.

use std::path::{Path, PathBuf};

/// An oracle: `Err(why)` when the input breaks a property (a panic is a finding too).
pub type Oracle = fn(&[u8]) -> Result<(), String>;

/// One fuzz target: its name (the file stem), the path its target file calls, the oracle.
pub struct Target {
    /// The target's name, as `cargo fuzz run <name>` takes it.
    pub name: &'static str,
    /// The function the target calls, spelled as in the target's source.
    pub calls: &'static str,
    /// That same function.
    pub oracle: Oracle,
    /// Valid inputs to start the corpus from (written by `cargo xtask fuzz --seeds`).
    pub seeds: fn() -> Result<Vec<Vec<u8>>, String>,
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "snapshot",
        calls: "pilot_bandit::testkit::check_snapshot_bytes",
        oracle: pilot_bandit::testkit::check_snapshot_bytes,
        seeds: pilot_bandit::testkit::snapshot_seeds,
    },
    Target {
        name: "policy_ops",
        calls: "pilot_bandit::testkit::check_policy_ops",
        oracle: pilot_bandit::testkit::check_policy_ops,
        seeds: || Ok(pilot_bandit::testkit::policy_ops_seeds()),
    },
    Target {
        name: "mckp",
        calls: "pilot_budget::testkit::check_mckp_bytes",
        oracle: pilot_budget::testkit::check_mckp_bytes,
        seeds: || Ok(mckp_seeds()),
    },
    Target {
        name: "online",
        calls: "pilot_budget::testkit::check_online_bytes",
        oracle: pilot_budget::testkit::check_online_bytes,
        seeds: || Ok(pilot_budget::testkit::online_seeds()),
    },
    Target {
        name: "parsers",
        calls: "pilot_data::testkit::check_parsers",
        oracle: pilot_data::testkit::check_parsers,
        seeds: || Ok(pilot_data::testkit::parser_seeds()),
    },
    Target {
        name: "prior",
        calls: "pilot_prior::testkit::check_prior_bytes",
        oracle: pilot_prior::testkit::check_prior_bytes,
        seeds: pilot_prior::testkit::prior_seeds,
    },
    Target {
        name: "plugin_outputs",
        calls: "pilot_plugin_host::testkit::check_plugin_outputs",
        oracle: pilot_plugin_host::testkit::check_plugin_outputs,
        seeds: || Ok(pilot_plugin_host::testkit::plugin_output_seeds()),
    },
    Target {
        name: "serve_parsers",
        calls: "pilot_serve_parse::testkit::check_serve_parsers",
        oracle: pilot_serve_parse::testkit::check_serve_parsers,
        seeds: || Ok(pilot_serve_parse::testkit::serve_parser_seeds()),
    },
];

/// MCKP instances in `pilot_budget::testkit::instance_from_bytes` form: classes, capacity,
/// then per class an item count and (weight, profit) pairs; tight, loose and infeasible ones.
fn mckp_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![2, 10, 1, 3, 5, 6, 9, 2, 2, 7, 4, 1, 8, 20],
        vec![
            5, 40, 2, 1, 1, 5, 7, 9, 20, 1, 4, 8, 2, 9, 3, 3, 3, 4, 1, 2, 2, 2, 9, 9, 8, 60, 50,
        ],
        vec![1, 0, 1, 5, 9, 6, 8],
        vec![
            3, 63, 4, 1, 255, 2, 254, 3, 253, 4, 252, 63, 1, 4, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5,
        ],
    ]
}

/// The `fuzz/` folder of this checkout.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The saved inputs of `target`: its regressions (minimised crashes) and its seeds.
///
/// # Errors
/// A message when a folder exists but cannot be read.
pub fn saved_inputs(target: &str) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for kind in ["regressions", "seeds"] {
        let dir = fuzz_dir().join(kind).join(target);
        if !dir.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs `oracle` on every saved input of `target`; returns one line per failing file (an
/// oracle error or a panic), and the number of files replayed.
///
/// # Errors
/// A message when the inputs cannot be listed.
pub fn replay(target: &str, oracle: Oracle) -> Result<(usize, Vec<String>), String> {
    let files = saved_inputs(target)?;
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        match std::panic::catch_unwind(|| oracle(&data)) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{}: {why}", path.display())),
            Err(_) => failures.push(format!("{}: panicked", path.display())),
        }
    }
    Ok((files.len(), failures))
}

/// Writes `target`'s seeds as `fuzz/seeds/<target>/seed-NNN`, replacing the old ones.
///
/// # Errors
/// A message when the seeds cannot be made or written.
pub fn write_seeds(target: &Target) -> Result<usize, String> {
    let dir = fuzz_dir().join("seeds").join(target.name);
    if dir.is_dir() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let seeds = (target.seeds)()?;
    for (i, seed) in seeds.iter().enumerate() {
        let path = dir.join(format!("seed-{i:03}"));
        std::fs::write(&path, seed).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(seeds.len())
}
