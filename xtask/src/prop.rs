//! `cargo xtask prop [--cases N]`: the property tests with `PROPTEST_CASES=N`.
//!
//! Runs the tests of every member with a `proptest` dependency (found with `cargo metadata`, no
//! hand-kept list). proptest reads `PROPTEST_CASES` when a test does not hard-code its case
//! count, so a test written with `ProptestConfig::default()` (or no config) scales with `N`.

use crate::util::{Runner, cargo, members_depending_on, workspace_root};

/// Cases per property in `cargo xtask ci` (a plain `cargo test` uses proptest's 256).
pub const CI_CASES: u32 = 1024;
/// Cases per property in `cargo xtask prop` without `--cases`.
pub const DEFAULT_CASES: u32 = 4096;

/// Runs the property tests; returns false for unknown arguments.
pub fn run(runner: &mut Runner, args: &[String]) -> bool {
    let cases = match args {
        [] => DEFAULT_CASES,
        [flag, n] if flag == "--cases" => match n.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => return false,
        },
        _ => return false,
    };
    let crates = match members_depending_on(&workspace_root(), "proptest") {
        Ok(crates) => crates,
        Err(e) => {
            runner.fail(format!("prop: {e}"));
            return true;
        }
    };
    if crates.is_empty() {
        runner.fail("prop: no workspace member depends on proptest");
        return true;
    }
    let mut cmd = cargo();
    cmd.arg("test").env("PROPTEST_CASES", cases.to_string());
    for name in &crates {
        cmd.args(["-p", name]);
    }
    runner.run(&format!("prop ({cases} cases)"), &mut cmd);
    true
}
