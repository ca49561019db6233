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
        &pilot(&["ope", "--log", path, "--policy", "magic"]),
        &["expected pilot, prior-only, linucb or random"],
    );
    // Built by the simulator's line-up, then refused for what they are.
    for sampler in ["lints", "egreedy"] {
        fails_with(
            &pilot(&["ope", "--log", path, "--policy", sampler]),
            &["its scores depend on its random draws"],
        );
    }
    fails_with(
        &pilot(&["ope", "--log", path, "--policy", "knn-full-info"]),
        &["predictions made offline"],
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

/// A decision log written by `pilot simulate --log-decisions` (LinUCB drawing ε-mix 0.3 on the
/// synthetic scenario, one episode).
#[cfg(feature = "plugins")]
fn simulated_log(dir: &std::path::Path) -> std::path::PathBuf {
    let log = dir.join("simulated.jsonl");
    succeeded(&pilot(&[
        "simulate",
        "--seeds",
        "1",
        "--budget",
        "0.25",
        "--no-prior",
        "--log-decisions",
        log.to_str().unwrap(),
        "--log-policy",
        "linucb",
        "--log-explore",
        "eps:0.3",
    ]));
    log
}

/// The LinUCB plugin as the target, on a log from `pilot simulate --log-decisions`: it is
/// evaluated frozen (and by replay, learning) exactly as the native LinUCB at the same settings,
/// and the output says how its propensities were formed.
#[cfg(feature = "plugins")]
#[test]
fn a_policy_plugin_is_evaluated_like_the_native_policy() {
    let file = match pilot_plugin_host::locate::find("linucb-policy") {
        Ok(p) => p,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true and {why}"),
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let dir = scratch("plugin");
    let log = simulated_log(&dir);
    let (log, file) = (log.to_str().unwrap(), file.to_str().unwrap());
    let run = |target: &[&str]| -> serde_json::Value {
        let mut args = vec!["ope", "--log", log, "--warm", "300", "--json"];
        args.extend_from_slice(target);
        serde_json::from_str(&succeeded(&pilot(&args))).unwrap()
    };
    let plugin = run(&["--policy-plugin", file]);
    let native = run(&["--policy", "linucb"]);
    assert!(
        plugin["target"]
            .as_str()
            .unwrap()
            .starts_with("plugin[linucb_policy] (configuration \"d="),
        "{plugin}"
    );
    // Same settings (the default configuration is LinUCB's tuned keys), same warm-up: every
    // estimate, interval and ESS is the same.
    assert_eq!(plugin["estimates"], native["estimates"]);
    let rows = plugin["estimates"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for row in rows {
        assert!(row["estimate"].as_f64().unwrap().is_finite(), "{row}");
    }
    let notes = plugin["notes"].to_string();
    assert!(
        notes.contains("propensity is 1 for its best-scoring candidate"),
        "{notes}"
    );
    // Softmax over the plugin's scores is a different target, still estimated.
    let soft = run(&["--policy-plugin", file, "--temperature", "0.05"]);
    assert_ne!(soft["estimates"], plugin["estimates"]);

    // A plugin whose shape does not match the log, and an embedder, are refused up front.
    fails_with(
        &pilot(&[
            "ope",
            "--log",
            log,
            "--policy-plugin",
            file,
            "--plugin-config",
            "d=3 k=2",
        ]),
        &[
            "gives dimension 3 and 2 arms",
            "the log's contexts have dimension",
        ],
    );
    if let Ok(hash) = pilot_plugin_host::locate::find("hash-embedder") {
        fails_with(
            &pilot(&[
                "ope",
                "--log",
                log,
                "--policy-plugin",
                hash.to_str().unwrap(),
            ]),
            &["is an embedder-plugin, not a policy-plugin"],
        );
    }
}

#[cfg(not(feature = "plugins"))]
#[test]
fn a_policy_plugin_target_says_how_to_rebuild() {
    let dir = scratch("noplugin");
    let log = dir.join("log.jsonl");
    write_log(&log, 50, Exploration::EpsilonMix { epsilon: 0.5 });
    fails_with(
        &pilot(&[
            "ope",
            "--log",
            log.to_str().unwrap(),
            "--policy-plugin",
            "x.wasm",
        ]),
        &["--features plugins"],
    );
}
