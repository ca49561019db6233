//! Router overhead per `route` + `settle` + `feedback` beside the bare policy's `select` +
//! `update` (K = 11 LLMs, d = 16, contexts given as vectors: no embedder), with the event log on
//! and off. Target: ≤ 2 µs above the policy.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{K, bare_step, contexts, policy, router, router_step};
use criterion::{Criterion, criterion_group, criterion_main};
use pilot_core::ArmScore;
use rand_pcg::Pcg64;

fn bench(c: &mut Criterion) {
    let xs = contexts();
    let mut group = c.benchmark_group("route+feedback K=11 d=16");
    group.bench_function("bare policy select+update", |b| {
        let mut p = policy();
        let mut rng = Pcg64::new(2, 2);
        let mut scores = [ArmScore::<f32>::default(); K];
        let mut i = 0u64;
        b.iter(|| {
            bare_step(&mut p, &xs[i as usize % xs.len()], i, &mut rng, &mut scores);
            i += 1;
        });
    });
    for record in [false, true] {
        let name = if record {
            "router route+settle+feedback, events recorded"
        } else {
            "router route+settle+feedback, no events"
        };
        group.bench_function(name, |b| {
            let mut r = router(record);
            let mut rng = Pcg64::new(2, 2);
            let mut i = 0u64;
            b.iter(|| {
                router_step(&mut r, &xs[i as usize % xs.len()], i, &mut rng);
                i += 1;
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
