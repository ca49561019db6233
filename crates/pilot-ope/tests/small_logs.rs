//! pilot-ope on small synthetic logs written by a real `Router`: the join, refusals (deterministic
//! log, mixed context maps, sampling targets, wrong dimension), bootstrap intervals, clipping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pilot_bandit::{LinTs, LinTsVec, LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy, ValueOf};
use pilot_ope::{
    Estimator, IntervalMethod, OpeConfig, OpeError, PolicyTarget, Verdict, evaluate, join, read_log,
};
use pilot_router::{Arm, Exploration, Input, Price, Quote, Record, Router, RouterConfig, Versions};
use rand_pcg::Pcg64;

const K: usize = 3;

fn linucb() -> LinUcbVec<f32> {
    let p = LinUcb::params()
        .alpha(0.1)
        .lambda(1.0)
        .reward_range(0.0, 1.0)
        .check()
        .unwrap();
    LinUcbVec::new(p, K, 2).unwrap()
}

fn reward(a: usize, x: f32) -> f32 {
    match a {
        0 => 0.3,
        1 => (0.5 + 0.4 * x).clamp(0.0, 1.0),
        _ => (0.5 - 0.4 * x).clamp(0.0, 1.0),
    }
}

/// `n` decisions of a LinUCB router drawing with `exploration`; every 10th call is released,
/// every 7th never gets feedback. A `Versions` event with `prior` starts the log.
fn run(n: u64, exploration: Exploration, prior: &str, seed: u64) -> Vec<Record> {
    let cost = PacingPolicy::new(
        OnlineConfig::new(K, 1e6).with_value(ValueOf::Score),
        PacingParams::new(1e-3).with_target(1.0),
    )
    .unwrap();
    let arms = (0..K)
        .map(|a| Arm::new(format!("llm-{a}"), Price::default()))
        .collect();
    let config = RouterConfig {
        exploration,
        ..RouterConfig::new(1e6)
    };
    let mut router = Router::new(linucb(), cost, arms, config).unwrap();
    router
        .set_versions(
            Versions {
                prior: prior.into(),
                ..Versions::default()
            },
            0,
        )
        .unwrap();
    let mut rng = Pcg64::new(seed.into(), 0x0a02_bdbf_7bb3_c0a7_ac28_fa16_a64a_bf96);
    for i in 0..n {
        let x = ((i * 37 % 101) as f32 / 50.0) - 1.0;
        let est = [0.001, 0.002, 0.003];
        let d = router
            .route(
                i,
                Input::Context(&[x, 1.0]),
                Quote::PerArm {
                    estimate: &est,
                    worst: &est,
                },
                i,
                &mut rng,
            )
            .unwrap();
        let Some(a) = d.arm else { continue };
        if i % 10 == 3 {
            router.release(i, i).unwrap();
            continue;
        }
        router.settle(i, est[a.index()] * 0.9, i).unwrap();
        if i % 7 != 5 {
            router.feedback(i, reward(a.index(), x), i).unwrap();
        }
    }
    router.drain_events()
}

fn to_bytes(records: &[Record]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| pilot_router::log::to_line(r).unwrap().into_bytes())
        .collect()
}

fn target(x: Exploration) -> PolicyTarget<LinUcbVec<f32>> {
    PolicyTarget::frozen(linucb(), x).unwrap()
}

#[test]
fn the_join_reads_what_the_router_writes() {
    let records = run(200, Exploration::EpsilonMix { epsilon: 0.3 }, "p", 1);
    let direct = join(&records).unwrap();
    let read = read_log(&to_bytes(&records)).unwrap();
    assert_eq!(direct, read);
    assert_eq!(read.counts.decisions, 200);
    assert_eq!(read.counts.released, 20);
    assert!(read.counts.no_reward > 20, "{:?}", read.counts);
    assert_eq!(
        read.decisions.len() + read.counts.released + read.counts.no_reward,
        200
    );
    assert_eq!(read.first_pool, K);
    assert!(read.decisions.iter().all(|d| d.cost.is_some()));
    let d = &read.decisions[0];
    assert!((d.arms[d.chosen].probability - d.propensity).abs() < 1e-12);
    // A torn last line is reported, not guessed at.
    let mut bytes = to_bytes(&records);
    bytes.truncate(bytes.len() - 3);
    let err = read_log(&bytes).unwrap_err();
    assert!(
        matches!(&err, OpeError::Log(m) if m.contains("truncated")),
        "{err}"
    );
}

