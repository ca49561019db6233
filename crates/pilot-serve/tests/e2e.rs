//! End to end on loopback: the replay upstream and `pilot serve` on ephemeral ports; the test
//! split replayed concurrently with the recorded quality as feedback; the budget; failures,
//! retries and missing usage; the admin endpoints; bad input; a restart that keeps the state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use pilot_data::RoutingDataset;
use pilot_serve::replay::Faults;
use serde_json::{Value, json};

fn chat(query: &str, model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": query}], "stream": stream})
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    client.post(url).json(body).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_split_with_feedback_then_restart_keeps_state() {
    if !have_data() {
        return;
    }
    let ds = Arc::new(RoutingDataset::load(dataset()).unwrap());
    let test = split(&ds, "test");
    let up = replay(Faults::default()).await;
    let dir = tempdir("e2e");
    let cfg = config(&up, 100.0, &dir.join("state"), "[policy]\nalpha = 0.3\n");
    let running = serve(cfg.clone()).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();

    // 240 rows of the test split, 12 clients at once, recorded quality as feedback.
    let rows: Vec<usize> = test.iter().copied().take(240).collect();
    let mut tasks = Vec::new();
    let grader = format!("http://{}/replay/grade", up.addr);
    for chunk in rows.chunks(20) {
        let (chunk, client, base, ds, grader) = (
            chunk.to_vec(),
            client.clone(),
            base.clone(),
            ds.clone(),
            grader.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut acked = 0u32;
            let mut quality = 0.0;
            for r in chunk {
                let row = &ds.rows[r];
                let resp = post(
                    &client,
                    &format!("{base}/v1/chat/completions"),
                    &chat(&row.query, "pilot", r % 3 == 0),
                )
                .await;
                assert_eq!(resp.status(), 200);
                let id = resp.headers()["x-pilot-request-id"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let model = resp.headers()["x-pilot-model"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let p: f64 = resp.headers()["x-pilot-propensity"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((0.0..=1.0).contains(&p));
                let text = resp.text().await.unwrap();
                if r % 3 == 0 {
                    assert!(text.contains("data: [DONE]"), "{text}");
                    assert!(text.contains(&format!(
                        "\"model\":{}",
                        serde_json::to_string(&model).unwrap()
                    )));
                } else {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["model"], model.as_str());
                }
                // The grader gives the recorded quality.
                let g: Value = post(
                    &client,
                    &grader,
                    &json!({"model": model, "query": row.query}),
                )
                .await
                .json()
                .await
                .unwrap();
                let l = ds.llm_index(&model).unwrap();
                assert_eq!(g["quality"].as_f64(), row.quality[l]);
                if let Some(q) = row.quality[l] {
                    let fb = post(
                        &client,
                        &format!("{base}/v1/feedback"),
                        &json!({"request_id": id, "reward": q}),
                    )
                    .await;
                    assert_eq!(fb.status(), 200);
                    acked += 1;
                    quality += q;
                    let again = post(
                        &client,
                        &format!("{base}/v1/feedback"),
                        &json!({"request_id": id, "reward": q}),
                    )
                    .await;
                    assert_eq!(again.status(), 409);
                }
            }
            (acked, quality)
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap().0;
    }
    let state = get_json(&client, &format!("{base}/v1/router/state")).await;
    let llms = state["llms"].as_array().unwrap();
    let decisions: u64 = llms.iter().map(|l| l["decisions"].as_u64().unwrap()).sum();
    let feedbacks: u64 = llms.iter().map(|l| l["feedbacks"].as_u64().unwrap()).sum();
    assert_eq!(decisions, 240);
    assert_eq!(feedbacks, u64::from(acked));
    // Every call settled from its usage: nothing reserved, spent = what the upstream billed.
    let stats = get_json(&client, &format!("http://{}/replay/stats", up.addr)).await;
    assert_eq!(state["budget"]["reserved_usd"].as_f64().unwrap(), 0.0);
    let spent = state["budget"]["spent_usd"].as_f64().unwrap();
    let billed = stats["billed_usd"].as_f64().unwrap();
    // Both round each call to a nano-dollar (the guard up, the replay to nearest).
    assert!(
        (spent - billed).abs() <= 240.0 * 1e-9,
        "spent {spent} billed {billed}"
    );
    assert_eq!(state["budget"]["overruns"].as_u64().unwrap(), 0);

    // Metrics name every LLM and the histograms.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pilot_routing_overhead_seconds_bucket"));
    assert!(metrics.contains("pilot_decisions_total{llm=\"claude-v2\"}"));
    assert!(metrics.contains("pilot_feedback_delay_seconds_count"));

    // Restart on the same state directory: the learned state and the ledger are the same.
    running.task.abort();
    running.engine.snapshot_now().await.unwrap();
    drop(running);
    let again = serve(cfg).await;
    let base2 = format!("http://{}", again.addr);
    let state2 = get_json(&client, &format!("{base2}/v1/router/state")).await;
    assert_eq!(state["llms"], state2["llms"]);
    assert_eq!(state["budget"], state2["budget"]);
    assert_eq!(state["events"], state2["events"]);
    // And it keeps learning from where it was.
    let resp = post(
        &client,
        &format!("{base2}/v1/chat/completions"),
        &chat(&ds.rows[test[300]].query, "pilot", false),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_holds_failures_retry_and_bad_input_is_refused() {
    if !have_data() {
        return;
    }
    let ds = RoutingDataset::load(dataset()).unwrap();
    let test = split(&ds, "test");
    let up = replay(Faults::default()).await;
    let dir = tempdir("budget");
    let budget = 0.02;
    let text = pilot_serve::replay::config_for(up.addr, &up.llms, &up.prices, 1.0, &dir.join("state"), "127.0.0.1:0")
        .replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\nclient_keys = [\"client-key-1\"]\nadmin_keys = [\"admin-key-1\"]\nmax_body_bytes = 65536\nmax_attempts = 10",
        );
    let cfg = pilot_serve::Config::parse(&text).unwrap();
    let running = serve(cfg).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let auth = |rb: reqwest::RequestBuilder| rb.bearer_auth("client-key-1");
    let admin = |rb: reqwest::RequestBuilder| rb.bearer_auth("admin-key-1");
    let url = format!("{base}/v1/chat/completions");

    // Authentication.
    let r = post(&client, &url, &chat("hi", "pilot", false)).await;
    assert_eq!(r.status(), 401);
    // Malformed JSON: 400 with the reason.
    let r = auth(client.post(&url))
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_json");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("EOF"),
        "{v}"
    );
    let r = auth(client.post(&url))
        .json(&json!({"model": "pilot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("messages"));
    // Too large a body: 413.
    let big = "x".repeat(70_000);
    let r = auth(client.post(&url))
        .json(&chat(&big, "pilot", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Unknown model: 404.
    let r = auth(client.post(&url))
        .json(&chat("hi", "no-such-llm", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Feedback errors.
    let fb = format!("{base}/v1/feedback");
    let r = auth(client.post(&fb))
        .json(&json!({"request_id": 12345, "reward": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = auth(client.post(&fb)).body("nope").send().await.unwrap();
    assert_eq!(r.status(), 400);

    // A pinned request goes to that LLM with propensity 1 and is charged.
    let q = &ds.rows[test[0]].query;
    let r = auth(client.post(&url))
        .json(&chat(q, "claude-v2", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-pilot-model"], "claude-v2");
    assert_eq!(r.headers()["x-pilot-propensity"], "1.000000");
    let id = r.headers()["x-pilot-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let r = auth(client.post(&fb))
        .json(&json!({"request_id": id, "reward": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // Admin: only two LLMs enabled, one of them always failing: the request is retried on
    // the other and answered.
    let admin_url = |p: &str| format!("{base}/admin/{p}");
    let r = auth(client.post(admin_url("llms/disable")))
        .json(&json!({"name": "claude-v1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for name in &up.llms {
        if name != "claude-instant-v1" && name != "mistralai/mistral-7b-chat" {
            let r = admin(client.post(admin_url("llms/disable")))
                .json(&json!({"name": name}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{name}");
        }
    }
    client
        .post(format!("http://{}/replay/faults", up.addr))
        .json(&json!({"fail_models": ["mistralai/mistral-7b-chat"]}))
        .send()
        .await
        .unwrap();
    for &r in &test[1..6] {
        let resp = auth(client.post(&url))
            .json(&chat(&ds.rows[r].query, "pilot", false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-pilot-model"], "claude-instant-v1");
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "pilot_upstream_errors_total{llm=\"mistralai/mistral-7b-chat\",kind=\"5xx\"}"
        ),
        "{metrics}"
    );
    // Every LLM failing: one clear error, nothing held.
    client
        .post(format!("http://{}/replay/faults", up.addr))
        .json(&json!({"fail_models": ["mistralai/mistral-7b-chat", "claude-instant-v1"]}))
        .send()
        .await
        .unwrap();
    let resp = auth(client.post(&url))
        .json(&chat(&ds.rows[test[7]].query, "pilot", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_failed");
    let state = get_json_auth(&client, &format!("{base}/v1/router/state")).await;
    assert_eq!(state["budget"]["reserved_usd"].as_f64().unwrap(), 0.0);

    // Missing usage: the whole hold is charged.
    client
        .post(format!("http://{}/replay/faults", up.addr))
        .json(&json!({"missing_usage_rate": 1.0}))
        .send()
        .await
        .unwrap();
    let before = state["budget"]["spent_usd"].as_f64().unwrap();
    let resp = auth(client.post(&url))
        .json(&chat(&ds.rows[test[8]].query, "claude-instant-v1", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let state = get_json_auth(&client, &format!("{base}/v1/router/state")).await;
    let after = state["budget"]["spent_usd"].as_f64().unwrap();
    let p = up
        .llms
        .iter()
        .position(|n| n == "claude-instant-v1")
        .unwrap();
    let price = up.prices[p].per_mtok;
    let max_tokens = up.prices[p].max_tokens;
    assert!(
        after - before >= max_tokens as f64 * price / 1e6 * 0.999,
        "charged {} < the output part of the hold",
        after - before
    );

    // The budget: a new period of 0.02 USD, everything enabled again, no faults; requests
    // until nothing fits.
    let r = admin(client.post(admin_url("budget/new-period")))
        .json(&json!({"usd": budget}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let billed_before =
        get_json(&client, &format!("http://{}/replay/stats", up.addr)).await["billed_usd"]
            .as_f64()
            .unwrap();
    client
        .post(format!("http://{}/replay/faults", up.addr))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    for name in &up.llms {
        admin(client.post(admin_url("llms/enable")))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
    }
    let mut exhausted = 0;
    for &r in test.iter().cycle().take(400) {
        let resp = auth(client.post(&url))
            .json(&chat(&ds.rows[r].query, "pilot", false))
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => {}
            402 => {
                let v: Value = resp.json().await.unwrap();
                assert_eq!(v["error"]["code"], "budget_exhausted");
                exhausted += 1;
            }
            s => panic!("status {s}"),
        }
    }
    let state = get_json_auth(&client, &format!("{base}/v1/router/state")).await;
    let stats = get_json(&client, &format!("http://{}/replay/stats", up.addr)).await;
    let (spent, reserved) = (
        state["budget"]["spent_usd"].as_f64().unwrap(),
        state["budget"]["reserved_usd"].as_f64().unwrap(),
    );
    assert!(exhausted > 0, "the budget of {budget} USD never ran out");
    assert!(
        spent + reserved <= budget + 1e-12,
        "spent {spent} + reserved {reserved} > {budget}"
    );
    assert!(stats["billed_usd"].as_f64().unwrap() - billed_before <= budget + 1e-12);

    // Raise the budget and start a new period: answered again.
    let r = admin(client.post(admin_url("budget/new-period")))
        .json(&json!({"usd": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resp = auth(client.post(&url))
        .json(&chat(&ds.rows[test[0]].query, "pilot", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A budget cut below what is spent is refused.
    let r = admin(client.post(admin_url("budget")))
        .json(&json!({"usd": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // Prices change live; a new LLM joins (same replay, model id of an existing one).
    let r = admin(client.post(admin_url("llms/price")))
        .json(&json!({"name": "claude-v2", "input_per_mtok": 99.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(client.post(admin_url("llms")))
        .json(&json!({"name": "gpt4-again", "model": "gpt-4-1106-preview", "base_url": format!("http://{}/v1", up.addr), "input_per_mtok": 1.0, "output_per_mtok": 1.0, "max_output_tokens": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resp = auth(client.post(&url))
        .json(&chat(&ds.rows[test[0]].query, "gpt4-again", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "gpt4-again");
    let models = auth(client.get(format!("{base}/v1/models")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt4-again")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn get_json_auth(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .bearer_auth("client-key-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn kill_9_under_load_loses_no_feedback_and_never_overspends() {
    if !have_data() {
        return;
    }
    let args = pilot_serve::load::LoadArgs {
        dataset: dataset(),
        clients: 16,
        requests: 600,
        budget: 0.05,
        error_rate: 0.1,
        kill_at: 0.5,
        stream_every: 5,
        serve_bin: Some(env!("CARGO_BIN_EXE_pilot-serve").into()),
        state_dir: Some(tempdir("kill9")),
        exploration: "epsilon".into(),
        // Not pinned (`server_cpus`): that would move this whole test process.
        ..pilot_serve::load::LoadArgs::defaults().unwrap()
    };
    let r = pilot_serve::load::run_report(&args).unwrap();
    // The state after kill -9 and restart is the replay of the stored events.
    let config =
        pilot_serve::Config::load(&args.state_dir.as_ref().unwrap().join("pilot.toml")).unwrap();
    let events = pilot_serve::engine::check_replay(&config).unwrap();
    assert!(events > 1000, "{events} events");
    pilot_serve::load::print_report(&args, &r);
    assert_eq!(r.kills, 1);
    assert!(r.ok > 100, "{r:?}");
    assert!(r.failed <= args.clients as u64, "{r:?}");
    assert!(
        r.feedback_in_state >= r.feedback_acked,
        "lost feedback: {r:?}"
    );
    assert!(r.feedback_in_state <= r.feedback_sent, "{r:?}");
    assert!(r.billed <= r.ledger.0 + 1e-12, "overspend: {r:?}");
    // What the upstream billed is covered by the ledger: settled costs plus the holds a crash
    // left open (charged conservatively).
    assert!(r.billed <= r.ledger.1 + r.ledger.2 + 1e-6, "{r:?}");
    assert!(r.ledger.1 + r.ledger.2 <= r.ledger.0 + 1e-12, "{r:?}");
    let _ = std::fs::remove_dir_all(args.state_dir.as_ref().unwrap());
}
