//! `pilot plugin check` end to end: with the `plugins` feature it loads, describes and checks a
//! plugin; without it, it says how to rebuild.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Output;

mod common;
use common::command;
#[cfg(feature = "plugins")]
use common::{shared_data, succeeded};

fn check(file: &PathBuf, config: &str) -> Output {
    command()
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
    command()
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

/// The fields of the summary row of `policy` after its name (cost policy, budget, quality, …).
#[cfg(feature = "plugins")]
fn row_of<'a>(text: &'a str, policy: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(policy))
        .unwrap_or_else(|| panic!("no row for {policy} in\n{text}"))
        .split_whitespace()
        .skip(2)
        .collect()
}

#[cfg(feature = "plugins")]
#[test]
fn the_linucb_plugin_started_from_the_prior_routes_exactly_as_native_pilot() {
    let Some(file) = built("linucb-policy") else {
        return;
    };
    let text = succeeded(&simulate(&[
        "--policy-plugin",
        file.to_str().unwrap(),
        "--plugin-prior",
    ]));
    // Same prior vectors (bit for bit through the configuration), same α and λ, same contexts,
    // same cost-policy settings and seeds: the whole row must be the same, not just close.
    assert_eq!(
        row_of(&text, "plugin[linucb_policy]"),
        row_of(&text, "pilot"),
        "{text}"
    );
    assert_ne!(row_of(&text, "pilot"), row_of(&text, "linucb"), "{text}");

    // Named: the same PILOT; a name the run lacks is refused with the names it has.
    let named = succeeded(&simulate(&[
        "--policy-plugin",
        file.to_str().unwrap(),
        "--plugin-prior=pilot",
    ]));
    assert_eq!(
        row_of(&named, "plugin[linucb_policy]"),
        row_of(&text, "pilot"),
        "{named}"
    );
    let out = simulate(&[
        "--policy-plugin",
        file.to_str().unwrap(),
        "--plugin-prior=nope",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--plugin-prior nope: no PILOT of that name in this run; it has pilot"),
        "{err}"
    );

    let out = simulate(&[
        "--policy-plugin",
        file.to_str().unwrap(),
        "--plugin-prior",
        "--no-prior",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(feature = "plugins")]
#[test]
fn simulate_embeds_the_dataset_queries_with_an_embedder_plugin() {
    let (Some(data), Some(hash), Some(linucb)) = (
        shared_data(),
        built("hash-embedder"),
        built("linucb-policy"),
    ) else {
        return;
    };
    let dataset = data.join("routerbench-3k.jsonl");
    let dataset = dataset.to_str().unwrap();
    let out = simulate(&[
        "--dataset",
        dataset,
        "--embedder-plugin",
        hash.to_str().unwrap(),
        "--embedder-config",
        "d=64",
        "--scenario",
        "standard",
        "--policy-plugin",
        linucb.to_str().unwrap(),
        "--plugin-prior",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every query line embedded by the plugin (not read from the 384-d MiniLM file).
    assert!(
        text.contains("embedded 3178 queries with the plugin") && text.contains("hash-v1:d=64"),
        "{text}"
    );
    assert!(text.contains("embedding dimension 64"), "{text}");
    for policy in [
        "pilot",
        "prior-only",
        "linucb",
        "lints",
        "egreedy",
        "random",
        "knn-full-info",
        "plugin[linucb_policy]",
    ] {
        let row = row_of(&text, policy);
        assert_eq!(row[..2], ["pacing", "25%"], "{policy}: {row:?}");
        assert_eq!(row.last(), Some(&"yes"), "{policy} overspent: {row:?}");
    }
    // The prior fitted on the plugin's vectors carries information: PILOT beats random routing,
    // and the plugin started from it routes exactly as PILOT.
    assert!(
        quality_of(&text, "pilot") > quality_of(&text, "random") + 0.05,
        "{text}"
    );
    assert_eq!(
        row_of(&text, "plugin[linucb_policy]"),
        row_of(&text, "pilot"),
        "{text}"
    );

    // A prior learned on MiniLM vectors is refused for the plugin's vectors, by embedder id.
    let dir = std::env::temp_dir().join(format!("pilot-plugin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prior = dir.join("minilm.prior");
    let fit = command()
        .args([
            "prior",
            "fit",
            "--dataset",
            dataset,
            "--dim",
            "8",
            "--embeddings",
        ])
        .arg(data.join("routerbench-3k.minilm.f32"))
        .arg("--out")
        .arg(&prior)
        .output()
        .unwrap();
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    let out = simulate(&[
        "--dataset",
        dataset,
        "--embedder-plugin",
        hash.to_str().unwrap(),
        "--embedder-config",
        "d=384",
        "--prior",
        prior.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("learned on embedder \"all-MiniLM-L6-v2\"")
            && err.contains("come from \"hash-v1:d=384\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "plugins")]
#[test]
fn a_query_the_embedder_plugin_fails_on_is_named_by_its_line() {
    let Some(bad) = built("misbehaving-embedder") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("pilot-plugin-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dataset = dir.join("data.jsonl");
    let mut text = String::new();
    for (i, query) in ["a question", "another one", "nan", "panic"]
        .iter()
        .enumerate()
    {
        let split = if i % 2 == 0 { "train" } else { "test" };
        text.push_str(&format!(
            "{{\"id\": \"q{i}\", \"task\": \"t\", \"split\": \"{split}\", \"query\": \"{query}\", \
             \"quality\": {{\"a\": 1.0, \"b\": 0.0}}, \"cost_usd\": {{\"a\": 0.01, \"b\": 0.001}}}}\n"
        ));
    }
    std::fs::write(&dataset, text).unwrap();
    let out = simulate(&[
        "--dataset",
        dataset.to_str().unwrap(),
        "--embedder-plugin",
        bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
    for needle in [
        "embedding the query on line 3 of",
        "(id q2)",
        "invalid plugin output from `model.embed`: value",
    ] {
        assert!(err.contains(needle), "{needle} missing in\n{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
