//! The router end to end: late, out-of-order, duplicate and unknown feedback; expiry; live arm
//! and budget changes; propensities; and crash recovery (snapshot + event tail = the same bits
//! as a router that never stopped) at random cut points, with damaged tails refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy};
use pilot_core::{ArmId, ErrorKind, RngCore};
use pilot_router::{
    Arm, ArmStart, Event, Exploration, Input, Price, Quote, Record, Router, RouterConfig, Status,
    log,
};
use proptest::prelude::*;
use rand_pcg::Pcg64;

const K: usize = 3;
const D: usize = 4;

type TestRouter = Router<LinUcbVec<f32>, PacingPolicy<f64>>;

fn router(budget: f64, exploration: Exploration, ttl: u64) -> TestRouter {
    let params = LinUcb::params()
        .alpha(0.5)
        .lambda(2.0)
        .reward_range(0.0, 1.0)
        .check()
        .unwrap();
    let priors: Vec<Vec<f32>> = (0..K)
        .map(|a| (0..D).map(|j| ((a + j) % 3) as f32 * 0.2).collect())
        .collect();
    let refs: Vec<Option<&[f32]>> = priors.iter().map(|p| Some(p.as_slice())).collect();
    let policy = LinUcbVec::with_priors(params, &refs, D).unwrap();
    let cost = PacingPolicy::new(
        OnlineConfig::new(K, budget),
        PacingParams::new(1.0).with_target(0.01),
    )
    .unwrap();
    let arms = (0..K)
        .map(|a| {
            let mut arm = Arm::new(
                format!("llm-{a}"),
                Price {
                    input_per_mtok: 1.0 + a as f64,
                    output_per_mtok: 2.0 + 3.0 * a as f64,
                    max_output_tokens: 1000,
                },
            );
            arm.start = Some(priors[a].clone());
            arm
        })
        .collect();
    let config = RouterConfig {
        exploration,
        ttl,
        ..RouterConfig::new(budget)
    };
    Router::new(policy, cost, arms, config).unwrap()
}

fn context(rng: &mut Pcg64) -> Vec<f32> {
    (0..D)
        .map(|_| (rng.next_u32() % 1000) as f32 / 1000.0 - 0.3)
        .collect()
}

fn quote<'a>(tokens: u64) -> Quote<'a> {
    Quote::Tokens {
        input: tokens,
        expected_output: tokens / 2,
        max_output: tokens,
    }
}

#[test]
fn feedback_late_out_of_order_duplicate_and_unknown() {
    let mut r = router(10.0, Exploration::Argmax, u64::MAX);
    let mut rng = Pcg64::new(1, 2);
    let ids = [10u64, 11, 12];
    for (t, &id) in ids.iter().enumerate() {
        let c = context(&mut rng);
        let d = r
            .route(id, Input::Context(&c), quote(100), t as u64, &mut rng)
            .unwrap();
        assert!(d.arm.is_some());
        assert_eq!(d.propensity, 1.0);
    }
    // Out of order: the last first, feedback before settlement.
    r.feedback(12, 1.0, 5).unwrap();
    r.settle(12, 0.0001, 6).unwrap();
    r.settle(10, 0.0001, 7).unwrap();
    r.feedback(10, 0.0, 8).unwrap();
    let before = r.save().unwrap();
    let e = r.feedback(10, 1.0, 9).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Duplicate);
    assert_eq!(
        r.feedback(99, 1.0, 9).unwrap_err().kind(),
        ErrorKind::UnknownRequest
    );
    assert_eq!(
        r.settle(10, 0.1, 9).unwrap_err().kind(),
        ErrorKind::Duplicate
    );
    assert_eq!(
        r.feedback(11, 1.5, 9).unwrap_err().kind(),
        ErrorKind::OutOfRange
    );
    assert_eq!(
        r.feedback(11, f32::NAN, 9).unwrap_err().kind(),
        ErrorKind::NonFinite
    );
    assert_eq!(r.save().unwrap(), before, "refused calls change nothing");
    // A request id still pending cannot be routed twice.
    let c = context(&mut rng);
    assert_eq!(
        r.route(11, Input::Context(&c), quote(100), 9, &mut rng)
            .unwrap_err()
            .kind(),
        ErrorKind::Duplicate
    );
}

