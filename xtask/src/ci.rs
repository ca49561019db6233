//! `cargo xtask ci`: every check CI makes, all failures reported together.
//!
//! Formatting, clippy with warnings denied, the whole workspace's tests (unit, integration,
//! doc), then `no-std`: each no_std crate built alone for thumbv7em and wasm32 and the
//! no-allocator firmware run in QEMU. A failing step does not stop the later ones.

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
