//! Test helpers: the routing dataset, a replay upstream and `pilot serve` in-process on
//! ephemeral loopback ports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use pilot_serve::replay::{self, Faults, ReplayServer};
use pilot_serve::{Config, Running};
use serde_json::Value;

/// The shared routing dataset (read-only).
pub const DATASET: &str = "/work/shared/data/routerbench-3k.jsonl";

/// Whether the dataset is here; tests that need it say so and return when it is not.
pub fn have_data() -> bool {
    if Path::new(DATASET).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{DATASET} is missing (CI=true: failing rather than skipping)"
    );
    eprintln!("SKIP: {DATASET} is not on this machine");
    false
}

/// A fresh temporary directory.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "pilot-serve-test-{tag}-{}-{}",
        std::process::id(),
        pilot_serve::engine::now_ms()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts a replay upstream on an ephemeral port.
pub async fn replay(faults: Faults) -> ReplayServer {
    replay::start(
        Path::new(DATASET),
        "127.0.0.1:0".parse().unwrap(),
        faults,
        1,
    )
    .await
    .unwrap()
}

/// A serve config for every LLM of `up`, with `extra` TOML appended.
pub fn config(up: &ReplayServer, budget: f64, state: &Path, extra: &str) -> Config {
    let mut text = replay::config_for(up.addr, &up.llms, &up.prices, budget, state, "127.0.0.1:0");
    text.push_str(extra);
    Config::parse(&text).unwrap()
}

/// Starts `pilot serve` in-process on an ephemeral port.
pub async fn serve(config: Config) -> Running {
    pilot_serve::start(config, None).await.unwrap()
}

/// Rows of a split.
pub fn split(ds: &pilot_data::RoutingDataset, name: &str) -> Vec<usize> {
    ds.split_indices(name)
}

/// GET a JSON document.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}
