//! `pilot ope` on a `pilot serve` state: the replay upstream and the server in-process on
//! loopback (as pilot-serve's end-to-end tests run them), exploring, with the recorded quality
//! sent as feedback; then `pilot ope --log STATE_DIR`, `--log STATE_DIR/pilot.sqlite` and
//! `pilot serve export` + `pilot ope --log FILE` give the same finite estimates, and a server
//! that did not explore is refused with the reason.
#![cfg(feature = "serve")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, pilot, scratch, succeeded};
use pilot_data::RoutingDataset;
use pilot_serve::replay::{self, Faults};
use serde_json::{Value, json};

/// The routing dataset, or `None` (a skip; a failure under CI=true) when it is not here.
fn dataset() -> Option<PathBuf> {
    common::shared_data().map(|dir| dir.join("routerbench-3k.jsonl"))
}

/// Serves `rows` test-split queries through `pilot serve` (state in `state`) with
/// `exploration` (a TOML table) and sends the recorded quality of each answer as feedback.
async fn serve_with_feedback(data: &Path, state: &Path, exploration: &str, rows: usize) {
    let ds = RoutingDataset::load(data).unwrap();
    let up = replay::start(data, "127.0.0.1:0".parse().unwrap(), Faults::default(), 1)
        .await
        .unwrap();
    let mut text = replay::config_for(up.addr, &up.llms, &up.prices, 100.0, state, "127.0.0.1:0");
    text.push_str(exploration);
    let config = pilot_serve::Config::parse(&text).unwrap();
    let running = pilot_serve::start(config, None).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    for r in ds.split_indices("test").into_iter().take(rows) {
        let row = &ds.rows[r];
        let body = json!({"model": "pilot", "messages": [{"role": "user", "content": row.query}]});
        let resp = client
            .post(format!("{base}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["x-pilot-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let model = resp.headers()["x-pilot-model"].to_str().unwrap().to_owned();
        let _ = resp.text().await.unwrap();
        let l = ds.llm_index(&model).unwrap();
        if let Some(q) = row.quality[l] {
            let fb = client
                .post(format!("{base}/v1/feedback"))
                .json(&json!({"request_id": id, "reward": q}))
                .send()
                .await
                .unwrap();
            assert_eq!(fb.status(), 200);
        }
    }
    running.task.abort();
    running.engine.snapshot_now().await.unwrap();
}

fn run_serve(data: &Path, state: &Path, exploration: &str, rows: usize) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(serve_with_feedback(data, state, exploration, rows));
}

fn estimates(out: &str) -> Value {
    let v: Value = serde_json::from_str(out).unwrap();
    v["estimates"].clone()
}

#[test]
fn ope_reads_a_serve_state_directly_and_through_export() {
    let Some(data) = dataset() else {
        return;
    };
    let dir = scratch("serve");
    let state = dir.join("state");
    run_serve(
        &data,
        &state,
        "\n[exploration]\nkind = \"epsilon\"\nepsilon = 0.3\n",
        160,
    );
    let state_arg = state.to_str().unwrap();
    fn args(log: &str) -> Vec<&str> {
        vec![
            "ope", "--log", log, "--policy", "linucb", "--warm", "40", "--json",
        ]
    }
    let direct = succeeded(&pilot(&args(state_arg)));
    eprintln!("{direct}");
    let v: Value = serde_json::from_str(&direct).unwrap();
    assert_eq!(v["deterministic_log"], false, "{direct}");
    assert!(v["decisions"].as_u64().unwrap() >= 100, "{direct}");
    let rows = v["estimates"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{direct}");
    for row in rows {
        let e = row["estimate"]
            .as_f64()
            .unwrap_or_else(|| panic!("not estimated: {row}"));
        assert!(e.is_finite() && (-0.5..=1.5).contains(&e), "{row}");
        assert!(row["ess"].as_f64().unwrap() > 0.0, "{row}");
        for bound in row["interval"].as_array().unwrap() {
            assert!(bound.as_f64().unwrap().is_finite(), "{row}");
        }
        assert!(row["spend"].as_f64().unwrap().is_finite(), "{row}");
    }
    // The database file itself, and the exported JSON lines, read the same.
    let db = state.join("pilot.sqlite");
    let by_file = succeeded(&pilot(&args(db.to_str().unwrap())));
    assert_eq!(estimates(&by_file), estimates(&direct));
    let exported = dir.join("events.jsonl");
    let said = succeeded(&pilot(&[
        "serve",
        "export",
        "--state",
        state_arg,
        "--out",
        exported.to_str().unwrap(),
    ]));
    assert!(said.starts_with("wrote "), "{said}");
    let lines = std::fs::read_to_string(&exported).unwrap();
    assert!(lines.lines().count() >= 320, "{said}");
    let by_export = succeeded(&pilot(&args(exported.to_str().unwrap())));
    assert_eq!(estimates(&by_export), estimates(&direct));

    // A server drawing argmax logs propensities of 1: nothing to estimate a different target
    // with, and `pilot ope` says so instead of printing numbers.
    let argmax = dir.join("argmax");
    run_serve(&data, &argmax, "", 40);
    let out = succeeded(&pilot(&[
        "ope",
        "--log",
        argmax.to_str().unwrap(),
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

    // Not a state: named.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(
        &pilot(&[
            "ope",
            "--log",
            empty.to_str().unwrap(),
            "--policy",
            "linucb",
        ]),
        &["a directory without pilot.sqlite"],
    );
    fails_with(
        &pilot(&[
            "serve",
            "export",
            "--state",
            empty.to_str().unwrap(),
            "--out",
            dir.join("x.jsonl").to_str().unwrap(),
        ]),
        &["no pilot serve state there"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
