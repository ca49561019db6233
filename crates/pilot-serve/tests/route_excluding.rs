//! `Router::route_excluding`: arms left out of one decision are never chosen, are recorded as
//! disabled in its event, and a replay of the events rebuilds the same state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy};
use pilot_router::{Arm, Input, Price, Quote, Router, RouterConfig, Status};
use rand_pcg::Pcg64;

type R = Router<LinUcbVec<f32>, PacingPolicy<f64>>;

fn router() -> R {
    let params = LinUcb::<(), f32>::params().check().unwrap();
    let policy = LinUcbVec::new(params, 3, 2).unwrap();
    let cost = PacingPolicy::new(
        OnlineConfig::new(3, 10.0),
        PacingParams::new(1.0).with_target(0.01),
    )
    .unwrap();
    let price = Price {
        input_per_mtok: 1.0,
        output_per_mtok: 1.0,
        max_output_tokens: 100,
    };
    let arms = (0..3).map(|i| Arm::new(format!("a{i}"), price)).collect();
    Router::new(policy, cost, arms, RouterConfig::new(10.0)).unwrap()
}

#[test]
fn excluded_arms_are_never_chosen_and_replay_the_same() {
    let mut r = router();
    let mut rng = Pcg64::new(1, 2);
    let quote = Quote::Tokens {
        input: 10,
        expected_output: 10,
        max_output: 100,
    };
    for id in 0..40u64 {
        let keep = (id % 3) as usize;
        let exclude: Vec<bool> = (0..3).map(|a| a != keep).collect();
        let d = r
            .route_excluding(
                id,
                Input::Context(&[1.0, 0.5]),
                quote,
                &exclude,
                id,
                &mut rng,
            )
            .unwrap();
        assert_eq!(d.arm.unwrap().index(), keep);
        for (a, c) in d.arms.iter().enumerate() {
            assert_eq!(c.status == Status::Disabled, a != keep);
        }
        r.settle(id, 1e-5, id).unwrap();
        r.feedback(id, if keep == 1 { 1.0 } else { 0.0 }, id)
            .unwrap();
    }
    // A short mask leaves the rest in.
    let d = r
        .route_excluding(
            99,
            Input::Context(&[1.0, 0.5]),
            quote,
            &[true],
            50,
            &mut rng,
        )
        .unwrap();
    assert_ne!(d.arm.unwrap().index(), 0);
    let events = r.drain_events();
    let mut again = router();
    for e in &events {
        again.apply(e).unwrap();
    }
    assert_eq!(again.arms(), r.arms());
    assert_eq!(again.ledger(), r.ledger());
    assert_eq!(again.save().unwrap(), r.save().unwrap());
}
