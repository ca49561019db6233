//! The loaders on the real shared files, when they are present beside the checkout (missing:
//! a skip on a bare clone, a failure under `CI=true` or `PILOT_REQUIRE_DATA=1`).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on purpose

use std::process::Command;

use pilot_data::{Embeddings, JudgeDataset, MINILM_DIM, RoutingDataset, shared_input};

#[test]
fn routerbench_3k_matches_the_documented_figures() {
    let (Some(data), Some(emb)) = (
        shared_input("routerbench-3k.jsonl").unwrap(),
        shared_input("routerbench-3k.minilm.f32").unwrap(),
    ) else {
        return;
    };
    let d = RoutingDataset::load(&data).unwrap();
    assert_eq!(d.rows.len(), 3178);
    assert_eq!(d.llms.len(), 11);
    assert!(d.llm_index("gpt-4-1106-preview").is_some());
    assert_eq!(d.split_indices("train").len(), 2225);
    assert_eq!(d.split_indices("test").len(), 953);
    assert_eq!(d.task_indices("arc-challenge").len(), 1484);
    assert_eq!(d.task_indices("winogrande").len(), 1267);
    assert_eq!(d.task_indices("mbpp").len(), 427);
    let nulls: usize = d
        .missing_cells()
        .iter()
        .map(|c| usize::from(c.quality) + usize::from(c.cost))
        .sum();
    // 154 cells have a null quality or cost; a cell may miss both.
    assert_eq!(d.missing_cells().len(), 154, "null cells: {nulls} values");
    let all: Vec<usize> = (0..d.rows.len()).collect();
    let gpt4 = d.llm_index("gpt-4-1106-preview").unwrap();
    let q = d.mean_quality(&all)[gpt4].unwrap();
    let c = d.mean_cost(&all)[gpt4].unwrap();
    assert!((q - 0.880).abs() < 0.0006, "gpt-4 mean quality {q}");
    assert!((c - 5.04e-3).abs() < 0.006e-3, "gpt-4 mean cost {c}");

    let e = Embeddings::load_rows(&emb, MINILM_DIM, d.rows.len()).unwrap();
    let norm: f32 = e.get(0).unwrap().iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-3,
        "MiniLM rows are L2-normalised, found {norm}"
    );
    // A wrong dimension is caught: 3178 · 384 · 4 bytes is not a multiple of 4 · 383.
    assert!(Embeddings::load(&emb, 383).is_err());
}

#[test]
fn arena_bench_300_loads_with_its_models() {
    let (Some(data), Some(emb)) = (
        shared_input("arena-bench-300.jsonl").unwrap(),
        shared_input("arena-bench-300.minilm.f32").unwrap(),
    ) else {
        return;
    };
    let j = JudgeDataset::load(&data).unwrap();
    assert_eq!(j.rows.len(), 300);
    assert_eq!(j.models.len(), 14);
    assert!(j.model_index("claude-1").is_some());
    let cells: usize = j
        .rows
        .iter()
        .map(|r| r.scores.iter().flatten().count())
        .sum();
    assert_eq!(cells, 4163);
    Embeddings::load_rows(&emb, MINILM_DIM, j.rows.len()).unwrap();
}

/// Runs this test binary's `routerbench_3k_matches_the_documented_figures` alone with the data
/// folder pointed at a directory that does not exist, under the given environment.
fn run_without_data(env: &[(&str, &str)]) -> std::process::Output {
    let missing = std::env::temp_dir().join(format!("pilot-no-shared-data-{}", std::process::id()));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "routerbench_3k_matches_the_documented_figures",
        "--exact",
        "--nocapture",
    ])
    .env("PILOT_SHARED_DATA", &missing)
    .env_remove("CI")
    .env_remove("PILOT_REQUIRE_DATA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn missing_data_skips_on_a_bare_clone_and_fails_under_ci() {
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let bare = run_without_data(&[]);
    assert!(bare.status.success(), "a bare clone skips: {}", text(&bare));
    assert!(
        text(&bare).contains("skipping: shared data file"),
        "{}",
        text(&bare)
    );
    for setting in [("CI", "true"), ("PILOT_REQUIRE_DATA", "1")] {
        let out = run_without_data(&[setting]);
        let err = text(&out);
        assert!(!out.status.success(), "{setting:?} must fail: {err}");
        assert!(
            err.contains("is missing") && err.contains(&format!("{}={}", setting.0, setting.1)),
            "{setting:?}: {err}"
        );
    }
}
