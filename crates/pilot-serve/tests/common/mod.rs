//! Test helpers: the routing dataset, a replay upstream and `pilot serve` in-process on
//! ephemeral loopback ports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod redis_server;

use std::path::{Path, PathBuf};

use pilot_serve::replay::{self, Faults, ReplayServer};
use pilot_serve::{Config, Running};
use serde_json::Value;

/// The shared routing dataset (read-only): `routerbench-3k.jsonl` in the shared data folder
/// (`pilot_data::shared_data_dir`: `$PILOT_SHARED_DATA`, else `../shared/data` beside the
/// checkout).
pub fn dataset() -> PathBuf {
    pilot_data::shared_data_dir().join("routerbench-3k.jsonl")
}

/// Whether the dataset is here; tests that need it return when it is not (the one rule of
/// `pilot_data::Input`: skipped on a developer's machine, a failure under `CI=true`).
pub fn have_data() -> bool {
    match pilot_data::shared_file("routerbench-3k.jsonl") {
        Ok(_) => true,
        Err(why) => {
            if let Err(e) = pilot_data::Input::Data.missing(&why) {
                panic!("{e}");
            }
            false
        }
    }
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
    replay::start(&dataset(), "127.0.0.1:0".parse().unwrap(), faults, 1)
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
