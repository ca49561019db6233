//! Criterion benchmarks of the embedding-space kernels: dot, cosine, projection 384→32, the
//! Sherman–Morrison rank-1 update at d = 16, 64, 384, and the hashing embedder.
#![allow(missing_docs)] // `criterion_group!` generates an undocumented public fn.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pilot_embed::{cosine, dot, hashing, project, sherman_morrison};

/// A deterministic vector with values in (-1, 1), different for each `seed`.
fn vector(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn products(c: &mut Criterion) {
    let mut group = c.benchmark_group("products");
    for d in [32usize, 384] {
        let (a, b) = (vector(d, 1), vector(d, 2));
        group.bench_with_input(BenchmarkId::new("dot", d), &d, |bench, _| {
            bench.iter(|| dot(black_box(&a), black_box(&b)))
        });
        group.bench_with_input(BenchmarkId::new("cosine", d), &d, |bench, _| {
            bench.iter(|| cosine(black_box(&a), black_box(&b)))
        });
    }
    group.finish();
}

fn projection(c: &mut Criterion) {
    let (w, x) = (vector(32 * 384, 3), vector(384, 4));
    let mut out = vec![0.0f32; 32];
    c.bench_function("project/384->32", |bench| {
        bench.iter(|| project(black_box(&w), black_box(&x), &mut out))
    });
}

fn rank_one_update(c: &mut Criterion) {
    let mut group = c.benchmark_group("sherman_morrison");
    for d in [16usize, 64, 384] {
        let x = vector(d, 5);
        let mut a_inv = vec![0.0f32; d * d];
        for i in 0..d {
            a_inv[i * d + i] = 1.0;
        }
        let mut scratch = vec![0.0f32; d];
        group.bench_with_input(BenchmarkId::from_parameter(d), &d, |bench, _| {
            // Repeating the same update keeps A = I + n·x·xᵀ positive definite: no reset needed.
            bench.iter(|| sherman_morrison(&mut a_inv, black_box(&x), 1.0, &mut scratch))
        });
        // What was timed must have been real updates, not an early error return.
        let still_valid = sherman_morrison(&mut a_inv, &x, 1.0, &mut scratch);
        assert!(still_valid.is_ok(), "d = {d}: {still_valid:?}");
    }
    group.finish();
}

fn hashing_embedder(c: &mut Criterion) {
    let text = "Which geologic process is most likely responsible for the formation of the \
                Mid-Atlantic Ridge? (A) subduction (B) rifting (C) folding (D) erosion";
    let mut out = vec![0.0f32; 256];
    c.bench_function("hashing/embed d=256 (143 chars)", |bench| {
        bench.iter(|| hashing::embed_into(black_box(text), &mut out))
    });
}

criterion_group!(
    benches,
    products,
    projection,
    rank_one_update,
    hashing_embedder
);
criterion_main!(benches);
