//! The embedders of `pilot serve`: `minilm` (feature `minilm`; the model from
//! `cargo xtask fetch-model`, a missing model skips unless CI=true or PILOT_REQUIRE_MINILM=1) and
//! `plugin` (feature `plugins`; a built `hash_embedder.wasm`, missing skips unless CI=true) route
//! requests end to end, concurrent requests share MiniLM batches, and a prior fitted for another
//! embedder is refused by name. Without the features, the config names the key and the rebuild.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pilot_serve::Config;
use pilot_serve::replay::Faults;
use serde_json::{Value, json};

/// Decisions over every LLM in a `/v1/router/state` answer.
#[cfg_attr(not(any(feature = "minilm", feature = "plugins")), allow(dead_code))]
fn decisions(state: &Value) -> u64 {
    state["llms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["decisions"].as_u64().unwrap())
        .sum()
}

const POOL: &str = r#"
[[upstreams]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
input_per_mtok = 1.0
output_per_mtok = 2.0
max_output_tokens = 100
[budget]
usd = 1.0
[state]
dir = "st"
"#;

#[cfg(not(feature = "minilm"))]
#[test]
fn minilm_without_the_feature_names_the_key_and_the_rebuild() {
    let e = Config::parse(&format!("{POOL}\n[embedder]\nkind = \"minilm\"\n")).unwrap_err();
    assert_eq!(e.key, "embedder.kind");
    assert!(e.reason.contains("--features minilm"), "{e}");
}

#[cfg(not(feature = "plugins"))]
#[test]
fn plugin_without_the_feature_names_the_key_and_the_rebuild() {
    let e = Config::parse(&format!(
        "{POOL}\n[embedder]\nkind = \"plugin\"\nplugin = \"x.wasm\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "embedder.kind");
    assert!(e.reason.contains("--features plugins"), "{e}");
}

#[test]
fn unknown_kinds_and_bad_batches_name_their_key() {
    let e = Config::parse(&format!("{POOL}\n[embedder]\nkind = \"bert\"\n")).unwrap_err();
    assert_eq!(e.key, "embedder.kind");
    let e = Config::parse(&format!("{POOL}\n[embedder]\nmax_batch = 0\n")).unwrap_err();
    assert_eq!(e.key, "embedder.max_batch");
}

#[cfg_attr(not(any(feature = "minilm", feature = "plugins")), allow(dead_code))]
/// Routes `queries` through a server with `embedder` (TOML of the `[embedder]` table), 16 at a
/// time; returns the router state.
async fn route_through(embedder: &str, queries: &[String]) -> Value {
    let up = replay(Faults::default()).await;
    let dir = tempdir("embedders");
    let cfg = config(&up, 100.0, &dir.join("state"), embedder);
    let running = serve(cfg).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for chunk in queries.chunks(queries.len().div_ceil(16)) {
        let (client, base, chunk) = (client.clone(), base.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for q in chunk {
                let resp = client
                    .post(format!("{base}/v1/chat/completions"))
                    .json(&json!({"model": "pilot", "messages": [{"role": "user", "content": q}]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let state = get_json(&client, &format!("{base}/v1/router/state")).await;
    running.task.abort();
    state
}

#[cfg(feature = "minilm")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_routes_concurrent_requests_in_shared_batches() {
    if !have_data() {
        return;
    }
    if let Err(why) = pilot_minilm::resolve_model_dir(None)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            pilot_minilm::MODEL_FILES
                .iter()
                .all(|f| d.join(f.name).is_file())
                .then_some(())
                .ok_or(format!("the model is not in {}", d.display()))
        })
    {
        if let Err(fail) = pilot_data::Input::MiniLm.missing(&why) {
            panic!("{fail}");
        }
        return;
    }
    let ds = pilot_data::RoutingDataset::load(dataset()).unwrap();
    let queries: Vec<String> = ds
        .split_indices("test")
        .iter()
        .take(64)
        .map(|&r| ds.rows[r].query.clone())
        .collect();
    let state = route_through("[embedder]\nkind = \"minilm\"\n", &queries).await;
    let decisions = decisions(&state);
    assert_eq!(decisions, 64);
    assert!(
        state["versions"]["embedder"]
            .as_str()
            .unwrap()
            .contains("all-MiniLM-L6-v2"),
        "{}",
        state["versions"]
    );
    let embed = &state["overhead_us"]["embed"];
    println!("minilm embedding over 64 requests, 16 clients: {embed}");
    assert_eq!(embed["samples"].as_u64(), Some(64));

    // A prior fitted on hashing vectors is refused: another embedder, named.
    let up = replay(Faults::default()).await;
    let dir = tempdir("minilm-prior");
    let hash_prior = dir.join("hash-prior.bin");
    write_hash_prior(&ds, &hash_prior);
    let cfg = config(
        &up,
        1.0,
        &dir.join("state"),
        &format!(
            "[embedder]\nkind = \"minilm\"\n[policy]\nkind = \"pilot\"\nprior = {:?}\n",
            hash_prior.display().to_string()
        ),
    );
    let Err(e) = pilot_serve::start(cfg, None).await else {
        panic!("a prior of the hashing space started with minilm")
    };
    let msg = format!("{e:#}");
    assert!(
        msg.contains("policy.prior") && msg.contains("all-MiniLM-L6-v2"),
        "{msg}"
    );
}

/// A small prior fitted on 32-d hashing vectors of the learning split.
#[cfg(feature = "minilm")]
fn write_hash_prior(ds: &pilot_data::RoutingDataset, path: &std::path::Path) {
    let dim = 32;
    let mut data = vec![0.0f32; ds.rows.len() * dim];
    for (row, out) in ds.rows.iter().zip(data.chunks_mut(dim)) {
        let _ = pilot_embed::hashing::embed_into(&row.query, out);
    }
    let emb = pilot_data::Embeddings::from_vec(data, dim, "hash").unwrap();
    let learning = pilot_prior::sources::from_routing(ds, &ds.split_indices("train"), 0.5).unwrap();
    let id = pilot_core::Embedder::id(&pilot_embed::HashingEmbedder::new(dim).unwrap()).to_string();
    let params = pilot_prior::FitParams {
        dim: 4,
        embedder_id: id,
        contrastive_epochs: 0,
        ..pilot_prior::FitParams::default()
    };
    let (prior, _) = pilot_prior::fit(&emb, &learning, &params, &mut |_, _, _| {}).unwrap();
    prior.save(path).unwrap();
}

#[cfg(feature = "plugins")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_embedder_plugin_routes_requests() {
    if !have_data() {
        return;
    }
    let wasm = match pilot_plugin_host::locate::find("hash-embedder") {
        Ok(p) => p,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true and {why}"),
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let queries: Vec<String> = (0..32)
        .map(|i| format!("question number {i} about rust"))
        .collect();
    let state = route_through(
        &format!(
            "[embedder]\nkind = \"plugin\"\nplugin = {:?}\nplugin_config = \"d=16\"\n",
            wasm.display().to_string()
        ),
        &queries,
    )
    .await;
    let decisions = decisions(&state);
    assert_eq!(decisions, 32);
    assert!(
        state["versions"]["embedder"]
            .as_str()
            .unwrap()
            .contains("plugin:16"),
        "{}",
        state["versions"]
    );
}
