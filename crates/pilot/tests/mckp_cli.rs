//! `pilot mckp solve` end to end: answers, and exit status 2 with a clear message on bad files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap.

use std::path::PathBuf;
use std::process::Output;

mod common;
use common::command;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pilot-mckp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn solve(solver: &str, path: &PathBuf) -> Output {
    command()
        .args(["mckp", "solve", "--solver", solver])
        .arg(path)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const SMALL: &str = r#"{"capacity": 10, "weights": [[1, 4, 9], [2, 5, 8]],
    "profits": [[5, 8, 9], [4, 9, 10]], "comment": "ignored"}"#;

#[test]
fn dp_prints_the_optimum_as_integers() {
    let path = write("small.json", SMALL);
    let v = json(&solve("dp", &path));
    // Optimum: items (4, 8) + (5, 9) = weight 9, value 17.
    assert_eq!(v["value"], serde_json::json!(17));
    assert_eq!(v["choice"], serde_json::json!([1, 1]));
    assert_eq!(v["weight"], serde_json::json!(9));
    assert!(v["bound"].as_f64().unwrap() >= 17.0);
}

#[test]
fn lp_and_greedy_bracket_the_optimum() {
    let path = write("small2.json", SMALL);
    let lp = json(&solve("lp", &path));
    let greedy = json(&solve("greedy", &path));
    let bound = lp["bound"].as_f64().unwrap();
    assert!(bound >= 17.0);
    assert!(greedy["value"].as_f64().unwrap() <= 17.0);
    assert!(greedy["weight"].as_u64().unwrap() <= 10);
    assert!(lp.get("fractional").is_some());
}

#[test]
fn bad_files_exit_2_with_the_reason() {
    let cases = [
        (
            "ragged.json",
            r#"{"capacity": 3, "weights": [[1, 2]], "profits": [[1]]}"#,
            "ragged",
        ),
        (
            "empty.json",
            r#"{"capacity": 3, "weights": [[1], []], "profits": [[1], []]}"#,
            "empty class",
        ),
        (
            "neg.json",
            r#"{"capacity": 3, "weights": [[1, -2]], "profits": [[1, 1]]}"#,
            "negative number at weights[0][1]",
        ),
        (
            "infeasible.json",
            r#"{"capacity": 0, "weights": [[1, 2]], "profits": [[1, 1]]}"#,
            "infeasible",
        ),
        (
            "malformed.json",
            r#"{"capacity": 3, "weights": "#,
            "malformed JSON",
        ),
    ];
    for (name, text, reason) in cases {
        let out = solve("dp", &write(name, text));
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{name}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = solve("dp", &PathBuf::from("/nonexistent/instance.json"));
    assert_eq!(out.status.code(), Some(2));
}

fn generate(kind: &str, size: (usize, usize), range: u64) -> PathBuf {
    let out = command()
        .args([
            "mckp", "generate", "--kind", kind, "--ratio", "0.5", "--seed", "7",
        ])
        .args([
            "--classes",
            &size.0.to_string(),
            "--items",
            &size.1.to_string(),
        ])
        .args(["--range", &range.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write(
        &format!("{kind}-{}x{}.json", size.0, size.1),
        &String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn generated_instances_are_solved_exactly_within_a_memory_budget() {
    for kind in [
        "uncorrelated",
        "weak",
        "strong",
        "inverse-strong",
        "subset-sum",
    ] {
        let path = generate(kind, (60, 10), 1000);
        let exact = json(
            &command()
                .args(["mckp", "solve", "--solver", "dp", "--memory-mb", "64"])
                .arg(&path)
                .output()
                .unwrap(),
        );
        let lp = json(&solve("lp", &path));
        let greedy = json(&solve("greedy", &path));
        let value = exact["value"].as_f64().unwrap();
        assert!(value <= lp["bound"].as_f64().unwrap() + 1e-6, "{kind}");
        assert!(value >= greedy["value"].as_f64().unwrap(), "{kind}");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(exact["weight"].as_u64().unwrap() <= parsed["capacity"].as_u64().unwrap());
    }
}

#[test]
fn a_memory_budget_too_small_is_an_error_naming_the_size() {
    let path = generate("strong", (60, 10), 1000);
    let out = command()
        .args(["mckp", "solve", "--solver", "dp", "--memory-mb", "0"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("memory budget"), "{stderr}");
    assert!(stderr.contains("--memory-mb 0"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// Every seed its own instance (seeds 2k and 2k + 1 once printed the same one), and the same
/// seed the same instance.
#[test]
fn each_seed_generates_its_own_instance() {
    let print = |seed: u64| {
        let out = command()
            .args(["mckp", "generate", "--kind", "weak", "--classes", "5"])
            .args(["--items", "4", "--seed", &seed.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let texts: Vec<_> = (0..4).map(print).collect();
    for (i, a) in texts.iter().enumerate() {
        for b in &texts[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(texts[3], print(3));
}
