//! `pilot simulate` and `pilot replay` from the outside: bad input gives a clear message and a
//! non-zero exit; good input gives the files and a deterministic result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{fails_with, pilot, scratch, text};

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

fn write_dataset(dir: &Path, n: usize, cost_b: &str) -> PathBuf {
    let mut text = String::new();
    for split in ["train", "test"] {
        for i in 0..n {
            let qa = (i % 2) as f64;
            text.push_str(&format!(
                "{{\"id\": \"{split}{i}\", \"task\": \"t{}\", \"split\": \"{split}\", \"query\": \"q{i}\", \
                 \"quality\": {{\"a\": {qa}, \"b\": 1.0}}, \"cost_usd\": {{\"a\": 0.001, \"b\": {cost_b}}}}}\n",
                i % 2
            ));
        }
    }
    let path = dir.join("data.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn write_embeddings(dir: &Path, rows: usize, dim: usize) -> PathBuf {
    let mut bytes = Vec::new();
    for r in 0..rows {
        for j in 0..dim {
            let v = if j == r % dim { 1.0f32 } else { 0.1 };
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let path = dir.join("emb.f32");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn missing_dataset_file_is_named() {
    let dir = scratch("missing");
    let emb = write_embeddings(&dir, 4, 4);
    let o = pilot(&[
        "simulate",
        "--dataset",
        "/nonexistent/data.jsonl",
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "4",
    ]);
    fails_with(&o, &["/nonexistent/data.jsonl"]);
}

#[test]
fn wrong_embedding_dimension_is_reported() {
    let dir = scratch("dim");
    let data = write_dataset(&dir, 12, "0.01");
    // 24 rows of dimension 4 = 96 floats; read as dimension 5 they do not divide.
    let emb = write_embeddings(&dir, 24, 4);
    let o = pilot(&[
        "simulate",
        "--dataset",
        data.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "5",
    ]);
    fails_with(&o, &["emb.f32"]);
    // Dimension 2 divides, but then there are 48 rows for 24 lines.
    let o = pilot(&[
        "simulate",
        "--dataset",
        data.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "2",
    ]);
    fails_with(&o, &["48", "24"]);
}

#[test]
fn non_numeric_cost_is_reported_with_its_line() {
    let dir = scratch("nan");
    let data = write_dataset(&dir, 12, "\"NaN\"");
    let emb = write_embeddings(&dir, 24, 4);
    let o = pilot(&[
        "simulate",
        "--dataset",
        data.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "4",
    ]);
    fails_with(&o, &["data.jsonl"]);
}

#[test]
fn unknown_reference_llm_is_named() {
    let dir = scratch("refllm");
    let data = write_dataset(&dir, 12, "0.01");
    let emb = write_embeddings(&dir, 24, 4);
    let o = pilot(&[
        "simulate",
        "--dataset",
        data.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "4",
        "--reference-llm",
        "gpt-5",
        "--no-prior",
        "--knn-k",
        "3",
    ]);
    fails_with(&o, &["gpt-5", "not in the pool"]);
}

#[test]
fn small_dataset_runs_and_writes_the_report() {
    let dir = scratch("ok");
    let data = write_dataset(&dir, 12, "0.01");
    let emb = write_embeddings(&dir, 24, 4);
    let out = dir.join("out");
    let o = pilot(&[
        "simulate",
        "--dataset",
        data.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "4",
        "--knn-k",
        "3",
        "--seeds",
        "2",
        "--budget",
        "0.25,1",
        "--context-dim",
        "3",
        "--no-prior",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header = summary.lines().next().unwrap();
    for col in [
        "policy",
        "cost_policy",
        "budget_frac",
        "seeds",
        "quality_mean",
        "quality_std",
        "quality_pct_of_best",
        "cost_pct_of_best",
        "regret_final",
        "budget_held",
    ] {
        assert!(header.split(',').any(|c| c == col), "missing column {col}");
    }
    // Every budgeted row held its budget.
    let held = header.split(',').position(|c| c == "budget_held").unwrap();
    for line in summary.lines().skip(1) {
        let v = line.split(',').nth(held).unwrap();
        assert!(v.is_empty() || v == "true", "{line}");
    }
    for f in ["regret.csv", "frontier.csv", "frontier.svg", "regret.svg"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
}

#[test]
fn tune_picks_settings_on_the_learning_split_and_writes_them() {
    let dir = scratch("tune");
    let data = write_dataset(&dir, 20, "0.01");
    let emb = write_embeddings(&dir, 40, 4);
    let out = dir.join("out");
    let o = pilot(&[
        "simulate",
        "--dataset",
        data.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "4",
        "--knn-k",
        "3",
        "--seeds",
        "1",
        "--tune-seeds",
        "1",
        "--budget",
        "0.5",
        "--scenario",
        "standard",
        "--context-dim",
        "3",
        "--no-prior",
        "--tune",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("fit 14 / validation 6"), "{stdout}");
    let tune = std::fs::read_to_string(out.join("tune.csv")).unwrap();
    assert!(tune.starts_with("stage,policy,cost_policy,settings,score,chosen"));
    // One choice per policy and stage; LinUCB searched over α × λ.
    for stage in ["policy-1", "pacing", "policy-2"] {
        for policy in ["linucb", "lints", "egreedy", "random", "knn-full-info"] {
            let chosen = tune
                .lines()
                .filter(|l| l.starts_with(&format!("{stage},{policy},")) && l.ends_with(",true"))
                .count();
            assert_eq!(chosen, 1, "{stage} {policy}");
        }
    }
    assert!(
        tune.lines()
            .filter(|l| l.starts_with("policy-1,linucb,"))
            .count()
            > 20
    );
    assert!(out.join("summary.csv").exists());
}

#[test]
fn arena_files_that_do_not_match_are_reported() {
    let dir = scratch("arena");
    let data = write_dataset(&dir, 12, "0.01");
    let emb = write_embeddings(&dir, 24, 4);
    let judge = dir.join("judge.jsonl");
    std::fs::write(
        &judge,
        "{\"id\": \"p0\", \"prompt\": \"x\", \"judge_score\": {\"a\": 3.0, \"b\": 9.0}, \"answer_chars\": {}}\n",
    )
    .unwrap();
    let judge_emb = write_embeddings(&dir, 24, 4);
    let o = pilot(&[
        "simulate",
        "--dataset",
        data.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "4",
        "--arena",
        judge.to_str().unwrap(),
        "--arena-embeddings",
        judge_emb.to_str().unwrap(),
    ]);
    fails_with(&o, &["24 embedding rows", "1 prompts"]);
    let o = pilot(&["simulate", "--arena", judge.to_str().unwrap()]);
    fails_with(&o, &["--arena-embeddings"]);
}

fn write_log(dir: &Path, d: usize, steps: usize, bad_dim_at: Option<usize>) -> PathBuf {
    let mut text = format!("{{\"K\": 2, \"d\": {d}, \"arms\": [\"a\", \"b\"]}}\n");
    for t in 0..steps {
        let n = if bad_dim_at == Some(t) { d + 1 } else { d };
        let x: Vec<String> = (0..n)
            .map(|j| format!("{}", ((t + j) % 3) as f64 / 2.0))
            .collect();
        let r = if t % 3 == 0 {
            "[1.0, 0.0]"
        } else {
            "[0.0, 1.0]"
        };
        text.push_str(&format!("{{\"x\": [{}], \"r\": {r}}}\n", x.join(", ")));
    }
    let path = dir.join("log.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn replay_writes_one_decision_per_step_deterministically() {
    let dir = scratch("replay");
    let log = write_log(&dir, 3, 50, None);
    for policy in ["linucb", "lints", "egreedy", "random"] {
        let a = dir.join(format!("{policy}-a.csv"));
        let b = dir.join(format!("{policy}-b.csv"));
        for out in [&a, &b] {
            let o = pilot(&[
                "replay",
                "--log",
                log.to_str().unwrap(),
                "--policy",
                policy,
                "--seed",
                "4",
                "--decisions",
                out.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{policy}: {}", stderr(&o));
        }
        let ta = std::fs::read_to_string(&a).unwrap();
        assert_eq!(
            ta,
            std::fs::read_to_string(&b).unwrap(),
            "{policy} not deterministic"
        );
        let lines: Vec<&str> = ta.lines().collect();
        assert_eq!(lines[0], "t,arm");
        assert_eq!(lines.len(), 51);
        for (t, l) in lines[1..].iter().enumerate() {
            let (tt, arm) = l.split_once(',').unwrap();
            assert_eq!(tt.parse::<usize>().unwrap(), t);
            assert!(arm == "0" || arm == "1");
        }
    }
}

#[test]
fn replay_rejects_bad_logs_and_options() {
    let dir = scratch("replay-bad");
    let bad = write_log(&dir, 3, 10, Some(4));
    let out = dir.join("d.csv");
    let o = pilot(&[
        "replay",
        "--log",
        bad.to_str().unwrap(),
        "--policy",
        "linucb",
        "--decisions",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["log.jsonl"]);
    let good = write_log(&dir, 3, 10, None);
    let o = pilot(&[
        "replay",
        "--log",
        good.to_str().unwrap(),
        "--policy",
        "ucb9",
        "--decisions",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["ucb9"]);
    let o = pilot(&[
        "replay",
        "--log",
        good.to_str().unwrap(),
        "--policy",
        "pilot",
        "--decisions",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["--prior-vectors"]);
    let prior = dir.join("prior.json");
    std::fs::write(&prior, r#"{"a": [0.1, 0.2, 0.3], "zzz": [0, 0, 0]}"#).unwrap();
    let o = pilot(&[
        "replay",
        "--log",
        good.to_str().unwrap(),
        "--policy",
        "pilot",
        "--prior-vectors",
        prior.to_str().unwrap(),
        "--decisions",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["zzz", "not in the log"]);
    std::fs::write(&prior, r#"{"a": [0.1, 0.2], "b": [0, 0, 0]}"#).unwrap();
    let o = pilot(&[
        "replay",
        "--log",
        good.to_str().unwrap(),
        "--policy",
        "pilot",
        "--prior-vectors",
        prior.to_str().unwrap(),
        "--decisions",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["expected 3 values, found 2"]);
    let o = pilot(&[
        "replay",
        "--log",
        "/nonexistent/log.jsonl",
        "--policy",
        "linucb",
        "--decisions",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["/nonexistent/log.jsonl"]);
}

#[test]
fn check_fails_the_run_when_it_cannot_show_pilot_beating_the_baselines() {
    let dir = scratch("check");
    let data = write_dataset(&dir, 12, "0.01");
    let emb = write_embeddings(&dir, 24, 4);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--dataset",
            data.to_str().unwrap(),
            "--embeddings",
            emb.to_str().unwrap(),
            "--dim",
            "4",
            "--knn-k",
            "3",
            "--seeds",
            "1",
            "--budget",
            "0.5",
            "--scenario",
            "standard",
            "--context-dim",
            "3",
            "--no-prior",
            "--cost-policy",
            "zcl",
        ];
        args.extend_from_slice(extra);
        pilot(&args)
    };
    // Without a prior there is no PILOT: a dataset run does not check unless asked to, and
    // when asked, the missing comparison fails the run with what it could not show.
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(text(&o.stdout).contains(" zcl "), "{}", text(&o.stdout));
    let o = run(&["--check"]);
    fails_with(
        &o,
        &[
            "the run does not show what it should",
            "no PILOT row at standard / zcl / budget 50 %",
            "--no-check",
        ],
    );
    assert!(
        text(&o.stdout).contains("check: every budget held"),
        "{}",
        text(&o.stdout)
    );
}

/// World scenarios on a small two-LLM dataset: `summary.csv` carries the world columns (and
/// adoption steps for the new LLM), PILOT-trust runs beside PILOT and adopts the new LLM, and
/// no scenario overspends, domain shift included.
#[test]
fn world_scenarios_write_their_columns_into_summary_csv_and_hold_the_budget() {
    let dir = scratch("worlds");
    let mut data = String::new();
    for split in ["train", "test"] {
        for i in 0..24 {
            // Both tasks have rows where `a` is right and rows where it is wrong.
            let qa = ((i / 2) % 2) as f64;
            data.push_str(&format!(
                "{{\"id\": \"{split}{i}\", \"task\": \"t{}\", \"split\": \"{split}\", \
                 \"query\": \"q{i}\", \"quality\": {{\"a\": {qa}, \"b\": 1.0}}, \
                 \"cost_usd\": {{\"a\": 0.001, \"b\": 0.01}}}}\n",
                i % 2
            ));
        }
    }
    let data_path = dir.join("data.jsonl");
    std::fs::write(&data_path, data).unwrap();
    // Full-rank embeddings within each task (a one-hot pattern is not).
    let mut bytes = Vec::new();
    for r in 0..48u32 {
        for j in 0..4u32 {
            let v = ((r * 7 + j * 13) % 11) as f32 / 11.0 + if j == r % 4 { 1.0 } else { 0.0 };
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let emb = dir.join("emb.f32");
    std::fs::write(&emb, bytes).unwrap();
    let out = dir.join("out");
    let o = pilot(&[
        "simulate",
        "--dataset",
        data_path.to_str().unwrap(),
        "--embeddings",
        emb.to_str().unwrap(),
        "--dim",
        "4",
        "--prior-dim",
        "2",
        "--knn-k",
        "3",
        "--seeds",
        "1",
        "--scenario",
        "stationary,new-llm,domain-shift",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let (policy, held, adoption) = (col("policy"), col("budget_held"), col("adoption_steps"));
    for column in ["change_step", "quality_after_pct", "settle_steps"] {
        col(column);
    }
    let rows: Vec<Vec<&str>> = summary
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.iter().all(|r| r[held] != "false"), "{summary}");
    let trust = rows
        .iter()
        .find(|r| r[0].starts_with("new-llm:") && r[policy] == "pilot-trust")
        .unwrap();
    assert!(!trust[adoption].is_empty(), "{summary}");
    assert!(
        rows.iter().any(|r| r[policy] == "pilot-shared"),
        "the shared-level variant runs: {summary}"
    );
    assert!(out.join("scenarios.csv").exists());
    let regret = std::fs::read_to_string(out.join("regret.svg")).unwrap();
    assert!(regret.contains("change at query"), "the change is marked");
    assert!(
        std::fs::read_to_string(out.join("regret.csv"))
            .unwrap()
            .contains(",pilot-trust,")
    );
    let shift = std::fs::read_to_string(out.join("domain-shift.csv")).unwrap();
    assert!(
        shift.lines().skip(1).all(|r| !r.ends_with(",NO")),
        "{shift}"
    );
    assert!(shift.contains(",pilot-trust,"));
}
