//! Online decision speed: one `choose` for K = 11 arms (target ≤ 100 ns, issue 4).
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use pilot_budget::{
    OnlineConfig, PacingParams, PacingPolicy, Spread, ThresholdParams, ThresholdPolicy,
};
use pilot_core::{ArmScore, CostPolicy};

const K: usize = 11;

fn arms() -> ([ArmScore<f32>; K], [f32; K]) {
    // Shaped like RouterBench: qualities 0.4–0.9, costs 0.1e-3–5e-3 USD.
    let mut scores = [ArmScore::certain(0.0f32); K];
    let mut costs = [0.0f32; K];
    for a in 0..K {
        scores[a] = ArmScore {
            estimate: 0.4 + 0.045 * a as f32,
            width: 0.01 * (K - a) as f32,
            score: 0.4 + 0.05 * a as f32,
        };
        costs[a] = 1.0e-4 * (1.0 + (a * a) as f32 * 0.4);
    }
    (scores, costs)
}

fn online(c: &mut Criterion) {
    let (scores, costs) = arms();
    // A budget so large it never runs out during the measurement: the decision path stays the same.
    let config = OnlineConfig::new(K, 1.0e9f32);
    let params = ThresholdParams::new(9000.0, 50.0).expect("params");
    let mut threshold = ThresholdPolicy::new(config, params).expect("policy");
    c.bench_function("threshold/choose/K=11", |b| {
        b.iter(|| black_box(threshold.choose(black_box(&scores), black_box(&costs))))
    });
    let spread = Spread::rate(1.0e-3f32, 0.0).expect("spread");
    let mut spread_threshold =
        ThresholdPolicy::new(config.with_spread(spread), params).expect("policy");
    c.bench_function("threshold+rate-spread/choose/K=11", |b| {
        b.iter(|| black_box(spread_threshold.choose(black_box(&scores), black_box(&costs))))
    });
    let mut pacing =
        PacingPolicy::new(config, PacingParams::new(200.0).with_target(1.0e-3)).expect("policy");
    c.bench_function("pacing/choose/K=11", |b| {
        b.iter(|| black_box(pacing.choose(black_box(&scores), black_box(&costs))))
    });
}

criterion_group!(benches, online);
criterion_main!(benches);
