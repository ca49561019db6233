//! Offline solver speed on the suite: m = 100 classes × n = 10 items.
//!
//! Targets (issue 4): LP and greedy ≤ 50 µs; exact ≤ 20 ms at capacity ≈ 50 000 (R = 1000)
//! and ≤ 1 s on strongly correlated instances with R = 10 000 (capacity ≈ 2.5 M).
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use pilot_budget::InstanceKind;
use pilot_budget::owned::{Exact, Greedy, Lp, OwnedInstance};
use pilot_core::MckpSolver;
use rand_pcg::Pcg64Mcg;

const M: usize = 100;
const N: usize = 10;

/// Several seeds per kind, so one lucky instance does not decide the figure.
fn suite(kind: InstanceKind, range: u64) -> Vec<OwnedInstance> {
    let mut rng = Pcg64Mcg::new(0x5eed ^ range as u128);
    (0..5)
        .map(|_| OwnedInstance::generate(kind, M, N, range, &mut rng).expect("generate"))
        .collect()
}

fn bench_solver<S: MckpSolver>(
    c: &mut Criterion,
    group: &str,
    make: impl Fn() -> S,
    cases: &[(String, Vec<OwnedInstance>)],
) {
    let mut g = c.benchmark_group(group);
    for (name, instances) in cases {
        let mut solver = make();
        let mut choice = vec![0; M];
        g.bench_with_input(
            BenchmarkId::from_parameter(name),
            instances,
            |b, instances| {
                b.iter(|| {
                    for inst in instances {
                        let view = inst.view().expect("view");
                        black_box(solver.solve(&view, &mut choice).expect("solve"));
                    }
                })
            },
        );
    }
    g.finish();
}

fn offline(c: &mut Criterion) {
    let mut cases = Vec::new();
    for kind in InstanceKind::ALL {
        cases.push((format!("{}-R1000-x5", kind.name()), suite(kind, 1000)));
    }
    cases.push((
        "strong-R10000-x5".to_string(),
        suite(InstanceKind::StronglyCorrelated, 10_000),
    ));
    for (name, instances) in &cases {
        let caps: Vec<u64> = instances.iter().map(|i| i.capacity).collect();
        eprintln!("{name}: capacities {caps:?}");
    }
    bench_solver(c, "lp", Lp::new, &cases);
    bench_solver(c, "greedy", Greedy::new, &cases);
    bench_solver(c, "exact", Exact::new, &cases);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = offline
}
criterion_main!(benches);
