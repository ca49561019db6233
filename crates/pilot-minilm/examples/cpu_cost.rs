//! CPU milliseconds per RouterBench query on one thread: the figure the blocking constants of
//! `gemm.rs` were tuned on. Thread CPU time (not wall clock) is what a busy, shared machine
//! disturbs least, and one thread keeps the other core's noise out of it.
//!
//! `cargo run --release -p pilot-minilm --example cpu_cost [REPEATS]` (default 10). Needs the
//! model (`cargo xtask fetch-model`) and `../shared/data/routerbench-3k.jsonl`.

use std::path::PathBuf;

/// Nanoseconds this thread has run on a CPU (Linux `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").map_err(|e| e.to_string())?;
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "unreadable /proc/thread-self/schedstat".to_string())
}

fn main() -> Result<(), String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/routerbench-3k.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The bench's queries: every 50th row, so all three tasks appear.
    let queries: Vec<String> = text
        .lines()
        .step_by(50)
        .take(64)
        .filter_map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(row["query"].as_str()?.to_owned())
        })
        .collect();
    let repeats: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("REPEATS: not a count: {arg}"))?,
        None => 10,
    };
    let model = pilot_minilm::MiniLm::load_default()
        .map_err(|e| e.to_string())?
        .with_threads(1)
        .with_batch_size(32);
    let mut out = vec![0.0f32; queries.len() * pilot_minilm::MiniLm::DIM];
    let mut costs = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = thread_cpu_ns()?;
        model
            .embed_batch(&queries, &mut out)
            .map_err(|e| e.to_string())?;
        let spent = thread_cpu_ns()?.saturating_sub(start);
        costs.push(spent as f64 / 1e6 / queries.len() as f64);
    }
    costs.sort_by(f64::total_cmp);
    println!(
        "{} queries × {} runs, one thread, batch 32: CPU-ms per query best {:.2}, median {:.2}",
        queries.len(),
        costs.len(),
        costs[0],
        costs[costs.len() / 2]
    );
    Ok(())
}
