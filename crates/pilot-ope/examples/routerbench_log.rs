//! Writes a RouterBench-3k decision log for `pilot ope`: an ε-greedy PILOT routes the
//! deployment split through `pilot_router::Router` (real costs settled, real qualities fed back)
//! and its events go to `DIR/decisions.jsonl`; the prior it read goes to `DIR/prior.bin`.
//!
//! `cargo run --release -p pilot-ope --example routerbench_log -- DIR [SEED] [EPSILON] [BUDGET]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "ope-demo".into()));
    let seed: u64 = args.next().map_or(0, |s| s.parse().expect("SEED"));
    let epsilon: f64 = args.next().map_or(0.2, |s| s.parse().expect("EPSILON"));
    let budget: f64 = args.next().map_or(0.3, |s| s.parse().expect("BUDGET"));
    let Some(data) = common::data_dir() else {
        std::process::exit(1);
    };
    let setup = common::Setup::load(&data);
    std::fs::create_dir_all(&dir).unwrap();
    let log = setup.log_stream(seed, epsilon, budget);
    std::fs::write(dir.join("decisions.jsonl"), &log).unwrap();
    setup.prior.save(dir.join("prior.bin")).unwrap();
    println!(
        "wrote {} ({} bytes; seed {seed}, ε {epsilon}, budget {budget} × always-best) and {}",
        dir.join("decisions.jsonl").display(),
        log.len(),
        dir.join("prior.bin").display()
    );
    println!("pool in arm order: {}", setup.problem.llms().join(","));
}
