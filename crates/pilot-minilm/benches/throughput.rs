//! Queries per second of the MiniLM embedder on RouterBench queries, batch 1 and batch 32,
//! and the memory the loaded model holds (resident-set growth across loading).
#![allow(missing_docs)] // criterion_group! generates an undocumented public fn.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pilot_minilm::MiniLm;

/// Queries per measured iteration; both batch sizes embed the same queries.
const QUERIES: usize = 64;

/// Resident set size of this process in KiB (Linux), if known.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (Linux).
/// On a machine shared with other jobs, wall-clock throughput understates the embedder; CPU
/// time per query does not.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every mainstream architecture.
    Some((utime + stime) / 100.0)
}

/// A spread of RouterBench queries (every 50th row, so all three tasks appear).
fn routerbench_queries() -> Option<Vec<String>> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/routerbench-3k.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping the MiniLM bench: {} is missing", path.display());
        return None;
    };
    let queries: Vec<String> = text
        .lines()
        .step_by(50)
        .take(QUERIES)
        .filter_map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(row["query"].as_str()?.to_owned())
        })
        .collect();
    Some(queries)
}

fn bench(c: &mut Criterion) {
    let Some(queries) = routerbench_queries() else {
        return;
    };
    let before = rss_kib();
    let mut model = match MiniLm::load_default() {
        Ok(model) => model,
        Err(e) => {
            eprintln!("skipping the MiniLM bench: {e}");
            return;
        }
    };
    if let (Some(before), Some(after)) = (before, rss_kib()) {
        eprintln!(
            "MiniLM loaded: resident memory grew by {:.1} MiB",
            after.saturating_sub(before) as f64 / 1024.0
        );
    }
    let tokens: usize = queries
        .iter()
        .filter_map(|q| model.token_count(q).ok())
        .sum();
    eprintln!(
        "{} RouterBench queries, {:.1} tokens each on average",
        queries.len(),
        tokens as f64 / queries.len() as f64
    );

    let mut out = vec![0.0f32; queries.len() * MiniLm::DIM];
    for batch in [1usize, 32] {
        model.set_batch_size(batch);
        let (wall, cpu) = (std::time::Instant::now(), cpu_seconds());
        if model.embed_batch(&queries, &mut out).is_err() {
            eprintln!("skipping the MiniLM bench: embedding failed");
            return;
        }
        let wall = wall.elapsed().as_secs_f64();
        if let (Some(before), Some(after)) = (cpu, cpu_seconds()) {
            let per_query = (after - before) / queries.len() as f64;
            eprintln!(
                "batch {batch}: {:.1} queries/s wall clock, {:.1} CPU-ms per query \
                 ({:.1} queries per CPU-second)",
                queries.len() as f64 / wall,
                per_query * 1e3,
                1.0 / per_query
            );
        }
    }

    let mut group = c.benchmark_group("minilm");
    group.sample_size(10);
    group.throughput(Throughput::Elements(queries.len() as u64));
    for batch in [1usize, 32] {
        model.set_batch_size(batch);
        let model = &model;
        group.bench_function(format!("batch{batch}"), |b| {
            b.iter(|| model.embed_batch(black_box(&queries), &mut out))
        });
    }
    group.finish();
    if let Some(after) = rss_kib() {
        eprintln!(
            "resident memory after the runs: {:.1} MiB",
            after as f64 / 1024.0
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
