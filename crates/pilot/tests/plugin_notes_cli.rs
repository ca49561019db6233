//! `pilot simulate --policy-plugin` says what the plugin gets (configuration, context dimension,
//! arm order, no costs), notes when it sends the LinUCB plugin's default keys, and warns when the
//! plugin fails the conformance kit `pilot plugin check` runs. Needs the `plugins` feature and
//! `cargo xtask plugins` (a missing component skips locally and fails under CI=true).
#![cfg(feature = "plugins")]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Output;

fn built(name: &str) -> Option<PathBuf> {
    match pilot_plugin_host::locate::find(name) {
        Ok(p) => Some(p),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true and {why}"),
        Err(why) => {
            eprintln!("skipping: {why}");
            None
        }
    }
}

/// A short synthetic run: no prior (contexts of `--context-dim` 17), one seed, one budget.
fn simulate(plugin: &str, extra: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pilot"))
        .args([
            "simulate",
            "--no-prior",
            "--seeds",
            "1",
            "--budget",
            "0.5",
            "--policy-plugin",
            plugin,
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn simulate_says_what_a_policy_plugin_gets_and_warns_when_it_fails_the_kit() {
    let Some(file) = built("linucb-policy") else {
        return;
    };
    let file = file.to_str().unwrap();
    let out = simulate(file, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("plugin[linucb_policy]: configuration \"d=17 k="))
        .unwrap_or_else(|| panic!("no configuration line in\n{stdout}"));
    assert!(
        line.contains("contexts of dimension 17") && line.contains("select receives no costs"),
        "{line}"
    );
    assert!(
        stdout.contains("note: no --plugin-config, so plugin[linucb_policy] got the LinUCB"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "a conforming plugin: {stderr}");

    // Accepting rewards up to 5 fails the kit's "reward outside [0, 1]" probe: the run goes on,
    // with a warning naming the failed check.
    let k = line
        .split("k=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let config = format!("d=17 k={k} reward_max=5");
    let out = simulate(file, &["--plugin-config", &config]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("fails the conformance kit") && stderr.contains("FAIL  bad input"),
        "{stderr}"
    );
    assert!(!stdout.contains("note: no --plugin-config"), "{stdout}");
}
