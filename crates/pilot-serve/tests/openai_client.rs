//! The official `openai` Python package pointed at `pilot serve` (base_url), streaming and
//! not, in a venv this test creates. Skips with a message when the package cannot be
//! installed; fails instead under CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pilot_serve::replay::Faults;
use serde_json::Value;

const SCRIPT: &str = r#"
import json, sys, urllib.request
from openai import OpenAI
base, key, query = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=30)
raw = client.chat.completions.with_raw_response.create(
    model="pilot", messages=[{"role": "user", "content": query}])
answer = raw.parse()
rid = raw.headers["x-pilot-request-id"]
out = {"model": answer.model, "header_model": raw.headers["x-pilot-model"],
       "content": answer.choices[0].message.content,
       "usage": answer.usage.total_tokens if answer.usage else None}
stream = client.chat.completions.create(
    model="pilot", messages=[{"role": "user", "content": query}], stream=True,
    stream_options={"include_usage": True})
parts, models, usage = [], set(), None
for chunk in stream:
    models.add(chunk.model)
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage.total_tokens
out["stream_content"] = "".join(parts)
out["stream_models"] = sorted(models)
out["stream_usage"] = usage
models = client.models.list()
out["models"] = [m.id for m in models.data]
req = urllib.request.Request(base + "/v1/feedback", method="POST",
    data=json.dumps({"request_id": rid, "reward": 0.75}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
out["feedback"] = json.loads(urllib.request.urlopen(req).read())
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    out["unknown_model"] = "accepted"
except Exception as e:
    out["unknown_model"] = type(e).__name__
print(json.dumps(out))
"#;

fn skip_or_fail(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "openai client test cannot run under CI=true: {why}"
    );
    eprintln!("SKIP: {why}");
}

/// A venv with `openai` under the target dir (made once, reused).
fn venv() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openai-venv");
    let python = dir.join("bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import openai"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.exists() && ok(&python) {
        return Some(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        skip_or_fail(&format!("python3 -m venv failed: {made:?}"));
        return None;
    }
    let pip = Command::new(dir.join("bin/pip"))
        .args(["install", "-q", "openai"])
        .output();
    if !pip.as_ref().is_ok_and(|o| o.status.success()) || !ok(&python) {
        skip_or_fail(&format!("pip install openai failed: {pip:?}"));
        return None;
    }
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_works_against_the_proxy() {
    if !have_data() {
        return;
    }
    let Some(python) = tokio::task::spawn_blocking(venv).await.unwrap() else {
        return;
    };
    let ds = pilot_data::RoutingDataset::load(dataset()).unwrap();
    let query = ds.rows[ds.split_indices("test")[0]].query.clone();
    let up = replay(Faults::default()).await;
    let dir = tempdir("openai");
    let text = pilot_serve::replay::config_for(
        up.addr,
        &up.llms,
        &up.prices,
        1.0,
        &dir.join("state"),
        "127.0.0.1:0",
    )
    .replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nclient_keys = [\"sk-test-client\"]",
    );
    let running = serve(pilot_serve::Config::parse(&text).unwrap()).await;
    let base = format!("http://{}", running.addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-c", SCRIPT, &base, "sk-test-client", &query])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let model = v["model"].as_str().unwrap();
    assert!(up.llms.iter().any(|l| l == model), "{v}");
    assert_eq!(v["header_model"], model);
    assert!(
        v["content"]
            .as_str()
            .unwrap()
            .starts_with("Replayed answer of"),
        "{v}"
    );
    assert!(v["usage"].as_u64().unwrap() > 0);
    assert!(
        v["stream_content"]
            .as_str()
            .unwrap()
            .starts_with("Replayed answer of"),
        "{v}"
    );
    assert_eq!(v["stream_models"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["stream_usage"].as_u64().unwrap() > 0, "{v}");
    assert!(v["models"].as_array().unwrap().iter().any(|m| m == "pilot"));
    assert_eq!(v["feedback"]["ok"], true);
    assert_eq!(v["unknown_model"], "NotFoundError");
    let _ = std::fs::remove_dir_all(&dir);
}