#[test]
fn a_deterministic_log_is_refused_for_another_target() {
    let log = join(&run(150, Exploration::Argmax, "p", 2)).unwrap();
    let mut uniform = target(Exploration::EpsilonMix { epsilon: 1.0 });
    let report = evaluate(
        &log,
        &mut uniform,
        None,
        &OpeConfig::default(),
        &mut Pcg64::new(1, 1),
    )
    .unwrap();
    assert!(report.deterministic_log);
    assert_eq!(report.rows.len(), Estimator::ALL.len());
    for row in &report.rows {
        match &row.verdict {
            Verdict::Refused(why) => assert!(why.contains("deterministic"), "{why}"),
            v => panic!("{:?} gave {v:?} on a deterministic log", row.estimator),
        }
    }
}

#[test]
fn uniform_target_on_an_exploring_log_is_close_to_its_truth() {
    let log = join(&run(3000, Exploration::EpsilonMix { epsilon: 0.5 }, "p", 3)).unwrap();
    let truth: f64 = log
        .decisions
        .iter()
        .map(|d| {
            (0..K)
                .map(|a| f64::from(reward(a, d.context[0])))
                .sum::<f64>()
                / K as f64
        })
        .sum::<f64>()
        / log.decisions.len() as f64;
    for interval in [
        IntervalMethod::Variance,
        IntervalMethod::Bootstrap { resamples: 50 },
    ] {
        let config = OpeConfig {
            interval,
            clip: Some(50.0),
            ..OpeConfig::default()
        };
        let mut t = target(Exploration::EpsilonMix { epsilon: 1.0 });
        let report = evaluate(&log, &mut t, None, &config, &mut Pcg64::new(5, 5)).unwrap();
        assert_eq!(report.unsupported, 0.0);
        for row in &report.rows {
            let Verdict::Estimate {
                value,
                low,
                high,
                ess,
                spend,
                ..
            } = row.verdict
            else {
                panic!("{:?} refused: {:?}", row.estimator, row.verdict);
            };
            assert!(low <= value && value <= high, "{:?}", row);
            assert!(
                (value - truth).abs() < 0.05,
                "{:?}: {value} vs truth {truth}",
                row.estimator
            );
            assert!(ess > 10.0, "{:?}: ESS {ess}", row.estimator);
            // Spend: uniform over three LLMs of estimated cost 1, 2, 3 (× 1e-3; real 0.9 ×).
            assert!(
                (0.0015..0.0021).contains(&spend),
                "{:?}: spend {spend}",
                row.estimator
            );
        }
    }
}

#[test]
fn contexts_from_different_priors_are_refused() {
    let mut records = run(60, Exploration::EpsilonMix { epsilon: 0.3 }, "a", 4);
    let more = run(60, Exploration::EpsilonMix { epsilon: 0.3 }, "b", 5);
    let offset = records.len() as u64;
    // Request ids of the second run are shifted so the join keeps them apart.
    for mut r in more {
        r.seq += offset;
        match &mut r.event {
            pilot_router::Event::Decision(d) => d.request += 1000,
            pilot_router::Event::Settle { request, .. }
            | pilot_router::Event::Feedback { request, .. }
            | pilot_router::Event::Release { request } => *request += 1000,
            _ => {}
        }
        records.push(r);
    }
    let log = join(&records).unwrap();
    let mut t = target(Exploration::Argmax);
    let report = evaluate(
        &log,
        &mut t,
        None,
        &OpeConfig::default(),
        &mut Pcg64::new(1, 1),
    )
    .unwrap();
    for row in &report.rows {
        assert!(
            matches!(&row.verdict, Verdict::Refused(why) if why.contains("different maps")),
            "{row:?}"
        );
    }
}

#[test]
fn sampling_and_mismatched_targets_are_errors() {
    let log = join(&run(50, Exploration::EpsilonMix { epsilon: 0.3 }, "p", 6)).unwrap();
    let ts = LinTsVec::new(
        LinTs::params()
            .scale(0.5)
            .lambda(1.0)
            .reward_range(0.0, 1.0)
            .check()
            .unwrap(),
        K,
        2,
    )
    .unwrap();
    let mut t = PolicyTarget::frozen(ts, Exploration::Argmax).unwrap();
    let err = evaluate(
        &log,
        &mut t,
        None,
        &OpeConfig::default(),
        &mut Pcg64::new(1, 1),
    )
    .unwrap_err();
    assert!(
        matches!(&err, OpeError::Target(m) if m.contains("random draws")),
        "{err}"
    );
    let wide = LinUcbVec::new(
        LinUcb::params().alpha(0.1).lambda(1.0).check().unwrap(),
        K,
        5,
    )
    .unwrap();
    let mut t = PolicyTarget::frozen(wide, Exploration::Argmax).unwrap();
    let err = evaluate(
        &log,
        &mut t,
        None,
        &OpeConfig::default(),
        &mut Pcg64::new(1, 1),
    )
    .unwrap_err();
    assert!(
        matches!(&err, OpeError::Target(m) if m.contains("dimension 2")),
        "{err}"
    );
    let small = LinUcbVec::new(
        LinUcb::params().alpha(0.1).lambda(1.0).check().unwrap(),
        2,
        2,
    )
    .unwrap();
    let mut t = PolicyTarget::frozen(small, Exploration::Argmax).unwrap();
    let err = evaluate(
        &log,
        &mut t,
        None,
        &OpeConfig::default(),
        &mut Pcg64::new(1, 1),
    )
    .unwrap_err();
    assert!(
        matches!(&err, OpeError::Target(m) if m.contains("3 LLMs")),
        "{err}"
    );
    let bad = OpeConfig {
        level: 1.5,
        ..OpeConfig::default()
    };
    let mut t = target(Exploration::Argmax);
    assert!(matches!(
        evaluate(&log, &mut t, None, &bad, &mut Pcg64::new(1, 1)),
        Err(OpeError::Config(_))
    ));
}

