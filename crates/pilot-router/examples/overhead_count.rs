//! Runs N route + settle + feedback steps (or N bare select + update steps) for an instruction
//! count under `valgrind --tool=callgrind`: `overhead_count bare|router|router-events N`.
//! Instruction counts repeat exactly on a busy machine, where the criterion bench's times do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("router", String::as_str);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut rng = Pcg64::new(1, 1);
    let xs: Vec<Vec<f32>> = (0..256)
        .map(|_| {
            (0..D)
                .map(|_| (rng.next_u32() % 1000) as f32 / 1000.0)
                .collect()
        })
        .collect();
    let mut rng = Pcg64::new(2, 2);
    if mode == "bare" {
        let mut p = policy();
        let mut scores = [ArmScore::<f32>::default(); K];
        for i in 0..n {
            let x = &xs[i as usize % xs.len()];
            let a = p.select(x, &mut rng, &mut scores).unwrap();
            p.update(
                a,
                x,
                Reward::new(f32::from(u8::from(i.is_multiple_of(3)))).unwrap(),
            )
            .unwrap();
        }
        println!("bare: {n} steps");
        return;
    }
    let record = mode == "router-events";
    let cost = PacingPolicy::new(
        OnlineConfig::new(K, 1e6),
        PacingParams::new(1.0).with_target(0.001),
    )
    .unwrap();
    let arms = (0..K)
        .map(|a| Arm::new(format!("llm-{a}"), Price::default()))
        .collect();
    let config = RouterConfig {
        record,
        ttl: 1000,
        ..RouterConfig::new(1e6)
    };
    let mut r = Router::new(policy(), cost, arms, config).unwrap();
    let estimate = [0.001f64; K];
    let worst = [0.002f64; K];
    let mut events = 0usize;
    for i in 0..n {
        let x = &xs[i as usize % xs.len()];
        let quote = Quote::PerArm {
            estimate: &estimate,
            worst: &worst,
        };
        r.route(i, Input::Context(x), quote, i, &mut rng).unwrap();
        r.settle(i, 0.001, i).unwrap();
        r.feedback(i, f32::from(u8::from(i.is_multiple_of(3))), i)
            .unwrap();
        events += r.drain_events().len();
    }
    println!("{mode}: {n} steps, {events} events");
}
