//! The embedder reproduces the published model: reference cosines and reference embeddings.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests may unwrap: a panic is the failure report.

mod common;

use common::{cosine, data_dir, dot, model_or_skip};
use pilot_core::{Embedder, ErrorKind};
use pilot_data::Input;
use pilot_minilm::MiniLm;

#[test]
fn published_reference_cosines() {
    let Some(model) = model_or_skip("published_reference_cosines") else {
        return;
    };
    let pairs = [
        (
            "The cat sits outside",
            "The dog plays in the garden",
            0.2838,
        ),
        ("A man is playing guitar", "A woman watches TV", -0.0327),
        (
            "The new movie is awesome",
            "The new movie is so great",
            0.8939,
        ),
    ];
    for (a, b, expected) in pairs {
        let mut v = vec![0.0f32; 2 * MiniLm::DIM];
        model.embed_batch(&[a, b], &mut v).unwrap();
        let (va, vb) = v.split_at(MiniLm::DIM);
        let got = dot(va, vb);
        eprintln!("cos({a:?}, {b:?}) = {got:.4} (published {expected})");
        assert!(
            (got - expected).abs() <= 0.001,
            "cos({a:?}, {b:?}) = {got:.5}, published {expected}"
        );
    }
}

/// The first `n` `query` fields of routerbench-3k.jsonl and their reference embeddings, or
/// `None` (printed) when the shared data is missing on a developer's machine; a failure under
/// `CI=true` or `PILOT_REQUIRE_DATA=1`. Callers load the model first, so a missing model is
/// reported (and, when required, fails) before the data is looked at.
fn routerbench_reference(n: usize) -> Option<(Vec<String>, Vec<f32>)> {
    let dir = data_dir();
    let jsonl = dir.join("routerbench-3k.jsonl");
    let vectors = dir.join("routerbench-3k.minilm.f32");
    let (Ok(text), Ok(bytes)) = (std::fs::read_to_string(&jsonl), std::fs::read(&vectors)) else {
        let why = format!(
            "shared data missing ({} or {})",
            jsonl.display(),
            vectors.display()
        );
        if let Err(fail) = Input::Data.missing(&why) {
            panic!("{fail}");
        }
        return None;
    };
    let queries: Vec<String> = text
        .lines()
        .take(n)
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["query"].as_str().unwrap().to_owned()
        })
        .collect();
    let reference: Vec<f32> = bytes
        .chunks_exact(4)
        .take(n * MiniLm::DIM)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(queries.len(), n);
    assert_eq!(reference.len(), n * MiniLm::DIM);
    Some((queries, reference))
}

#[test]
fn matches_routerbench_reference_embeddings_on_first_100_rows() {
    let Some(model) = model_or_skip("matches_routerbench_reference_embeddings") else {
        return;
    };
    let Some((queries, reference)) = routerbench_reference(100) else {
        return;
    };
    let mut ours = vec![0.0f32; queries.len() * MiniLm::DIM];
    model.embed_batch(&queries, &mut ours).unwrap();
    let mut worst = (f64::INFINITY, 0);
    for (i, (a, b)) in ours
        .chunks_exact(MiniLm::DIM)
        .zip(reference.chunks_exact(MiniLm::DIM))
        .enumerate()
    {
        let c = cosine(a, b);
        if c < worst.0 {
            worst = (c, i);
        }
        assert!((dot(a, a) - 1.0).abs() < 1e-5, "row {i} is not unit length");
    }
    eprintln!(
        "lowest cosine to the reference: {:.7} (row {})",
        worst.0, worst.1
    );
    assert!(
        worst.0 >= 0.999,
        "row {} has cosine {} to the reference embedding ({:?})",
        worst.1,
        worst.0,
        queries[worst.1]
    );
}

#[test]
fn batching_and_padding_do_not_change_vectors() {
    let Some(model) = model_or_skip("batching_and_padding_do_not_change_vectors") else {
        return;
    };
    // Very different lengths, so the batch pads most rows heavily.
    let texts = [
        "Hi",
        "Which of these is a renewable energy source: coal, natural gas, wind or oil?",
        "Write a python function to find the first repeated character in a given string.",
        "The trophy doesn't fit into the brown suitcase because the _ is too large.",
    ];
    let mut together = vec![0.0f32; texts.len() * MiniLm::DIM];
    model.embed_batch(&texts, &mut together).unwrap();
    let mut single = MiniLm::load_default().unwrap().with_batch_size(1);
    for (i, text) in texts.iter().enumerate() {
        let mut alone = vec![0.0f32; MiniLm::DIM];
        single.embed(text, &mut alone).unwrap();
        let row = &together[i * MiniLm::DIM..(i + 1) * MiniLm::DIM];
        let max_diff = row
            .iter()
            .zip(&alone)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_diff < 1e-4,
            "{text:?}: batched and single differ by {max_diff}"
        );
    }
}

#[test]
fn truncates_at_256_tokens() {
    let Some(model) = model_or_skip("truncates_at_256_tokens") else {
        return;
    };
    let long = "routing queries to language models under a budget ".repeat(60);
    assert_eq!(model.token_count(&long).unwrap(), MiniLm::MAX_TOKENS);
    assert!(model.token_count("a short query").unwrap() < 10);
    // Words past the limit are cut, so they cannot change the vector.
    let longer = format!("{long} and then a completely different ending about cats");
    let mut v = vec![0.0f32; 2 * MiniLm::DIM];
    model
        .embed_batch(&[long.as_str(), longer.as_str()], &mut v)
        .unwrap();
    let (a, b) = v.split_at(MiniLm::DIM);
    assert!(
        dot(a, b) > 0.999_999,
        "truncated inputs differ: cos {}",
        dot(a, b)
    );
}

#[test]
fn embedder_trait_contract() {
    if model_or_skip("embedder_trait_contract").is_none() {
        return;
    }
    // The trait takes &mut self, so this test owns its instance.
    let mut model = MiniLm::load_default().unwrap();
    assert_eq!(Embedder::id(&model), "all-MiniLM-L6-v2");
    assert_eq!(Embedder::dim(&model), 384);
    let mut short = vec![7.0f32; 383];
    let err = model.embed("query", &mut short).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch);
    assert!(short.iter().all(|&v| v == 7.0), "output touched on error");
    let mut batch_out = vec![7.0f32; MiniLm::DIM];
    let err = model.embed_batch(&["a", "b"], &mut batch_out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch);
    assert!(
        batch_out.iter().all(|&v| v == 7.0),
        "output touched on error"
    );
    // Empty text still has [CLS] and [SEP], so it embeds to a unit vector.
    let mut v = vec![0.0f32; MiniLm::DIM];
    model.embed("", &mut v).unwrap();
    assert!((dot(&v, &v) - 1.0).abs() < 1e-5);
    let mut none: Vec<f32> = Vec::new();
    model.embed_batch::<&str>(&[], &mut none).unwrap();
}