#[test]
fn replay_of_a_learning_target_says_so() {
    let log = join(&run(2000, Exploration::EpsilonMix { epsilon: 1.0 }, "p", 7)).unwrap();
    let mut frozen = target(Exploration::Argmax);
    // α = 1: with α = 0.1 the first LLM it tries (reward 0.3 > 0) stays ahead of the untried.
    let curious = LinUcbVec::new(
        LinUcb::params()
            .alpha(1.0)
            .lambda(1.0)
            .reward_range(0.0, 1.0)
            .check()
            .unwrap(),
        K,
        2,
    )
    .unwrap();
    let mut learner = PolicyTarget::learning(curious, Exploration::Argmax).unwrap();
    let config = OpeConfig {
        estimators: vec![Estimator::Replay, Estimator::Dr],
        ..OpeConfig::default()
    };
    let report = evaluate(
        &log,
        &mut frozen,
        Some(&mut learner),
        &config,
        &mut Pcg64::new(9, 9),
    )
    .unwrap();
    assert_eq!(report.rows[0].case, pilot_ope::Case::Learning);
    assert_eq!(report.rows[1].case, pilot_ope::Case::Frozen);
    // A uniform log: Li et al.'s replay accepts about one decision in K.
    let Verdict::Estimate { ess, value, .. } = report.rows[0].verdict else {
        panic!("{:?}", report.rows[0]);
    };
    let n = log.decisions.len() as f64;
    assert!(
        (ess - n / K as f64).abs() < 0.2 * n,
        "accepted {ess} of {n}"
    );
    // A learner on this problem beats the uniform mean (about 0.4).
    assert!(value > 0.45, "replayed learner {value}");
    assert!(
        report
            .notes
            .iter()
            .any(|m| m.starts_with("replay: accepted"))
    );
}

#[test]
fn partial_overlap_refuses_the_weighted_estimators_only() {
    let mut records = run(400, Exploration::EpsilonMix { epsilon: 0.3 }, "p", 8);
    // Every fifth decision drawn deterministically: only its chosen LLM had a chance.
    let mut count = 0;
    for r in &mut records {
        if let pilot_router::Event::Decision(d) = &mut r.event {
            count += 1;
            if count % 5 == 0
                && let Some(c) = d.chosen
            {
                for (a, arm) in d.arms.iter_mut().enumerate() {
                    arm.probability = if a == c as usize { 1.0 } else { 0.0 };
                }
                d.propensity = 1.0;
            }
        }
    }
    let log = join(&records).unwrap();
    let mut t = target(Exploration::EpsilonMix { epsilon: 1.0 });
    let report = evaluate(
        &log,
        &mut t,
        None,
        &OpeConfig::default(),
        &mut Pcg64::new(1, 1),
    )
    .unwrap();
    assert!(!report.deterministic_log);
    assert!(report.unsupported > 0.05, "{}", report.unsupported);
    for row in &report.rows {
        let refused = matches!(&row.verdict, Verdict::Refused(why) if why.contains("no overlap"));
        let expect = matches!(
            row.estimator,
            Estimator::Ips | Estimator::Snips | Estimator::Dr | Estimator::Replay
        );
        assert_eq!(refused, expect, "{row:?}");
    }
}

#[test]
fn a_log_that_starts_after_a_snapshot_is_read() {
    let records = run(100, Exploration::EpsilonMix { epsilon: 0.3 }, "p", 9);
    let tail = &records[40..];
    let log = read_log(&to_bytes(tail)).unwrap();
    assert_eq!(log, join(tail).unwrap());
    assert!(!log.decisions.is_empty());
}
