//! `cargo xtask mckp-suite [ARGS]`: the exact MCKP solver's scaling suite (issue 20), a
//! release-built bench that prints time, memory and states kept per generated instance.

use crate::util::{Runner, cargo};

/// Runs the suite, passing `args` on (`--runs N`, `--size MxN`, `--kind NAME`, `--ratio R`,
/// `--range R`, `--reuse`, `--seed S`, `--sweep N`); always known.
pub fn run(runner: &mut Runner, args: &[String]) -> bool {
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "-p",
        "pilot-budget",
        "--features",
        "testkit",
        "--bench",
        "mckp_suite",
        "--",
    ])
    .args(args);
    runner.run("mckp suite", &mut cmd);
    true
}
