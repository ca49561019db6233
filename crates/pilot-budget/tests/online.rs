//! Online policies: never over budget on arbitrary streams (proptest), the threshold rule, the
//! fallback, spreading, pacing, caps, reserve, and errors that leave the state unchanged.
#![cfg(feature = "testkit")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_budget::testkit::{Query, check_online};
use pilot_budget::{
    OnlineConfig, PacingParams, PacingPolicy, Spread, ThresholdParams, ThresholdPolicy, ValueOf,
    ratio_bounds,
};
use pilot_core::{ArmId, ArmScore, Cost, CostPolicy, Decision, ErrorKind};
use proptest::prelude::*;

const K: usize = 4;

fn query() -> impl Strategy<Value = Query<f64>> {
    (
        prop::collection::vec((-1.0f64..2.0, 0.0f64..0.5, -1.0f64..2.0), K),
        prop::collection::vec(
            prop_oneof![Just(0.0), 0.0f64..3.0, Just(f64::NAN), Just(-1.0)],
            K,
        ),
    )
        .prop_map(|(s, c)| {
            let scores = s
                .into_iter()
                .map(|(estimate, width, score)| ArmScore {
                    estimate,
                    width,
                    score,
                })
                .collect();
            (scores, c)
        })
}

fn spread() -> impl Strategy<Value = Spread<f64>> {
    prop_oneof![
        Just(Spread::Whole),
        (1u64..50, 1usize..8).prop_map(|(h, b)| Spread::uniform(h, b).unwrap()),
        (0.01f64..2.0, 0.0f64..3.0).prop_map(|(r, b)| Spread::rate(r, b).unwrap()),
    ]
}

fn config() -> impl Strategy<Value = OnlineConfig<f64>> {
    (
        0.0f64..20.0,
        0.0f64..1.0,
        prop::option::of(0.0f64..3.0),
        spread(),
        0usize..3,
    )
        .prop_map(|(budget, reserve, cap, spread, value)| {
            let mut c = OnlineConfig::new(K, budget)
                .with_reserve(reserve * budget * 0.5)
                .with_spread(spread)
                .with_value([ValueOf::Estimate, ValueOf::Score, ValueOf::Optimistic(1.0)][value]);
            c.max_cost = cap;
            c
        })
}

