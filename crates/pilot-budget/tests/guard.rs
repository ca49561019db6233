//! The budget guard's guarantee under interleaved outstanding calls: if every real cost is at
//! most its hold, spending never exceeds the budget; overruns are charged, flagged and shrink
//! later holds; budget changes below what is spent and held are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_budget::{
    Guard, OnlineConfig, PacingParams, PacingPolicy, ThresholdParams, ThresholdPolicy,
};
use pilot_core::{ArmScore, CostPolicy, ErrorKind, Snapshot};
use proptest::prelude::*;

const K: usize = 4;

/// One thing that can happen to the guard.
#[derive(Clone, Debug)]
enum Op {
    /// A new call: scores, estimated costs, worst-case costs (currency).
    Route(Vec<f64>, Vec<f64>, Vec<f64>),
    /// Settle the i-th open call (mod open) at this fraction of its hold (≤ 1 here).
    Settle(usize, f64),
    /// Release the i-th open call.
    Release(usize),
    /// Expire the i-th open call.
    Expire(usize),
    /// Change the budget by this factor of the current one.
    Budget(f64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            prop::collection::vec(0.0f64..1.0, K),
            prop::collection::vec(0.0f64..0.5, K),
            prop::collection::vec(0.0f64..1.0, K),
        )
            .prop_map(|(s, e, w)| Op::Route(s, e, w)),
        3 => (0usize..64, 0.0f64..=1.0).prop_map(|(i, f)| Op::Settle(i, f)),
        1 => (0usize..64).prop_map(Op::Release),
        1 => (0usize..64).prop_map(Op::Expire),
        1 => (0.0f64..2.0).prop_map(Op::Budget),
    ]
}

fn policy(kind: usize, budget: f64) -> Box<dyn CostPolicy<f64>> {
    let config = OnlineConfig::new(K, budget);
    if kind == 0 {
        Box::new(ThresholdPolicy::new(config, ThresholdParams::new(10.0, 0.1).unwrap()).unwrap())
    } else {
        Box::new(PacingPolicy::new(config, PacingParams::new(1.0).with_target(0.1)).unwrap())
    }
}

fn scores(s: &[f64]) -> Vec<ArmScore<f64>> {
    s.iter()
        .map(|&v| ArmScore {
            estimate: v,
            width: 0.0,
            score: v,
        })
        .collect()
}

proptest! {
    #[test]
    fn spend_never_exceeds_budget_when_real_costs_stay_within_holds(
        budget in 0.0f64..5.0,
        kind in 0usize..2,
        keep in 0.0f64..1.0,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut g = Guard::new(policy(kind, budget), budget, 1e9).unwrap();
        g.set_keep_aside(g.units(keep, "keep").unwrap());
        let mut open: Vec<(pilot_core::ArmId, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Route(s, mut e, w) => {
                    let worst: Vec<u64> = w.iter().map(|&x| g.units(x, "w").unwrap()).collect();
                    let excluded = [false, false, true, false];
                    let c = g.choose(&scores(&s), &mut e, &worst, &excluded).unwrap();
                    if let Some(a) = c.arm {
                        prop_assert!(!excluded[a.index()], "a disabled arm was chosen");
                        prop_assert_eq!(c.hold, worst[a.index()]);
                        g.hold(c.hold).unwrap();
                        open.push((a, c.hold));
                    }
                }
                Op::Settle(i, f) if !open.is_empty() => {
                    let (a, h) = open.remove(i % open.len());
                    let real = g.to_currency(h) * f;
                    let overrun = g.settle(a, h, real).unwrap();
                    prop_assert!(!overrun);
                }
                Op::Release(i) if !open.is_empty() => {
                    let (_, h) = open.remove(i % open.len());
                    g.release(h).unwrap();
                }
                Op::Expire(i) if !open.is_empty() => {
                    let (a, h) = open.remove(i % open.len());
                    g.expire(a, h).unwrap();
                }
                Op::Budget(f) => {
                    let l = g.ledger();
                    let target = g.to_currency(l.budget) * f;
                    match g.set_budget(target) {
                        Ok(()) => prop_assert!(g.ledger().budget >= l.spent + l.reserved),
                        Err(e) => {
                            prop_assert_eq!(e.kind(), ErrorKind::OverBudget);
                            prop_assert_eq!(g.ledger(), l);
                        }
                    }
                }
                _ => {}
            }
            let l = g.ledger();
            prop_assert!(l.spent + l.reserved <= l.budget, "ledger {:?}", l);
            prop_assert_eq!(l.reserved, open.iter().map(|&(_, h)| h).sum::<u64>());
        }
        // Settle everything at its full hold: still within budget.
        for (a, h) in open {
            g.settle(a, h, g.to_currency(h)).unwrap();
        }
        prop_assert!(g.ledger().held());
    }
}