#[test]
fn unsettled_decisions_expire_charged_at_their_hold() {
    let mut r = router(10.0, Exploration::Argmax, 100);
    let mut rng = Pcg64::new(3, 4);
    let c = context(&mut rng);
    let d = r
        .route(1, Input::Context(&c), quote(1000), 0, &mut rng)
        .unwrap();
    let hold = r.ledger().reserved;
    assert!(hold > 0);
    assert!((d.hold - r.guard().to_currency(hold)).abs() < 1e-12);
    r.expire_due(99).unwrap();
    assert_eq!(r.pending(), 1);
    r.expire_due(100).unwrap();
    assert_eq!(r.pending(), 0);
    assert_eq!(r.ledger().reserved, 0);
    assert_eq!(r.ledger().spent, hold, "an expired hold is charged in full");
    assert_eq!(
        r.feedback(1, 1.0, 101).unwrap_err().kind(),
        ErrorKind::UnknownRequest
    );
    let events = r.drain_events();
    assert!(matches!(
        events.last().unwrap().event,
        Event::Expire { charged: true, .. }
    ));
}

#[test]
fn arms_are_added_disabled_repriced_and_the_budget_changes_live() {
    let mut r = router(1.0, Exploration::Argmax, u64::MAX);
    let mut rng = Pcg64::new(5, 6);
    let c = context(&mut rng);
    r.route(1, Input::Context(&c), quote(100), 0, &mut rng)
        .unwrap();
    r.feedback(1, 1.0, 1).unwrap();
    let learned = r.policy().ridge().theta(ArmId::new(0)).unwrap().to_vec();
    // Add an LLM started at the mean of the others.
    let new = r
        .add_arm("llm-new", Price::default(), ArmStart::MeanOfOthers, 2)
        .unwrap();
    assert_eq!(new.index(), K);
    assert_eq!(r.arms().len(), K + 1);
    assert_eq!(
        r.policy().ridge().theta(ArmId::new(0)).unwrap(),
        learned.as_slice()
    );
    assert_eq!(
        r.add_arm("llm-new", Price::default(), ArmStart::Neutral, 2)
            .unwrap_err()
            .kind(),
        ErrorKind::Duplicate
    );
    // A free LLM with a mean start wins on cost at this budget... unless it is disabled.
    r.set_enabled(new, false, 3).unwrap();
    for id in 2..20u64 {
        let c = context(&mut rng);
        let d = r
            .route(id, Input::Context(&c), quote(100), id, &mut rng)
            .unwrap();
        assert_eq!(d.arms[K].status, Status::Disabled);
        assert_ne!(d.arm, Some(new));
    }
    r.set_enabled(new, true, 30).unwrap();
    r.set_price(
        ArmId::new(0),
        Price {
            input_per_mtok: 1e6,
            output_per_mtok: 1e6,
            max_output_tokens: 1000,
        },
        31,
    )
    .unwrap();
    let c = context(&mut rng);
    let d = r
        .route(40, Input::Context(&c), quote(100), 40, &mut rng)
        .unwrap();
    assert_eq!(
        d.arms[0].status,
        Status::OverBudget,
        "re-priced above the budget"
    );
    // Budget: cuts below spent + reserved are refused with a reason; raises work.
    let l = r.ledger();
    let floor = r.guard().to_currency(l.spent + l.reserved);
    let e = r.set_budget(floor * 0.5, 41).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OverBudget);
    assert_eq!(r.ledger(), l);
    r.set_budget(5.0, 42).unwrap();
    assert_eq!(r.ledger().budget, 5_000_000_000);
    r.new_period(2.0, 43).unwrap();
    assert_eq!(r.ledger().spent, 0);
}

