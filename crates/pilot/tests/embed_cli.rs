//! `pilot embed` end to end: raw little-endian f32 rows in input order, and exit status 2
//! with file, line and field on bad input (and no output file left behind).
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is the failure report.

use std::path::Path;
use std::process::Output;

use pilot_core::Embedder;

mod common;
use common::{command, scratch};

fn embed(args: &[&str], input: &Path, output: &Path) -> Output {
    command()
        .arg("embed")
        .args(args)
        .arg(input)
        .arg(output)
        .output()
        .unwrap()
}

fn read_f32(path: &Path) -> Vec<f32> {
    common::read_f32(&std::fs::read(path).unwrap())
}

#[test]
fn hash_rows_are_the_embedder_s_vectors_in_line_order() {
    let dir = scratch("hash");
    let input = dir.join("in.jsonl");
    let texts = [
        "Which planet is largest?",
        "Write a sort in Rust",
        "2 + 2 = ?",
    ];
    let lines: Vec<String> = texts
        .iter()
        .map(|t| serde_json::json!({ "id": 1, "prompt": t }).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let output = dir.join("out.f32");
    let out = embed(
        &["--model", "hash", "--dim", "32", "--field", "prompt"],
        &input,
        &output,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_f32(&output);
    assert_eq!(rows.len(), texts.len() * 32);
    let mut embedder = pilot_embed::HashingEmbedder::new(32).unwrap();
    for (text, row) in texts.iter().zip(rows.chunks_exact(32)) {
        let mut expected = [0.0f32; 32];
        embedder.embed(text, &mut expected).unwrap();
        assert_eq!(row, expected, "{text:?}");
    }
}

#[test]
fn bad_input_names_file_line_and_field_and_writes_nothing() {
    let dir = scratch("bad");
    let cases = [
        (
            "{\"query\": \"ok\"}\n{\"query\": 3}\n",
            "bad.jsonl:2: field `query`: expected a string, found a number",
        ),
        (
            "{\"query\": \"ok\"}\n{\"other\": \"x\"}\n",
            "bad.jsonl:2: field `query` is missing",
        ),
        (
            "{\"query\": \"ok\"}\n\n{\"query\": \"x\"}\n",
            "bad.jsonl:2: empty line",
        ),
        ("{\"query\": \"ok\"\n", "bad.jsonl:1: not valid JSON"),
        ("", "no lines to embed"),
    ];
    for (text, message) in cases {
        let input = dir.join("bad.jsonl");
        std::fs::write(&input, text).unwrap();
        let output = dir.join("out.f32");
        let out = embed(&["--model", "hash"], &input, &output);
        assert_eq!(out.status.code(), Some(2), "{text:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{text:?}: {stderr}");
        assert!(
            !output.exists(),
            "{text:?}: output written despite the error"
        );
    }
}

#[test]
fn minilm_is_refused_clearly_when_unavailable() {
    let dir = scratch("minilm-refused");
    let input = dir.join("in.jsonl");
    std::fs::write(&input, "{\"query\": \"hello\"}\n").unwrap();
    let output = dir.join("out.f32");
    let out = embed(
        &[
            "--model",
            "minilm",
            "--model-dir",
            dir.join("no-model").to_str().unwrap(),
        ],
        &input,
        &output,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hint = if cfg!(feature = "minilm") {
        "cargo xtask fetch-model"
    } else {
        "--features minilm"
    };
    assert!(stderr.contains(hint), "{stderr}");
    assert!(!output.exists());
}

/// With the feature and the fetched model, the command reproduces the reference file's rows.
#[cfg(feature = "minilm")]
#[test]
fn minilm_rows_match_the_reference_embeddings() {
    let Some((jsonl, reference)) = common::minilm_reference() else {
        return;
    };
    let dir = scratch("minilm");
    let input = dir.join("in.jsonl");
    let rows = 20;
    let head: Vec<&str> = jsonl.lines().take(rows).collect();
    std::fs::write(&input, head.join("\n")).unwrap();
    let output = dir.join("out.f32");
    let out = embed(&["--model", "minilm"], &input, &output);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = read_f32(&output);
    assert_eq!(ours.len(), rows * 384);
    for (i, row) in ours.chunks_exact(384).enumerate() {
        let expected = &reference[i * 384..(i + 1) * 384];
        let cos: f64 = row
            .iter()
            .zip(expected)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        assert!(cos >= 0.999, "row {i}: cosine {cos} to the reference");
    }
}
