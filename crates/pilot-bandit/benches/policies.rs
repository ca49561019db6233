//! One select plus one update for K = 11 arms at d = 16, 64, 256 (targets ≤ 1, 5, 60 µs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Benchmarks may unwrap.
#![allow(missing_docs)] // `criterion_group!` generates an undocumented public fn.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pilot_bandit::{LinTs, LinTsVec, LinUcb, LinUcbFixed, LinUcbVec};
use pilot_core::{ArmScore, Policy, PolicyExt, Real};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

const ARMS: usize = 11;

fn contexts<F: Real>(d: usize) -> Vec<Vec<F>> {
    let mut rng = Pcg64::seed_from_u64(1);
    (0..64)
        .map(|_| {
            (0..d)
                .map(|_| F::from_f64(rng.next_u32() as f64 / u32::MAX as f64 - 0.5))
                .collect()
        })
        .collect()
}

fn priors<F: Real>(d: usize) -> Vec<Vec<F>> {
    (0..ARMS)
        .map(|a| {
            (0..d)
                .map(|i| F::from_f64(((a * d + i) as f64).sin() * 0.1))
                .collect()
        })
        .collect()
}

/// Updates between resets of the learned state. Criterion runs millions of iterations on one
/// policy; without a discount, `f32` A⁻¹ loses definiteness after ~10⁶ updates of one arm (the
/// library then refuses the update, see pilot-bandit's README), which is not what we time. A
/// reset every 2¹⁶ steps costs one copy of the state, under 0.1 % of the steps in between.
const RESET_EVERY: usize = 1 << 16;

/// Runs select + update on `policy` over the context pool.
fn run<F: Real, P: Policy<F> + Clone>(c: &mut Criterion, name: &str, d: usize, policy: &mut P) {
    let xs = contexts::<F>(d);
    let mut rng = Pcg64::seed_from_u64(2);
    let mut scores = vec![ArmScore::default(); ARMS];
    let mut t = 0usize;
    let fresh = policy.clone();
    c.bench_with_input(BenchmarkId::new(name, d), &d, |b, _| {
        b.iter(|| {
            if t.is_multiple_of(RESET_EVERY) {
                policy.clone_from(&fresh);
            }
            let x = &xs[t % xs.len()];
            t += 1;
            let arm = policy.select(black_box(x), &mut rng, &mut scores).unwrap();
            let reward = F::from_f64((t % 3) as f64 * 0.5);
            policy.observe(arm, x, reward).unwrap();
            black_box(arm)
        })
    });
}

fn pilot_select_update(c: &mut Criterion) {
    let config = LinUcb::params().alpha(0.5).check().unwrap();
    for d in [16, 64, 256] {
        let p = priors::<f32>(d);
        let refs: Vec<Option<&[f32]>> = p.iter().map(|v| Some(v.as_slice())).collect();
        let mut policy = LinUcbVec::<f32>::with_priors(config, &refs, d).unwrap();
        run(c, "pilot_vec_f32", d, &mut policy);
    }
    let p = priors::<f32>(16);
    let refs: Vec<Option<&[f32]>> = p.iter().map(|v| Some(v.as_slice())).collect();
    let mut fixed = Box::new(LinUcbFixed::<ARMS, 16>::with_priors(config, &refs, 16).unwrap());
    run(c, "pilot_fixed_f32", 16, fixed.as_mut());

    let config64 = LinUcb::params().alpha(0.5).check().unwrap();
    for d in [16, 64] {
        let mut policy = LinUcbVec::<f64>::new(config64, ARMS, d).unwrap();
        run(c, "linucb_vec_f64", d, &mut policy);
    }
    let drifting = LinUcb::params().alpha(0.5).discount(0.99).check().unwrap();
    let mut policy = LinUcbVec::<f32>::new(drifting, ARMS, 64).unwrap();
    run(c, "linucb_discount_f32", 64, &mut policy);
    let ts = LinTs::params().scale(0.5).check().unwrap();
    let mut policy = LinTsVec::<f32>::new(ts, ARMS, 64).unwrap();
    run(c, "lints_vec_f32", 64, &mut policy);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = pilot_select_update
}
criterion_main!(benches);
