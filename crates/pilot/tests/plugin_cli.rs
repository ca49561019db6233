//! `pilot plugin check` end to end: with the `plugins` feature it loads, describes and checks a
//! plugin; without it, it says how to rebuild.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn check(file: &PathBuf, config: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pilot"))
        .args(["plugin", "check", "--plugin-config", config])
        .arg(file)
        .output()
        .unwrap()
}

/// A built plugin from `target/plugins` (`cargo xtask plugins`); missing is a skip locally and a
/// failure under CI=true.
#[cfg(feature = "plugins")]
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

#[cfg(not(feature = "plugins"))]
#[test]
fn without_the_feature_it_says_how_to_rebuild() {
    let out = check(&PathBuf::from("whatever.wasm"), "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features plugins"), "{err}");
}

#[cfg(feature = "plugins")]
#[test]
fn a_policy_plugin_passes_the_conformance_kit() {
    let Some(file) = built("linucb-policy") else {
        return;
    };
    let out = check(&file, "d=16 k=11");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "world:   policy-plugin",
        "abi:     pilot:plugin@0.1.0",
        "dim:     16",
        "arms:    11",
        "every check passed",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
}

#[cfg(feature = "plugins")]
#[test]
fn an_embedder_is_described_and_bad_plugins_exit_2() {
    let (Some(hash), Some(old)) = (built("hash-embedder"), built("old-abi")) else {
        return;
    };
    let out = check(&hash, "d=64");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("id:      hash-v1:d=64"), "{text}");
    let out = check(&old, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ABI mismatch"));
}

fn simulate(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pilot"))
        .args(["simulate", "--seeds", "1", "--budget", "0.25"])
        .args(extra)
        .output()
        .unwrap()
}

#[cfg(not(feature = "plugins"))]
#[test]
fn simulate_with_a_policy_plugin_says_how_to_rebuild() {
    let out = simulate(&["--policy-plugin", "whatever.wasm"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rebuild with --features plugins"), "{err}");
}

/// The quality in the summary row of `policy` on the synthetic scenario.
#[cfg(feature = "plugins")]
fn quality_of(text: &str, policy: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(policy))
        .unwrap_or_else(|| panic!("no row for {policy} in\n{text}"));
    line.split_whitespace().nth(4).unwrap().parse().unwrap()
}

#[cfg(feature = "plugins")]
#[test]
fn simulate_runs_the_linucb_plugin_like_the_native_linucb() {
    let Some(file) = built("linucb-policy") else {
        return;
    };
    let file = file.to_str().unwrap();
    let out = simulate(&["--policy-plugin", file]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default configuration is LinUCB's settings on the same contexts, so the plugin must
    // route (nearly) as the native LinUCB does.
    let plugin = quality_of(&text, "plugin[linucb_policy]");
    let native = quality_of(&text, "linucb");
    assert!(
        (plugin - native).abs() < 0.02,
        "plugin {plugin}, native {native}"
    );
    assert!(plugin > 0.5, "{text}");

    let out = simulate(&["--policy-plugin", file, "--plugin-config", "d=3 k=2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dimension 3 and 2 arms"), "{err}");
}

#[cfg(feature = "plugins")]
#[test]
fn simulate_embeds_the_synthetic_queries_with_an_embedder_plugin() {
    let Some(file) = built("hash-embedder") else {
        return;
    };
    let out = simulate(&[
        "--embedder-plugin",
        file.to_str().unwrap(),
        "--embedder-config",
        "d=64",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The built-in hashing embedder has 256 dimensions; 64 proves the plugin's vectors were used,
    // and the prior fitted on them still lets PILOT beat random routing.
    assert!(text.contains("embedding dimension 64"), "{text}");
    assert!(
        quality_of(&text, "pilot") > quality_of(&text, "random"),
        "{text}"
    );
}
