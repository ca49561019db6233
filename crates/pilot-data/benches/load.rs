//! How long loading the real RouterBench subset takes (target: well under a second).
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn.

use criterion::{Criterion, criterion_group, criterion_main};
use pilot_data::{Embeddings, MINILM_DIM, RoutingDataset, shared_file};

fn load(c: &mut Criterion) {
    let (data, emb) = match (
        shared_file("routerbench-3k.jsonl"),
        shared_file("routerbench-3k.minilm.f32"),
    ) {
        (Ok(d), Ok(e)) => (d, e),
        (Err(why), _) | (_, Err(why)) => {
            eprintln!("skipping the load bench: {why}");
            return;
        }
    };
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("routerbench-3k.jsonl", |b| {
        b.iter(|| RoutingDataset::load(&data).map(|d| d.rows.len()))
    });
    group.bench_function("routerbench-3k.minilm.f32", |b| {
        b.iter(|| Embeddings::load(&emb, MINILM_DIM).map(|e| e.rows()))
    });
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
