//! `pilot ope` on small decision logs written by a real `Router`: the table, `--json`, the
//! refusal on a deterministic log, and clean errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{fails_with, pilot, scratch, succeeded};
use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy, ValueOf};
use pilot_router::{Arm, Exploration, Input, Price, Quote, Router, RouterConfig};
use rand_pcg::Pcg64;

/// A log of `n` decisions over three LLMs with 2-d contexts, drawn with `exploration`.
fn write_log(path: &std::path::Path, n: u64, exploration: Exploration) {
    let p = LinUcb::params()
        .alpha(0.1)
        .lambda(1.0)
        .reward_range(0.0, 1.0)
        .check()
        .unwrap();
    let cost = PacingPolicy::new(
        OnlineConfig::new(3, 1e6).with_value(ValueOf::Score),
        PacingParams::new(1e-3).with_target(1.0),
    )
    .unwrap();
    let arms = (0..3)
        .map(|a| Arm::new(format!("llm-{a}"), Price::default()))
        .collect();
    let config = RouterConfig {
        exploration,
        ..RouterConfig::new(1e6)
    };
    let mut router = Router::new(LinUcbVec::new(p, 3, 2).unwrap(), cost, arms, config).unwrap();
    let mut rng = Pcg64::new(7, 7);
    let mut out = String::new();
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
        if let Some(a) = d.arm {
            let r = [0.3, 0.5 + 0.4 * x, 0.5 - 0.4 * x][a.index()].clamp(0.0, 1.0);
            router.settle(i, est[a.index()], i).unwrap();
            router.feedback(i, r, i).unwrap();
        }
    }
    for r in router.drain_events() {
        out.push_str(&pilot_router::log::to_line(&r).unwrap());
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn ope_prints_one_row_per_estimator() {
    let dir = scratch("table");
    let log = dir.join("log.jsonl");
    write_log(&log, 600, Exploration::EpsilonMix { epsilon: 0.5 });
    let out = succeeded(&pilot(&[
        "ope",
        "--log",
        log.to_str().unwrap(),
        "--policy",
        "linucb",
        "--warm",
        "200",
    ]));
    for name in ["ips ", "snips ", "dm ", "dr ", "switch-dr ", "replay "] {
        assert!(out.contains(name), "no {name} row:\n{out}");
    }
    assert!(out.contains("learning"), "{out}");
    assert!(out.contains("frozen"), "{out}");
    assert!(!out.contains("refused"), "{out}");
    let json = succeeded(&pilot(&[
        "ope",
        "--log",
        log.to_str().unwrap(),
        "--policy",
        "random",
        "--estimator",
        "ips,dr",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = v["estimates"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["estimator"], "dr");
    let dr = rows[1]["estimate"].as_f64().unwrap();
    // Uniform over three LLMs: mean of 0.3, 0.5 + 0.4x and 0.5 − 0.4x ≈ 0.43.
    assert!((dr - 0.433).abs() < 0.05, "{dr}");
    assert!(rows[1]["ess"].as_f64().unwrap() > 50.0);
}

#[test]
fn ope_refuses_a_deterministic_log_with_the_reason() {
    let dir = scratch("argmax");
    let log = dir.join("log.jsonl");
    write_log(&log, 100, Exploration::Argmax);
    let out = succeeded(&pilot(&[
        "ope",
        "--log",
        log.to_str().unwrap(),
        "--policy",
        "random",
        "--estimator",
        "ips,dm,dr",
    ]));
    assert_eq!(
        out.matches("refused: no overlap: the log is deterministic")
            .count(),
        3,
        "{out}"
    );
}

#[test]
fn ope_reports_bad_input_cleanly() {
    let dir = scratch("bad");
    let log = dir.join("log.jsonl");
    write_log(&log, 50, Exploration::EpsilonMix { epsilon: 0.5 });
    let path = log.to_str().unwrap();
    fails_with(
        &pilot(&["ope", "--log", path, "--policy", "pilot"]),
        &["--policy pilot needs --prior"],
    );
    fails_with(
        &pilot(&["ope", "--log", path, "--policy", "lints"]),
        &["expected pilot, prior-only, linucb or random"],
    );
    fails_with(
        &pilot(&[
            "ope",
            "--log",
            path,
            "--policy",
            "linucb",
            "--estimator",
            "magic",
        ]),
        &["--estimator magic"],
    );
    fails_with(
        &pilot(&["ope", "--log", path, "--policy", "random", "--warm", "10"]),
        &["random does not learn"],
    );
    let torn = dir.join("torn.jsonl");
    let bytes = std::fs::read(&log).unwrap();
    std::fs::write(&torn, &bytes[..bytes.len() - 5]).unwrap();
    fails_with(
        &pilot(&["ope", "--log", torn.to_str().unwrap(), "--policy", "linucb"]),
        &["truncated"],
    );
}
