//! Router overhead per `route` + `settle` + `feedback` beside the bare policy's `select` +
//! `update` (K = 11 LLMs, d = 16, contexts given as vectors: no embedder), with the event log on
//! and off. Target: ≤ 2 µs above the policy.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy};
use pilot_core::{ArmScore, Policy, Reward, RngCore};
use pilot_router::{Arm, Input, Price, Quote, Router, RouterConfig};
use rand_pcg::Pcg64;

const K: usize = 11;
const D: usize = 16;

fn policy() -> LinUcbVec<f32> {
    let params = LinUcb::params()
        .alpha(0.5)
        .lambda(4.0)
        .reward_range(0.0, 1.0)
        .check()
        .unwrap();
    let priors: Vec<Vec<f32>> = (0..K)
        .map(|a| (0..D).map(|j| ((a * 7 + j) % 5) as f32 * 0.1).collect())
        .collect();
    let refs: Vec<Option<&[f32]>> = priors.iter().map(|p| Some(p.as_slice())).collect();
    LinUcbVec::with_priors(params, &refs, D).unwrap()
}

fn contexts() -> Vec<Vec<f32>> {
    let mut rng = Pcg64::new(1, 1);
    (0..256)
        .map(|_| {
            (0..D)
                .map(|_| (rng.next_u32() % 1000) as f32 / 1000.0)
                .collect()
        })
        .collect()
}

fn router(record: bool) -> Router<LinUcbVec<f32>, PacingPolicy<f64>> {
    // A budget that never runs out within the bench, so every call routes.
    let budget = 1e6;
    let cost = PacingPolicy::new(
        OnlineConfig::new(K, budget),
        PacingParams::new(1.0).with_target(0.001),
    )
    .unwrap();
    let arms = (0..K)
        .map(|a| Arm::new(format!("llm-{a}"), Price::default()))
        .collect();
    // Answered requests expire after 1,000 ticks: the pending table stays at a steady size.
    let config = RouterConfig {
        record,
        ttl: 1000,
        ..RouterConfig::new(budget)
    };
    Router::new(policy(), cost, arms, config).unwrap()
}

fn bench(c: &mut Criterion) {
    let xs = contexts();
    let estimate = [0.001f64; K];
    let worst = [0.002f64; K];
    let mut group = c.benchmark_group("route+feedback K=11 d=16");
    group.bench_function("bare policy select+update", |b| {
        let mut p = policy();
        let mut rng = Pcg64::new(2, 2);
        let mut scores = [ArmScore::<f32>::default(); K];
        let mut i = 0usize;
        b.iter(|| {
            let x = &xs[i % xs.len()];
            let a = p.select(x, &mut rng, &mut scores).unwrap();
            p.update(
                a,
                x,
                Reward::new(f32::from(u8::from(i.is_multiple_of(3)))).unwrap(),
            )
            .unwrap();
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
                let x = &xs[i as usize % xs.len()];
                let quote = Quote::PerArm {
                    estimate: &estimate,
                    worst: &worst,
                };
                r.route(i, Input::Context(x), quote, i, &mut rng).unwrap();
                r.settle(i, 0.001, i).unwrap();
                r.feedback(i, f32::from(u8::from(i.is_multiple_of(3))), i)
                    .unwrap();
                if record {
                    // What a server does with the log after each call (it writes it out).
                    let _ = r.drain_events();
                }
                i += 1;
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
