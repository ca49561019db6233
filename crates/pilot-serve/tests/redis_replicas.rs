//! Scale-out through Redis, for real: a `redis-server` of the test's own (loopback, free port,
//! temporary directory, append-only file), three `pilot serve` replicas in-process, one replay
//! upstream and concurrent clients replaying part of the routerbench test split with feedback
//! sent to another replica than the one that routed. Checks: spent ≤ budget (Redis and every
//! folded router agree to the unit), no lost feedback, duplicate feedback 409 across replicas,
//! bit-identical replica states, quality within noise of one SQLite replica serving the same
//! traffic; then a replica killed mid-request and restarted, and Redis restarted midway.
//!
//! Without `/usr/bin/redis-server` the tests say "skipping" (CI=true: they fail).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::redis_server::RedisServer;
use common::*;
use pilot_data::RoutingDataset;
use pilot_serve::replay::{Faults, ReplayServer};
use pilot_serve::{Config, Running};
use serde_json::{Value, json};

fn shared_config(up: &ReplayServer, budget: f64, url: &str, extra: &str) -> Config {
    let text = pilot_serve::replay::config_for(
        up.addr,
        &up.llms,
        &up.prices,
        budget,
        Path::new("unused"),
        "127.0.0.1:0",
    )
    .replace("dir = \"unused\"", &format!("backend = {url:?}"));
    Config::parse(&format!("{text}{extra}")).unwrap()
}

fn chat(query: &str) -> Value {
    json!({"model": "pilot", "messages": [{"role": "user", "content": query}]})
}

/// What the clients saw.
#[derive(Default, Debug)]
struct Seen {
    ok: u32,
    refused: u32,
    acked: u32,
    quality: f64,
}

