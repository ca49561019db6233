//! `cargo xtask ci`: every check CI makes, all failures reported together.

use crate::util::{Runner, cargo};

/// Runs the CI checks; returns false for unknown arguments.
pub fn run(runner: &mut Runner, args: &[String]) -> bool {
    if !args.is_empty() {
        return false;
    }
    runner.run("fmt", cargo().args(["fmt", "--all", "--", "--check"]));
    runner.run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    );
    runner.run("test", cargo().args(["test", "--workspace"]));
    crate::no_std::run(runner, &[]);
    true
}