#[test]
fn nothing_fits_means_no_arm_and_no_hold() {
    let mut r = router(0.000_001, Exploration::Argmax, u64::MAX);
    let mut rng = Pcg64::new(7, 8);
    let c = context(&mut rng);
    let d = r
        .route(1, Input::Context(&c), quote(100_000), 0, &mut rng)
        .unwrap();
    assert_eq!(d.arm, None);
    assert!(d.arms.iter().all(|a| a.status == Status::OverBudget));
    assert_eq!(r.ledger().reserved, 0);
    assert_eq!(r.pending(), 0);
}

proptest! {
    #[test]
    fn propensities_sum_to_one_over_the_candidates(
        seed in 0u64..1000,
        mode in 0usize..3,
        param in 0.01f64..1.0,
        budget in 0.0001f64..0.05,
    ) {
        let exploration = match mode {
            0 => Exploration::Argmax,
            1 => Exploration::EpsilonMix { epsilon: param },
            _ => Exploration::Softmax { temperature: param },
        };
        let mut r = router(budget, exploration, u64::MAX);
        let mut rng = Pcg64::new(u128::from(seed), 9);
        for id in 0..20u64 {
            let c = context(&mut rng);
            let d = r.route(id, Input::Context(&c), quote(500), id, &mut rng).unwrap();
            let Some(a) = d.arm else { continue };
            let total: f64 = d
                .arms
                .iter()
                .filter(|c| matches!(c.status, Status::Chosen | Status::Candidate))
                .map(|c| c.probability)
                .sum();
            prop_assert!((total - 1.0).abs() < 1e-9, "sum {}", total);
            prop_assert!(d.arms.iter().filter(|c| matches!(c.status, Status::OverBudget | Status::Disabled)).all(|c| c.probability == 0.0));
            prop_assert_eq!(d.propensity, d.arms[a.index()].probability);
            prop_assert!(d.propensity > 0.0);
            if mode == 0 {
                prop_assert_eq!(d.propensity, 1.0);
            }
            r.settle(id, 0.0, id).unwrap();
        }
    }
}

/// A random workload: routes, settlements (some above and below the hold), releases,
/// feedback (late, out of order, some never), expiries, arm and budget changes.
fn workload(r: &mut TestRouter, seed: u64, steps: u64) {
    let mut rng = Pcg64::new(u128::from(seed), 77);
    let mut open: Vec<u64> = Vec::new();
    let mut unrewarded: Vec<u64> = Vec::new();
    for t in 0..steps {
        match rng.next_u32() % 10 {
            0..=3 => {
                let c = context(&mut rng);
                let tokens = 50 + u64::from(rng.next_u32() % 500);
                if let Ok(d) = r.route(t, Input::Context(&c), quote(tokens), t, &mut rng)
                    && d.arm.is_some()
                {
                    open.push(t);
                    unrewarded.push(t);
                }
            }
            4 | 5 if !open.is_empty() => {
                let i = rng.next_u32() as usize % open.len();
                let id = open.swap_remove(i);
                let cost = f64::from(rng.next_u32() % 1000) * 1e-6;
                let _ = r.settle(id, cost, t);
            }
            6 if !open.is_empty() => {
                let id = open.swap_remove(0);
                let _ = r.release(id, t);
                unrewarded.retain(|&x| x != id);
            }
            7 | 8 if !unrewarded.is_empty() => {
                let i = rng.next_u32() as usize % unrewarded.len();
                let id = unrewarded.swap_remove(i);
                let reward = (rng.next_u32() % 2) as f32;
                let _ = r.feedback(id, reward, t);
            }
            _ => match rng.next_u32() % 6 {
                0 if r.arms().len() < 6 => {
                    let name = format!("added-{t}");
                    r.add_arm(&name, Price::default(), ArmStart::MeanOfOthers, t)
                        .unwrap();
                }
                1 => {
                    let a = rng.next_u32() as usize % r.arms().len();
                    let on = rng.next_u32().is_multiple_of(2);
                    r.set_enabled(ArmId::new(a), on, t).unwrap();
                }
                2 => {
                    let a = rng.next_u32() as usize % r.arms().len();
                    let p = Price {
                        input_per_mtok: f64::from(rng.next_u32() % 10),
                        output_per_mtok: f64::from(rng.next_u32() % 10),
                        max_output_tokens: 500,
                    };
                    r.set_price(ArmId::new(a), p, t).unwrap();
                }
                3 => {
                    let f = f64::from(rng.next_u32() % 200) / 100.0;
                    let b = r.guard().to_currency(r.ledger().budget) * f;
                    let _ = r.set_budget(b, t);
                }
                _ => r.expire_due(t).unwrap(),
            },
        }
    }
}