/// `clients` tasks replay `rows`; request i goes to replica i % n, its feedback to the next
/// one, a duplicate feedback to the one after (409 expected when there are several).
async fn drive(ds: &Arc<RoutingDataset>, rows: &[usize], bases: &[String], clients: usize) -> Seen {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    let per = rows.len().div_ceil(clients);
    for (c, chunk) in rows.chunks(per.max(1)).enumerate() {
        let (chunk, client, bases, ds) =
            (chunk.to_vec(), client.clone(), bases.to_vec(), ds.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let n = bases.len();
            for (i, r) in chunk.into_iter().enumerate() {
                let k = c + i;
                let row = &ds.rows[r];
                let resp = client
                    .post(format!("{}/v1/chat/completions", bases[k % n]))
                    .json(&chat(&row.query))
                    .send()
                    .await
                    .unwrap();
                if resp.status() == 402 {
                    seen.refused += 1;
                    continue;
                }
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
                seen.ok += 1;
                let id = resp.headers()["x-pilot-request-id"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let model = resp.headers()["x-pilot-model"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let _ = resp.bytes().await.unwrap();
                let l = ds.llm_index(&model).unwrap();
                let Some(q) = row.quality[l] else {
                    continue;
                };
                let fb = client
                    .post(format!("{}/v1/feedback", bases[(k + 1) % n]))
                    .json(&json!({"request_id": id, "reward": q}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(fb.status(), 200, "{}", fb.text().await.unwrap());
                seen.acked += 1;
                seen.quality += q;
                let again = client
                    .post(format!("{}/v1/feedback", bases[(k + 2) % n]))
                    .json(&json!({"request_id": id, "reward": q}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(again.status(), 409);
            }
            seen
        }));
    }
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.unwrap();
        all.ok += s.ok;
        all.refused += s.refused;
        all.acked += s.acked;
        all.quality += s.quality;
    }
    all
}

/// Every replica folds the whole stream: the same event count and the same snapshot bytes;
/// Redis's ledger equals every folded ledger and spent + reserved ≤ budget. Returns the
/// feedbacks learned (from the first replica's state).
async fn agree(replicas: &[&Running]) -> u64 {
    for r in replicas {
        let (redis, folded) = r.engine.shared_ledgers().unwrap();
        assert_eq!(redis, folded, "Redis ledger vs folded ledger");
        let [budget, spent, reserved] = redis;
        assert!(
            spent + reserved <= budget,
            "spent {spent} + reserved {reserved} > budget {budget}"
        );
    }
    // A tick may append an expiry between two folds: fold again until all saw the same.
    let mut same = false;
    for _ in 0..50 {
        let states: Vec<(u64, Vec<u8>)> = replicas
            .iter()
            .map(|r| r.engine.fold_and_save().unwrap())
            .collect();
        if states.iter().all(|s| s.0 == states[0].0) {
            for s in &states[1..] {
                assert!(
                    s.1 == states[0].1,
                    "replicas at event {} hold different states",
                    s.0
                );
            }
            same = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(same, "the replicas never folded the same prefix");
    let state = replicas[0].engine.state_json();
    state["llms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["feedbacks"].as_u64().unwrap())
        .sum()
}

fn rows(ds: &RoutingDataset, n: usize) -> Vec<usize> {
    split(ds, "test").into_iter().take(n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_one_budget_and_one_learned_state() {
    let Some(redis) = RedisServer::start("redis-3") else {
        return;
    };
    if !have_data() {
        return;
    }
    let ds = Arc::new(RoutingDataset::load(dataset()).unwrap());
    let up = replay(Faults::default()).await;
    // 240 rows of the test split (CI time; PILOT_REDIS_ROWS=N for more, up to the split's
    // size), and a budget that binds before the end.
    let n: usize = std::env::var("PILOT_REDIS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240);
    let rows = rows(&ds, n);
    let n = rows.len();
    let budget = 0.02 * n as f64 / 240.0;
    let mut cfg = shared_config(&up, budget, &redis.url(), "[policy]\nalpha = 0.3\n");
    // Snapshots in Redis every 50 events: the late replica below joins from one.
    cfg.state.snapshot_every = 50;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(serve(cfg.clone()).await);
    }
    let bases: Vec<String> = replicas
        .iter()
        .map(|r| format!("http://{}", r.addr))
        .collect();
    let seen = drive(&ds, &rows, &bases, 12).await;
    assert_eq!(seen.ok + seen.refused, n as u32);
    let refs: Vec<&Running> = replicas.iter().collect();
    let feedbacks = agree(&refs).await;
    assert_eq!(feedbacks, u64::from(seen.acked), "lost feedback");
    // Unknown request ids: 404 on every replica.
    let client = reqwest::Client::new();
    for b in &bases {
        let r = client
            .post(format!("{b}/v1/feedback"))
            .json(&json!({"request_id": 1_000_000_000_000_000u64, "reward": 1.0}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    // A replica joining now (from the shared snapshot + stream) holds the same state.
    {
        let mut conn = redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let snap: Option<u64> = redis::cmd("HGET")
            .arg("pilot:snap")
            .arg("seq")
            .query(&mut conn)
            .unwrap();
        assert!(
            snap.is_some_and(|s| s >= 50),
            "no shared snapshot: {snap:?}"
        );
    }
    let late = serve(cfg.clone()).await;
    let refs: Vec<&Running> = replicas.iter().chain([&late]).collect();
    agree(&refs).await;
    // Admin changes on one replica reach the others through the stream; bad ones change
    // nothing anywhere.
    let llm = up.llms[0].clone();
    let mut price = replicas[0].engine.price(&llm).unwrap();
    price.input_per_mtok *= 2.0;
    replicas[0].engine.set_price(&llm, price).await.unwrap();
    replicas[1].engine.set_enabled(&llm, false).await.unwrap();
    let mut bad = price;
    bad.input_per_mtok = -1.0;
    let e = replicas[2].engine.set_price(&llm, bad).await.unwrap_err();
    assert_eq!(
        e.kind(),
        Some(pilot_core::ErrorKind::InvalidParameter),
        "{e}"
    );
    let e = replicas[2]
        .engine
        .set_enabled("no-such-llm", false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(pilot_core::ErrorKind::UnknownArm), "{e}");
    agree(&refs).await;
    let seen_by = |r: &Running| {
        let state = r.engine.state_json();
        let l = state["llms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == llm.as_str())
            .unwrap()
            .clone();
        (
            l["enabled"].as_bool().unwrap(),
            l["input_per_mtok"].as_f64().unwrap(),
        )
    };
    for r in &refs {
        assert_eq!(seen_by(r), (false, price.input_per_mtok));
    }
    // A replica with other policy settings is refused, naming both.
    let mut other = cfg.clone();
    other.policy.alpha = 0.9;
    let Err(e) = pilot_serve::start(other, None).await else {
        panic!("a replica with another alpha joined");
    };
    assert!(
        e.to_string()
            .contains("every replica needs the same policy"),
        "{e}"
    );

    // One SQLite replica serving the same rows with the same clients and budget.
    let dir = tempdir("redis-vs-one");
    let one = serve(config(
        &up,
        budget,
        &dir.join("state"),
        "[policy]\nalpha = 0.3\n",
    ))
    .await;
    let alone = drive(&ds, &rows, &[format!("http://{}", one.addr)], 12).await;
    let mean = |s: &Seen| s.quality / f64::from(s.ok.max(1));
    let spent = |r: &Running| {
        r.engine.state_json()["budget"]["spent_usd"]
            .as_f64()
            .unwrap()
    };
    eprintln!(
        "spent: three replicas {} USD, one replica {} USD, budget {budget} USD",
        spent(&replicas[0]),
        spent(&one)
    );
    eprintln!(
        "three replicas: {} answered, {} refused (budget), mean quality {:.3}; one replica: {} answered, {} refused, mean quality {:.3}",
        seen.ok,
        seen.refused,
        mean(&seen),
        alone.ok,
        alone.refused,
        mean(&alone)
    );
    // Within noise: the standard error of a mean of ~200 rewards in [0, 1] is about 0.03 (the
    // two runs see the same rows but in different interleavings).
    assert!((mean(&seen) - mean(&alone)).abs() < 0.1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_request_and_redis_restarted_midway() {
    let Some(mut redis) = RedisServer::start("redis-kill") else {
        return;
    };
    if !have_data() {
        return;
    }
    let ds = Arc::new(RoutingDataset::load(dataset()).unwrap());
    let up = replay(Faults::default()).await;
    let rows = rows(&ds, 270);
    // A short feedback window (6 s: long enough for any call of this test on a loaded
    // machine): the killed replica's open hold expires within the test.
    let cfg = shared_config(&up, 100.0, &redis.url(), "[policy]\nalpha = 0.3\n");
    let mut cfg_short = cfg.clone();
    cfg_short.state.feedback_window_secs = 6;
    let cfg = cfg_short;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(serve(cfg.clone()).await);
    }
    let bases = |rs: &[Running]| -> Vec<String> {
        rs.iter().map(|r| format!("http://{}", r.addr)).collect()
    };
    let mut seen = drive(&ds, &rows[..90], &bases(&replicas), 9).await;

    // Replica 0 routes (holds) and dies before the call returns.
    let hold_before = replicas[0].engine.shared_ledgers().unwrap().0;
    let id = replicas[0].engine.next_request_id();
    let base = replicas[0]
        .engine
        .embed(&ds.rows[rows[100]].query)
        .await
        .unwrap();
    let routed = replicas[0]
        .engine
        .route(id, &base, 1000, 256, &[], None)
        .await
        .unwrap()
        .unwrap();
    let held = replicas[0].engine.shared_ledgers().unwrap().0;
    assert_eq!(held[2], hold_before[2] + routed.hold_units);
    let dead = replicas.remove(0);
    dead.task.abort();
    drop(dead);
    // Its hold expires (the survivors' ticks) and stays charged in full.
    tokio::time::sleep(Duration::from_millis(8000)).await;
    let after = replicas[0].engine.shared_ledgers().unwrap().0;
    assert_eq!(after[2], 0, "the dead replica's hold is still reserved");
    assert!(
        after[1] >= held[1] + routed.hold_units,
        "the expired hold was not charged"
    );
    // It restarts and catches up.
    replicas.push(serve(cfg.clone()).await);
    let s = drive(&ds, &rows[90..180], &bases(&replicas), 9).await;
    seen.acked += s.acked;

    // Redis crashes (kill -9) and restarts from its append-only file: a request meanwhile is
    // refused (503), not spent blind; afterwards every replica reconnects and goes on.
    redis.crash();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/chat/completions", bases(&replicas)[1]))
        .json(&chat(&ds.rows[rows[200]].query))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
    redis.spawn();
    let s = drive(&ds, &rows[180..], &bases(&replicas), 9).await;
    seen.acked += s.acked;
    // Let every decision's window pass (the expiries are events too), then compare.
    tokio::time::sleep(Duration::from_millis(7500)).await;
    let refs: Vec<&Running> = replicas.iter().collect();
    let feedbacks = agree(&refs).await;
    assert_eq!(feedbacks, u64::from(seen.acked), "lost feedback");
}

/// Three `pilot serve` processes on one Redis under the load tool: 10% upstream errors (retries
/// release and re-route the same request id), feedback to another replica, and `kill -9` of
/// one replica halfway, restarted: no feedback lost, nothing overspent.
#[test]
fn kill_9_of_one_of_three_replica_processes_under_load() {
    let Some(redis) = RedisServer::start("redis-load") else {
        return;
    };
    if !have_data() {
        return;
    }
    let args = pilot_serve::load::LoadArgs {
        dataset: dataset(),
        clients: 12,
        requests: 450,
        budget: 0.05,
        error_rate: 0.1,
        kill_at: 0.5,
        stream_every: 5,
        serve_bin: Some(env!("CARGO_BIN_EXE_pilot-serve").into()),
        state_dir: Some(tempdir("redis-load")),
        exploration: "epsilon".into(),
        redis: Some(redis.url()),
        replicas: 3,
        // Not pinned (`server_cpus`): that would move this whole test process.
        ..pilot_serve::load::LoadArgs::defaults().unwrap()
    };
    let r = pilot_serve::load::run_report(&args).unwrap();
    pilot_serve::load::print_report(&args, &r);
    assert_eq!(r.kills, 1);
    assert_eq!(r.ok + r.budget_exhausted + r.failed, 450);
    assert!(r.ok > 100, "{r:?}");
    let (budget, spent, reserved) = r.ledger;
    assert!(spent + reserved <= budget + 1e-12, "{r:?}");
    assert!(r.billed <= budget + 1e-12, "{r:?}");
    // Every feedback answered 200 is in the shared state.
    assert!(r.feedback_in_state >= r.feedback_acked, "{r:?}");
}
