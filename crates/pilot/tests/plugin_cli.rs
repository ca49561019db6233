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
    // A plugin's pool is fixed by its configuration: the new-llm world, where an LLM joins
    // through Router::add_arm, says so instead of failing mid-run.
    let out = simulate(&["--policy-plugin", file, "--scenario", "new-llm"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot grow its pool"), "{err}");
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

/// `pilot plugin check` with extra flags.
#[cfg(feature = "plugins")]
fn check_with(file: &std::path::Path, config: &str, extra: &[&str]) -> Output {
    command()
        .args(["plugin", "check", "--plugin-config", config])
        .args(extra)
        .arg(file)
        .output()
        .unwrap()
}

/// Stdout and stderr, asserting that neither holds a control character but newlines.
#[cfg(feature = "plugins")]
fn printable(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for text in [&stdout, &stderr] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "raw control characters reached the terminal: {text:?}"
        );
    }
    (stdout, stderr)
}

#[cfg(feature = "plugins")]
#[test]
fn plugin_strings_reach_the_terminal_escaped_and_capped() {
    let Some(bad) = built("misbehaving-embedder") else {
        return;
    };
    // An id that fakes the verdict line and hides what follows.
    let out = check(&bad, "id=evil");
    let (text, _) = printable(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("result:  every check passed")),
        "{text}"
    );
    assert!(
        text.contains("id:      misbehaving\\nresult:  every check passed\\r\\u{1b}[8m"),
        "{text}"
    );
    assert!(text.contains("FAIL  id: its id holds control"), "{text}");
    assert!(text.contains("result:  1 check(s) failed"), "{text}");
    // A 4 MiB id is cut.
    let out = check(&bad, "id=long");
    let (text, _) = printable(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.len() < 2000, "{} bytes printed", text.len());
    // An empty id fails the check.
    let out = check(&bad, "id=empty");
    let (text, _) = printable(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  id: its id is empty"), "{text}");
    // Failure messages from create and embed.
    let out = check(&bad, "create=evil");
    let (_, err) = printable(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad config misbehaving\\nresult:"), "{err}");
    let out = check(&bad, "create=long");
    let (_, err) = printable(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.len() < 2000 && err.contains("more bytes]"), "{err}");
    // An embed failure of a dataset query, in simulate.
    let dir = std::env::temp_dir().join(format!("pilot-plugin-cli-evil-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dataset = dir.join("data.jsonl");
    let mut lines = String::new();
    for (i, query) in ["a question", "refuse-evil"].iter().enumerate() {
        lines.push_str(&format!(
            "{{\"id\": \"q{i}\", \"task\": \"t\", \"split\": \"train\", \"query\": \"{query}\", \
             \"quality\": {{\"a\": 1.0, \"b\": 0.0}}, \"cost_usd\": {{\"a\": 0.01, \"b\": 0.001}}}}\n"
        ));
    }
    std::fs::write(&dataset, lines).unwrap();
    let out = simulate(&[
        "--dataset",
        dataset.to_str().unwrap(),
        "--embedder-plugin",
        bad.to_str().unwrap(),
    ]);
    let (_, err) = printable(&out);
    assert!(!out.status.success());
    assert!(err.contains("refused misbehaving\\nresult:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "plugins")]
#[test]
fn a_huge_declared_dimension_is_refused_early_by_check_and_simulate() {
    let Some(bad) = built("misbehaving-embedder") else {
        return;
    };
    let started = std::time::Instant::now();
    let out = check(&bad, "d=1048576");
    let (_, err) = printable(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let out = simulate(&[
        "--embedder-plugin",
        bad.to_str().unwrap(),
        "--embedder-config",
        "d=1048576",
    ]);
    let (_, err2) = printable(&out);
    assert!(!out.status.success());
    for text in [&err, &err2] {
        for needle in [
            "misbehaving_embedder.wasm",
            "dimension 1048576",
            "limit of 8192",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
    }
    // Refused before anything is embedded: seconds, not the minutes (and 14 GB) it took.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[cfg(feature = "plugins")]
#[test]
fn degenerate_embedders_fail_check_and_simulate_by_name() {
    let Some(bad) = built("misbehaving-embedder") else {
        return;
    };
    for (config, needle) in [
        ("out=zero", "vector 0 has norm 0"),
        ("out=subnormal", "all zero or subnormal"),
        ("out=same", "all 3 vectors are the same"),
    ] {
        let out = check(&bad, config);
        let (text, _) = printable(&out);
        assert_eq!(out.status.code(), Some(1), "{config}: {text}");
        assert!(
            text.contains("FAIL  invalid plugin output from `model.embed`: degenerate"),
            "{text}"
        );
        assert!(
            text.contains(needle),
            "{config}: {needle} missing in {text}"
        );
    }
    // `simulate` refuses each kind before fitting anything on the table, naming the plugin.
    for (config, needle) in [
        ("out=same", "all 3000 vectors are the same"),
        ("out=zero", "vector 0 has norm 0e0, below 1e-6"),
        ("out=subnormal", "vector 0 has norm 2.8"),
    ] {
        let out = simulate(&[
            "--embedder-plugin",
            bad.to_str().unwrap(),
            "--embedder-config",
            config,
        ]);
        let (_, err) = printable(&out);
        assert!(!out.status.success(), "{config}");
        for needle in [
            "--embedder-plugin",
            "misbehaving_embedder.wasm: its vectors cannot carry information",
            needle,
        ] {
            assert!(err.contains(needle), "{config}: {needle} missing in {err}");
        }
        assert!(!err.contains("PCA"), "{config}: {err}");
    }
}

#[cfg(feature = "plugins")]
#[test]
fn plugin_check_reports_abi_traps_checkpoints_and_fields_in_detail() {
    let (Some(policy), Some(wrong)) = (built("misbehaving-policy"), built("wrong-type")) else {
        return;
    };
    // A snapshot that burns its fuel: the checkpoint line fails with the reason.
    let started = std::time::Instant::now();
    let out = check_with(&policy, "k=3 d=2 snapshot=loop", &["--fuel", "20000000"]);
    let (text, _) = printable(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for needle in [
        "FAIL  checkpoints: the host's checkpoint after update 64 failed",
        "plugin ran out of fuel in `router.snapshot`",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    eprintln!("check with a looping snapshot: {:?}", started.elapsed());
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    // A healthy policy passes it.
    let out = check(&policy, "k=3 d=2");
    let (text, _) = printable(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok    checkpoints: 256 updates, snapshotted every 64"),
        "{text}"
    );
    // A conformance failure names the arm and the field, not only the value.
    let out = check(&policy, "k=3 d=2 width=negative");
    let (text, _) = printable(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "cause: invalid plugin output from `router.select`: arm 2: width -0.5 is negative"
        ),
        "{text}"
    );
    // A wrong function type under the right name: the ABI mismatch, not a trap.
    let out = check(&wrong, "");
    let (_, err) = printable(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("plugin ABI mismatch")
            && err.contains("`[method]model.dim` of `pilot:plugin/embedder@0.1.0` has the wrong type")
            && err.contains("expected `func(self: borrow<model>) -> u32`, found `func(self: borrow<model>) -> u64`")
            && !err.contains("trapped"),
        "{err}"
    );
}

#[cfg(feature = "plugins")]
#[test]
fn a_policy_plugin_failing_mid_run_keeps_the_other_results() {
    let Some(bad) = built("misbehaving-policy") else {
        return;
    };
    let bad = bad.to_str().unwrap();
    // The shape the synthetic contexts need, from the refusal of a wrong one.
    let out = simulate(&["--policy-plugin", bad, "--plugin-config", "k=1 d=1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let shape = err
        .split("the contexts have dimension ")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"));
    let mut words = shape.split_whitespace();
    let dim = words.next().unwrap();
    let arms = words.nth(3).unwrap();
    for (mode, reason) in [
        ("snapshot=error", "asked to fail snapshot"),
        ("snapshot=panic", "unreachable"),
    ] {
        let config = format!("k={arms} d={dim} {mode}");
        let started = std::time::Instant::now();
        let dir = common::scratch(&format!("failed-{}", mode.replace('=', "-")));
        let out = simulate(&[
            "--policy-plugin",
            bad,
            "--plugin-config",
            &config,
            "--out",
            dir.to_str().unwrap(),
        ]);
        let (text, err) = printable(&out);
        assert_eq!(out.status.code(), Some(1), "{text}{err}");
        // Every native policy's row is there; the plugin has none, and a FAILED line instead.
        for policy in ["pilot", "linucb", "random"] {
            assert!(quality_of(&text, policy) > 0.0, "{text}");
        }
        assert!(
            !text
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("plugin[misbehaving_policy]")),
            "{text}"
        );
        for needle in [
            "plugin[misbehaving_policy]  FAILED, its rows are left out of the figures and \
             marked failed in summary.csv:",
            "cause: policy plugin",
            "failed for good: 3 checkpoints in a row failed",
            reason,
        ] {
            assert!(text.contains(needle), "{mode}: {needle} missing in\n{text}");
        }
        assert!(
            err.contains("plugin[misbehaving_policy] failed mid-run"),
            "{err}"
        );
        // summary.csv: the other policies' rows with an empty `error`, and the plugin's row
        // (one per scenario × cost policy × budget) marked with the reason and its cause.
        let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        assert_eq!(header.last(), Some(&"error"), "{csv}");
        let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
        let (policy, seeds, quality) = (col("policy"), col("seeds"), col("quality_mean"));
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        let pilot = rows.iter().find(|r| r[policy] == "pilot").unwrap();
        assert_eq!(pilot.len(), header.len(), "{csv}");
        assert_eq!(pilot.last(), Some(&""), "{csv}");
        let failed: Vec<&Vec<&str>> = rows
            .iter()
            .filter(|r| r[policy] == "plugin[misbehaving_policy]")
            .collect();
        assert_eq!(failed.len(), 1, "{csv}");
        let row = csv
            .lines()
            .find(|l| l.contains("plugin[misbehaving_policy]"))
            .unwrap();
        assert_eq!(failed[0][seeds], "0", "{row}");
        assert_eq!(failed[0][quality], "", "{row}");
        for needle in ["failed for good: 3 checkpoints in a row failed", reason] {
            assert!(row.contains(needle), "{needle} missing in {row}");
        }
        eprintln!("{mode}: {:?}", started.elapsed());
    }
}

#[cfg(feature = "plugins")]
#[test]
fn an_embedder_trap_after_many_good_calls_keeps_its_reason() {
    let Some(bad) = built("misbehaving-embedder") else {
        return;
    };
    let out = simulate(&[
        "--embedder-plugin",
        bad.to_str().unwrap(),
        "--embedder-config",
        "trap_after=700",
    ]);
    let (_, err) = printable(&out);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "embedding synthetic query 700: plugin trapped in `model.embed`: wasm trap: wasm \
             `unreachable` instruction executed (a Rust plugin panicked"
        ),
        "{err}"
    );
    // The short form the `Embedder` trait carries is replaced, not repeated.
    assert!(!err.contains("PluginEmbedder::embed"), "{err}");
}