fn fresh() -> TestRouter {
    router(0.2, Exploration::EpsilonMix { epsilon: 0.2 }, 40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn recovery_from_snapshot_and_tail_is_bit_identical(seed in 0u64..10_000, cut in 0usize..1000) {
        // The live router, snapshotted at some point and then running on.
        let mut live = fresh();
        workload(&mut live, seed, 150);
        let mut log: Vec<Record> = live.drain_events();
        let cut = cut % (log.len() + 1);
        // Rebuild the router as it was at `cut` by folding the first `cut` events.
        let mut at_cut = fresh();
        for r in &log[..cut] {
            at_cut.apply(r).unwrap();
        }
        let snapshot = at_cut.save().unwrap();
        // Crash: a new process restores the snapshot and folds the tail.
        let mut recovered = fresh();
        recovered.restore(&snapshot).unwrap();
        for r in &log[cut..] {
            recovered.apply(r).unwrap();
        }
        prop_assert_eq!(recovered.save().unwrap(), live.save().unwrap());
        // Through JSON lines too, and both keep running identically.
        let text: String = log.iter().map(|r| log::to_line(r).unwrap()).collect();
        let (read, damage) = log::read(text.as_bytes(), 0);
        prop_assert!(damage.is_none());
        prop_assert_eq!(&read, &log);
        let mut rng_a = Pcg64::new(1, 1);
        let mut rng_b = Pcg64::new(1, 1);
        let c = vec![0.5f32; D];
        let a = live.route(1_000_000, Input::Context(&c), quote(10), 10_000, &mut rng_a);
        let b = recovered.route(1_000_000, Input::Context(&c), quote(10), 10_000, &mut rng_b);
        prop_assert_eq!(a.map(|d| d.arm), b.map(|d| d.arm));
        log.clear();
    }
}

#[test]
fn a_damaged_tail_is_refused_at_the_first_bad_event_keeping_everything_before() {
    let mut live = fresh();
    workload(&mut live, 42, 120);
    let log = live.drain_events();
    let text: String = log.iter().map(|r| log::to_line(r).unwrap()).collect();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bad_line = lines.len() / 2;
    let offset: usize = lines[..bad_line].iter().map(|l| l.len()).sum();
    // Corrupt: a byte flipped inside one line.
    let mut corrupt = text.clone().into_bytes();
    corrupt[offset + 3] = b'#';
    let (kept, damage) = log::read(&corrupt, 0);
    let damage = damage.expect("damage reported");
    assert_eq!(kept.len(), bad_line);
    assert_eq!(damage.offset, offset);
    assert_eq!(damage.line, bad_line + 1);
    // Truncated: a torn last write.
    let torn = &text.as_bytes()[..text.len() - 5];
    let (kept, damage) = log::read(torn, 0);
    assert_eq!(kept.len(), log.len() - 1);
    assert!(damage.unwrap().reason.contains("truncated"));
    // A record out of sequence (a lost line) is refused as well.
    let skipped: String = lines
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 3)
        .map(|(_, l)| *l)
        .collect();
    let (kept, damage) = log::read(skipped.as_bytes(), 0);
    assert_eq!(kept.len(), 3);
    assert!(damage.unwrap().reason.contains("sequence"));
    // Folding the kept prefix works; the router refuses an event out of sequence.
    let mut r = fresh();
    for rec in &kept {
        r.apply(rec).unwrap();
    }
    assert_eq!(r.apply(&log[5]).unwrap_err().kind(), ErrorKind::Corrupt);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Replicas: each decides on its own (possibly stale) folded state with `propose`, and
    /// settles and rewards through the `*_event` planners; the events go to one shared log in
    /// whatever order they arrive; every replica that folds the same prefix holds the same bits,
    /// and `propose` + `apply` right away is `route`.
    #[test]
    fn replicas_folding_one_log_of_proposed_events_hold_the_same_bits(seed in 0u64..10_000) {
        let mut rng = Pcg64::new(u128::from(seed), 5);
        let mut replicas = [fresh(), fresh(), fresh()];
        let mut shared: Vec<Record> = Vec::new();
        let mut waiting: Vec<(u64, Event)> = Vec::new();
        let mut open: Vec<u64> = Vec::new();
        for t in 0..200u64 {
            let who = rng.next_u32() as usize % 3;
            // Fold only part of the log sometimes: decisions are made on stale states.
            if !rng.next_u32().is_multiple_of(3) {
                let r = &mut replicas[who];
                let from = usize::try_from(r.seq()).unwrap();
                for rec in &shared[from..] {
                    r.apply(rec).unwrap();
                }
            }
            let r = &mut replicas[who];
            match rng.next_u32() % 4 {
                0 | 1 => {
                    let c = context(&mut rng);
                    let before = r.save().unwrap();
                    let tokens = 50 + u64::from(rng.next_u32() % 300);
                    let (d, ev) = r.propose(t, Input::Context(&c), quote(tokens), &[], &mut rng).unwrap();
                    prop_assert_eq!(&r.save().unwrap(), &before);
                    if d.arm.is_some() {
                        open.push(t);
                    }
                    waiting.push((t, ev));
                }
                2 if !open.is_empty() => {
                    let id = open.swap_remove(rng.next_u32() as usize % open.len());
                    if let Ok(ev) = r.settle_event(id, f64::from(rng.next_u32() % 500) * 1e-6) {
                        waiting.push((t, ev));
                    }
                }
                _ => {
                    if let Some(&id) = open.first()
                        && let Ok(ev) = r.feedback_event(id, 0.5, t)
                    {
                        waiting.push((t, ev));
                    }
                }
            }
            // Commit a waiting event (maybe not the newest) when it still fits the log: a
            // settle or feedback needs its decision committed first and only once.
            if !waiting.is_empty() {
                let i = rng.next_u32() as usize % waiting.len();
                let (at, event) = waiting.remove(i);
                let mut probe = fresh();
                for rec in &shared {
                    probe.apply(rec).unwrap();
                }
                let rec = Record { v: pilot_router::EVENT_VERSION, seq: shared.len() as u64, at, event };
                if probe.apply(&rec).is_ok() {
                    shared.push(rec);
                }
            }
        }
        let mut states = Vec::new();
        for r in &mut replicas {
            let from = usize::try_from(r.seq()).unwrap();
            for rec in &shared[from..] {
                r.apply(rec).unwrap();
            }
            states.push(r.save().unwrap());
        }
        let mut replay = fresh();
        for rec in &shared {
            replay.apply(rec).unwrap();
        }
        let replay = replay.save().unwrap();
        for s in &states {
            prop_assert_eq!(s, &replay);
        }
        // propose + apply right away = route.
        let mut a = fresh();
        let mut b = fresh();
        for rec in &shared {
            a.apply(rec).unwrap();
            b.apply(rec).unwrap();
        }
        // (`route` runs the expiry; `propose` leaves it to the caller.)
        a.expire_due(500).unwrap();
        b.expire_due(500).unwrap();
        let c = vec![0.25f32; D];
        let (mut ra, mut rb) = (Pcg64::new(9, 9), Pcg64::new(9, 9));
        let routed = a.route(u64::MAX, Input::Context(&c), quote(60), 500, &mut ra).unwrap();
        let (proposed, ev) = b.propose(u64::MAX, Input::Context(&c), quote(60), &[], &mut rb).unwrap();
        prop_assert_eq!(&routed, &proposed);
        b.apply(&Record { v: pilot_router::EVENT_VERSION, seq: b.seq(), at: 500, event: ev }).unwrap();
        prop_assert_eq!(a.save().unwrap(), b.save().unwrap());
    }
}