#[test]
fn an_overrun_is_charged_flagged_and_shrinks_later_holds() {
    let mut g = Guard::new(policy(0, 1.0), 1.0, 1e9).unwrap();
    let s = scores(&[0.9, 0.8, 0.7, 0.6]);
    let worst = [g.units(0.4, "w").unwrap(); K];
    let c = g.choose(&s, &mut [0.1; K], &worst, &[false; K]).unwrap();
    let a = c.arm.unwrap();
    g.hold(c.hold).unwrap();
    assert!(
        g.settle(a, c.hold, 0.9).unwrap(),
        "0.9 > hold 0.4 is an overrun"
    );
    assert_eq!(g.overruns().0, 1);
    assert_eq!(g.ledger().spent, 900_000_000);
    // 0.1 left: a 0.4 worst case no longer fits anywhere.
    let c = g.choose(&s, &mut [0.1; K], &worst, &[false; K]).unwrap();
    assert_eq!(c.arm, None);
}

#[test]
fn budget_cuts_below_spent_and_reserved_are_refused_and_new_periods_reset_spent() {
    let mut g = Guard::new(policy(1, 1.0), 1.0, 1e9).unwrap();
    let s = scores(&[0.9, 0.8, 0.7, 0.6]);
    let worst = [g.units(0.3, "w").unwrap(); K];
    let c = g.choose(&s, &mut [0.1; K], &worst, &[false; K]).unwrap();
    g.hold(c.hold).unwrap();
    g.settle(c.arm.unwrap(), c.hold, 0.2).unwrap();
    let c2 = g.choose(&s, &mut [0.1; K], &worst, &[false; K]).unwrap();
    g.hold(c2.hold).unwrap();
    // spent 0.2 + reserved 0.3 = 0.5.
    let e = g.set_budget(0.4).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OverBudget);
    assert_eq!(g.ledger().budget, 1_000_000_000);
    g.set_budget(0.5).unwrap();
    assert_eq!(g.ledger().available(), 0);
    g.new_period(0.6).unwrap();
    assert_eq!(g.ledger().spent, 0);
    assert_eq!(g.ledger().reserved, 300_000_000);
    assert_eq!(g.inner().state().spent, 0.0);
}

#[test]
fn cost_policy_snapshots_restore_exactly_and_refuse_another_pool() {
    let config = OnlineConfig::new(K, 2.0);
    let mut p = PacingPolicy::new(config, PacingParams::new(1.0).with_target(0.1)).unwrap();
    let s = scores(&[0.9, 0.8, 0.7, 0.6]);
    p.choose(&s, &[0.1; K]).unwrap();
    p.charge(
        pilot_core::ArmId::new(0),
        pilot_core::Cost::new(0.3).unwrap(),
    )
    .unwrap();
    let bytes = p.save_vec().unwrap();
    let mut q = PacingPolicy::new(config, PacingParams::new(1.0).with_target(0.1)).unwrap();
    q.restore(&bytes).unwrap();
    assert_eq!(p, q);
    let mut other = PacingPolicy::new(
        OnlineConfig::new(K + 1, 2.0),
        PacingParams::new(1.0).with_target(0.1),
    )
    .unwrap();
    assert_eq!(
        other.restore(&bytes).unwrap_err().kind(),
        ErrorKind::DimensionMismatch
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        q.restore(&bad).unwrap_err().kind(),
        ErrorKind::ChecksumMismatch
    );
    let mut t = ThresholdPolicy::new(config, ThresholdParams::new(10.0, 0.1).unwrap()).unwrap();
    t.choose(&s, &[0.1; K]).unwrap();
    let tb = t.save_vec().unwrap();
    let mut t2 = ThresholdPolicy::new(config, ThresholdParams::new(10.0, 0.1).unwrap()).unwrap();
    t2.restore(&tb).unwrap();
    assert_eq!(t, t2);
}

#[test]
fn pacing_retargets_when_the_budget_changes_and_the_snapshot_keeps_it() {
    let config = OnlineConfig::new(K, 2.0);
    let params = PacingParams::new(1.0).with_target(0.1).with_step(0.5);
    let s = scores(&[0.9, 0.8, 0.7, 0.6]);
    let charge = |p: &mut PacingPolicy<f64>, c: f64| {
        p.choose(&s, &[0.01; K]).unwrap();
        p.charge(pilot_core::ArmId::new(0), pilot_core::Cost::new(c).unwrap())
            .unwrap();
    };
    let mut p = PacingPolicy::new(config, params).unwrap();
    charge(&mut p, 1.0);
    // Left 1.0 → 0.5: the target per query halves (0.1 → 0.05), so spending 0.05 is on
    // target and leaves the price where it was.
    p.set_budget(1.5).unwrap();
    let price = p.price();
    charge(&mut p, 0.05);
    assert!(
        (p.price() - price).abs() <= 1e-12 * price,
        "{} vs {price}",
        p.price()
    );
    // Without the re-target the same spend would have been under target: the price falls.
    let mut old = PacingPolicy::new(config, params).unwrap();
    charge(&mut old, 1.0);
    let before = old.price();
    charge(&mut old, 0.05);
    assert!(old.price() < before);
    // The snapshot carries the target.
    let bytes = p.save_vec().unwrap();
    let mut q = PacingPolicy::new(config, params).unwrap();
    q.restore(&bytes).unwrap();
    assert_eq!(p, q);
}
