//! The one set-up of the router-overhead measurements, shared by the criterion bench
//! (`benches/overhead.rs`) and the instruction-count example (`examples/overhead_count.rs`):
//! K = 11 LLMs, d = 16, contexts given as vectors, a budget that never runs out.
#![allow(dead_code, clippy::unwrap_used)]

use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy};
use pilot_core::{ArmScore, Policy, Reward, RngCore};
use pilot_router::{Arm, Input, Price, Quote, Router, RouterConfig};
use rand_pcg::Pcg64;

pub const K: usize = 11;
pub const D: usize = 16;

/// PILOT started at fixed, varied priors.
pub fn policy() -> LinUcbVec<f32> {
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

/// 256 seeded contexts, cycled.
pub fn contexts() -> Vec<Vec<f32>> {
    let mut rng = Pcg64::new(1, 1);
    (0..256)
        .map(|_| {
            (0..D)
                .map(|_| (rng.next_u32() % 1000) as f32 / 1000.0)
                .collect()
        })
        .collect()
}

/// The router over [`policy`], with the event log on (`record`) or off.
pub fn router(record: bool) -> Router<LinUcbVec<f32>, PacingPolicy<f64>> {
    // A budget that never runs out within the measurement, so every call routes.
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

/// The reward of step `i` (one in three is 1).
pub fn reward(i: u64) -> f32 {
    f32::from(u8::from(i.is_multiple_of(3)))
}

/// One bare step: the policy's `select` + `update`.
pub fn bare_step(
    p: &mut LinUcbVec<f32>,
    x: &[f32],
    i: u64,
    rng: &mut Pcg64,
    scores: &mut [ArmScore<f32>; K],
) {
    let a = p.select(x, rng, scores).unwrap();
    p.update(a, x, Reward::new(reward(i)).unwrap()).unwrap();
}

/// One router step: `route` + `settle` + `feedback` of request `i` at tick `i`; returns the
/// events drained after it (what a server writes out), when the log is on.
pub fn router_step(
    r: &mut Router<LinUcbVec<f32>, PacingPolicy<f64>>,
    x: &[f32],
    i: u64,
    rng: &mut Pcg64,
) -> usize {
    let (estimate, worst) = ([0.001f64; K], [0.002f64; K]);
    let quote = Quote::PerArm {
        estimate: &estimate,
        worst: &worst,
    };
    r.route(i, Input::Context(x), quote, i, rng).unwrap();
    r.settle(i, 0.001, i).unwrap();
    r.feedback(i, reward(i), i).unwrap();
    r.drain_events().len()
}