// Case count from PROPTEST_CASES (256 by default; `cargo xtask ci` asks for more).
proptest! {

    #[test]
    fn threshold_never_exceeds_budget(config in config(), stream in prop::collection::vec(query(), 0..60)) {
        let mut p = ThresholdPolicy::new(config, ThresholdParams::new(20.0, 0.1).unwrap()).unwrap();
        let r = check_online(&mut p, &stream);
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn pacing_never_exceeds_budget(config in config(), stream in prop::collection::vec(query(), 0..60)) {
        let params = PacingParams::new(1.0).with_target(0.5);
        let mut p = PacingPolicy::new(config, params).unwrap();
        let r = check_online(&mut p, &stream);
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}

fn certain(values: &[f64]) -> Vec<ArmScore<f64>> {
    values.iter().map(|&v| ArmScore::certain(v)).collect()
}

#[test]
fn threshold_takes_the_best_qualifying_arm_then_tightens() {
    let params = ThresholdParams::new(10.0, 1.0).unwrap();
    let mut p = ThresholdPolicy::new(OnlineConfig::new(3, 10.0), params).unwrap();
    // ψ(0) = L/e ≈ 0.37: all ratios (2, 1, 0.5) qualify, the most valuable (arm 2) wins.
    let scores = certain(&[0.2, 0.5, 1.0]);
    let costs = [0.1, 0.5, 2.0];
    assert_eq!(
        p.choose(&scores, &costs).unwrap(),
        Decision::Route(ArmId(2))
    );
    p.charge(ArmId(2), Cost::new(8.0).unwrap()).unwrap();
    // z = 0.8: ψ = (10e)^0.8 / e ≈ 5.2; nothing qualifies, the cheapest that fits serves.
    assert!(p.threshold() > 5.0);
    assert_eq!(
        p.choose(&scores, &costs).unwrap(),
        Decision::Route(ArmId(0))
    );
    p.charge(ArmId(0), Cost::new(1.95).unwrap()).unwrap();
    // 0.05 left: nothing fits.
    assert_eq!(
        p.choose(&scores, &costs).unwrap(),
        Decision::BudgetExhausted
    );
}

#[test]
fn reserve_is_only_for_the_cheapest_fallback() {
    let params = ThresholdParams::new(10.0, 0.01).unwrap();
    let config = OnlineConfig::new(2, 1.0).with_reserve(0.5);
    let mut p = ThresholdPolicy::new(config, params).unwrap();
    let scores = certain(&[0.1, 0.9]);
    // Arm 1 costs 0.6 > 1.0 − 0.5 reserve: the cheap arm serves instead.
    assert_eq!(
        p.choose(&scores, &[0.2, 0.6]).unwrap(),
        Decision::Route(ArmId(0))
    );
    p.set_reserve(0.0).unwrap();
    assert_eq!(
        p.choose(&scores, &[0.2, 0.6]).unwrap(),
        Decision::Route(ArmId(1))
    );
    assert_eq!(
        p.set_reserve(2.0).unwrap_err().kind(),
        ErrorKind::OutOfRange
    );
}

#[test]
fn cost_cap_excludes_expensive_arms() {
    let params = ThresholdParams::new(10.0, 0.01).unwrap();
    let config = OnlineConfig::new(2, 100.0).with_max_cost(1.0);
    let mut p = ThresholdPolicy::new(config, params).unwrap();
    assert_eq!(
        p.choose(&certain(&[0.1, 0.9]), &[0.5, 1.5]).unwrap(),
        Decision::Route(ArmId(0))
    );
    assert_eq!(
        p.choose(&certain(&[0.1, 0.9]), &[1.5, 1.5]).unwrap(),
        Decision::BudgetExhausted
    );
}

#[test]
fn spreading_releases_budget_per_bin_with_carry_over() {
    let s = Spread::<f64>::uniform(100, 4).unwrap();
    assert_eq!(s.allowance(8.0, 0), 2.0);
    assert_eq!(s.allowance(8.0, 24), 2.0);
    assert_eq!(s.allowance(8.0, 25), 4.0);
    assert_eq!(s.allowance(8.0, 99), 8.0);
    assert_eq!(s.allowance(8.0, 1000), 8.0);
    let r = Spread::<f64>::rate(0.5, 1.0).unwrap();
    assert_eq!(r.allowance(8.0, 0), 1.5);
    assert_eq!(r.allowance(8.0, 100), 8.0);
    assert!(Spread::<f64>::shares(10, &[1.0, -1.0]).is_err());
    assert!(Spread::<f64>::uniform(0, 2).is_err());

    // With 4 bins over 4 queries, an expensive arm is affordable only once its bin's share
    // (plus what earlier bins left) covers it; the cheap arm serves meanwhile.
    let params = ThresholdParams::new(10.0, 0.001).unwrap();
    let config = OnlineConfig::new(2, 4.0).with_spread(Spread::uniform(4, 4).unwrap());
    let mut p = ThresholdPolicy::new(config, params).unwrap();
    let scores = certain(&[0.1, 0.9]);
    let costs = [0.1, 1.5];
    let mut picks = Vec::new();
    for _ in 0..4 {
        let d = p.choose(&scores, &costs).unwrap();
        if let Decision::Route(a) = d {
            p.charge(a, Cost::new(costs[a.index()]).unwrap()).unwrap();
            picks.push(a.index());
        }
    }
    assert_eq!(picks, vec![0, 1, 0, 1]);
}

#[test]
fn pacing_raises_the_price_when_overspending() {
    let config = OnlineConfig::new(2, 100.0);
    let mut p = PacingPolicy::new(config, PacingParams::new(0.1).with_target(0.2)).unwrap();
    let scores = certain(&[0.5, 1.0]);
    let costs = [0.1, 1.0];
    // Price 0.1: net values 0.49 and 0.9, the expensive arm wins.
    assert_eq!(
        p.choose(&scores, &costs).unwrap(),
        Decision::Route(ArmId(1))
    );
    let start = p.price();
    for _ in 0..20 {
        p.charge(ArmId(1), Cost::new(1.0).unwrap()).unwrap();
    }
    assert!(p.price() > 2.0 * start);
    // Price now above 0.5 per unit cost: the cheap arm wins.
    assert_eq!(
        p.choose(&scores, &costs).unwrap(),
        Decision::Route(ArmId(0))
    );
    // Underspending lowers it again.
    let high = p.price();
    p.charge(ArmId(0), Cost::new(0.0).unwrap()).unwrap();
    assert!(p.price() < high);
    assert!(PacingPolicy::new(config, PacingParams::new(1.0)).is_err());
}

#[test]
fn value_source_is_configurable() {
    let scores = [
        ArmScore {
            estimate: 0.5,
            width: 0.4,
            score: 0.1,
        },
        ArmScore {
            estimate: 0.6,
            width: 0.0,
            score: 0.2,
        },
    ];
    let params = ThresholdParams::new(1.0, 0.001).unwrap();
    let costs = [1.0, 1.0];
    for (value, arm) in [
        (ValueOf::Estimate, 1),
        (ValueOf::Score, 1),
        (ValueOf::Optimistic(1.0), 0),
    ] {
        let config = OnlineConfig::new(2, 10.0).with_value(value);
        let mut p = ThresholdPolicy::new(config, params).unwrap();
        assert_eq!(
            p.choose(&scores, &costs).unwrap(),
            Decision::Route(ArmId(arm)),
            "{value:?}"
        );
    }
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let params = ThresholdParams::new(10.0, 1.0).unwrap();
    let mut p = ThresholdPolicy::new(OnlineConfig::new(2, 10.0), params).unwrap();
    let before = p;
    let s = certain(&[0.1, 0.2]);
    assert_eq!(
        p.choose(&s, &[1.0]).unwrap_err().kind(),
        ErrorKind::DimensionMismatch
    );
    assert_eq!(
        p.choose(&s, &[1.0, -1.0]).unwrap_err().kind(),
        ErrorKind::NegativeCost
    );
    assert_eq!(
        p.choose(&s, &[1.0, f64::NAN]).unwrap_err().kind(),
        ErrorKind::NonFinite
    );
    assert_eq!(
        p.choose(&certain(&[f64::NAN, 0.1]), &[1.0, 1.0])
            .unwrap_err()
            .kind(),
        ErrorKind::NonFinite
    );
    assert_eq!(p.choose(&[], &[]).unwrap_err().kind(), ErrorKind::Empty);
    assert_eq!(
        p.charge(ArmId(5), Cost::ZERO).unwrap_err().kind(),
        ErrorKind::UnknownArm
    );
    assert_eq!(p, before);
    assert_eq!(
        ThresholdPolicy::new(OnlineConfig::new(2, -1.0), params)
            .unwrap_err()
            .kind(),
        ErrorKind::NegativeBudget
    );
    assert!(ThresholdParams::new(1.0, 0.0).is_err());
    assert!(ThresholdParams::new(0.5, 1.0).is_err());
    assert_eq!(
        ThresholdPolicy::new(OnlineConfig::new(0, 1.0), params)
            .unwrap_err()
            .kind(),
        ErrorKind::Empty
    );
}

#[test]
fn real_cost_above_estimate_is_recorded_and_stops_spending() {
    let params = ThresholdParams::new(10.0, 0.01).unwrap();
    let mut p = ThresholdPolicy::new(OnlineConfig::new(1, 1.0), params).unwrap();
    assert_eq!(
        p.choose(&certain(&[1.0]), &[0.9]).unwrap(),
        Decision::Route(ArmId(0))
    );
    p.charge(ArmId(0), Cost::new(1.2).unwrap()).unwrap();
    assert_eq!(p.state().spent, 1.2);
    assert_eq!(p.state().remaining(), 0.0);
    assert_eq!(
        p.choose(&certain(&[1.0]), &[0.0]).unwrap(),
        Decision::BudgetExhausted
    );
}

#[test]
fn ratio_bounds_come_from_data() {
    let b = ratio_bounds(&[1.0, 0.5, 0.0, 2.0], &[0.5, 1.0, 1.0, 0.0]).unwrap();
    assert_eq!((b.upper, b.lower), (2.0, 0.5));
    assert_eq!(
        ratio_bounds::<f64>(&[0.0], &[1.0]).unwrap_err().kind(),
        ErrorKind::Empty
    );
}
