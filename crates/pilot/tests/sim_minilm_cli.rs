//! `pilot simulate --embedder minilm` end to end: the vectors it embeds are the reference
//! MiniLM rows, the run uses exactly those vectors, and priors of another embedder are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

mod common;
#[cfg(feature = "minilm")]
use common::{minilm_reference, read_f32, succeeded};
use common::{pilot, scratch, text};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(feature = "minilm")]
/// Every 53rd RouterBench line (60 queries: every task, both splits) and the reference rows
/// of the same lines; `None` (with the reason printed) when the data or the model is missing.
fn sample() -> Option<(String, Vec<Vec<f32>>)> {
    let (jsonl, reference) = minilm_reference()?;
    let mut lines = String::new();
    let mut rows = Vec::new();
    for (i, line) in jsonl.lines().enumerate().step_by(53) {
        lines.push_str(line);
        lines.push('\n');
        rows.push(reference[i * 384..(i + 1) * 384].to_vec());
    }
    Some((lines, rows))
}

#[cfg(feature = "minilm")]
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| -> f64 {
        x.iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum()
    };
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

#[cfg(feature = "minilm")]
#[test]
fn simulate_embeds_the_dataset_queries_with_minilm() {
    let Some((lines, reference)) = sample() else {
        return;
    };
    let dir = scratch("run");
    let dataset = dir.join("sample.jsonl");
    std::fs::write(&dataset, lines).unwrap();
    let vectors = dir.join("vectors.f32");
    let (out_minilm, out_file) = (dir.join("minilm"), dir.join("file"));
    let common = [
        "simulate",
        "--dataset",
        path(&dataset),
        "--seeds",
        "2",
        "--budget",
        "0.25,1",
        "--prior-dim",
        "8",
    ];

    let mut args = common.to_vec();
    args.extend([
        "--embedder",
        "minilm",
        "--save-embeddings",
        path(&vectors),
        "--out",
        path(&out_minilm),
    ]);
    let stdout = succeeded(&pilot(&args));
    assert!(
        stdout.contains("embedded 60 queries with all-MiniLM-L6-v2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("prior: fitted on 42 learning queries"),
        "{stdout}"
    );

    // The vectors the run embedded are the published model's, row for row.
    let ours = read_f32(&std::fs::read(&vectors).unwrap());
    assert_eq!(ours.len(), reference.len() * 384);
    for (i, (row, expected)) in ours.chunks_exact(384).zip(&reference).enumerate() {
        let cos = cosine(row, expected);
        assert!(cos >= 0.999, "row {i}: cosine {cos} to the reference");
    }

    // The run used exactly those vectors: reading them from the file gives the same results.
    let mut args = common.to_vec();
    args.extend(["--embeddings", path(&vectors), "--out", path(&out_file)]);
    succeeded(&pilot(&args));
    let summary = std::fs::read_to_string(out_minilm.join("summary.csv")).unwrap();
    assert_eq!(
        summary,
        std::fs::read_to_string(out_file.join("summary.csv")).unwrap()
    );

    // Sane results: every quality is in [0, 1] and no policy beats the oracle.
    let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (policy, quality) = (column("policy"), column("quality_mean"));
    let rows: Vec<(String, f64)> = summary
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (cells[policy].to_owned(), cells[quality].parse().unwrap())
        })
        .collect();
    let oracle = rows.iter().find(|(p, _)| p == "oracle").unwrap().1;
    assert!(rows.iter().any(|(p, _)| p == "pilot"));
    for (name, q) in &rows {
        assert!((0.0..=1.0).contains(q), "{name}: quality {q}");
        assert!(
            *q <= oracle + 1e-9,
            "{name}: quality {q} above the oracle's {oracle}"
        );
    }
}

#[cfg(feature = "minilm")]
#[test]
fn simulate_refuses_a_prior_from_another_embedder_before_embedding() {
    let Some((lines, reference)) = sample() else {
        return;
    };
    let dir = scratch("prior");
    let dataset = dir.join("sample.jsonl");
    std::fs::write(&dataset, lines).unwrap();
    let vectors = dir.join("vectors.f32");
    let bytes: Vec<u8> = reference
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&vectors, bytes).unwrap();
    let prior = dir.join("other.prior");
    succeeded(&pilot(&[
        "prior",
        "fit",
        "--dataset",
        path(&dataset),
        "--embeddings",
        path(&vectors),
        "--embedder-id",
        "some-other-embedder",
        "--dim",
        "8",
        "--out",
        path(&prior),
    ]));
    let o = pilot(&[
        "simulate",
        "--dataset",
        path(&dataset),
        "--embedder",
        "minilm",
        "--prior",
        path(&prior),
    ]);
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("some-other-embedder") && stderr.contains("all-MiniLM-L6-v2"),
        "{stderr}"
    );
    assert!(
        !text(&o.stdout).contains("embedded"),
        "embedded before refusing"
    );
}

#[test]
fn simulate_says_how_to_get_minilm_when_it_is_unavailable() {
    let dir = scratch("refused");
    let dataset = dir.join("data.jsonl");
    std::fs::write(
        &dataset,
        "{\"task\": \"t\", \"split\": \"train\", \"query\": \"q\", \"quality\": {\"a\": 1.0}, \
         \"cost_usd\": {\"a\": 0.1}}\n",
    )
    .unwrap();
    let o = pilot(&[
        "simulate",
        "--dataset",
        path(&dataset),
        "--embedder",
        "minilm",
        "--model-dir",
        path(&dir.join("no-model")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = text(&o.stderr);
    let hint = if cfg!(feature = "minilm") {
        "cargo xtask fetch-model"
    } else {
        "--features minilm"
    };
    assert!(stderr.contains(hint), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
