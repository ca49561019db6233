//! The curl examples of docs/serve.md, run against a live proxy over the replay upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pilot_serve::replay::Faults;

fn curl_block() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/serve.md"))
        .unwrap();
    let at = doc
        .find("<!-- test: curl -->")
        .expect("the marked curl block");
    let rest = &doc[at..];
    let start = rest.find("```sh\n").unwrap() + "```sh\n".len();
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_examples_in_the_docs_work() {
    if !have_data() {
        return;
    }
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "curl is missing"
        );
        eprintln!("SKIP: curl is not installed");
        return;
    }
    let up = replay(Faults::default()).await;
    let dir = tempdir("curl");
    let running = serve(config(&up, 1.0, &dir.join("state"), "")).await;
    let script = curl_block();
    let base = format!("http://{}", running.addr);
    let cwd = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("PILOT", &base)
            .current_dir(&cwd)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the docs' curl block failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("\"object\":\"chat.completion\""),
        "{stdout}"
    );
    assert!(stdout.contains("data: [DONE]"), "{stdout}");
    assert!(stdout.contains("\"ok\":true"), "feedback: {stdout}");
    assert!(stdout.contains("pilot_spent_usd"), "{stdout}");
    let state = running.engine.state_json();
    let feedbacks: u64 = state["llms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["feedbacks"].as_u64().unwrap())
        .sum();
    assert_eq!(feedbacks, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
