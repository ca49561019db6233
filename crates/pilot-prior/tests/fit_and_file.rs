//! The prior end to end on a small synthetic problem with a known answer, the prior file's
//! checks, and every bad-input path.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap on purpose

use pilot_core::ErrorKind;
use pilot_data::{Embeddings, Preference, PreferenceSet, RoutingDataset};
use pilot_prior::{Expect, FitParams, Prior, evaluate, fit, sources};

/// A deterministic pseudo-random stream for building test data.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
}

const D_IN: usize = 8;

/// Queries from two clusters in 8 dimensions; LLM "a" is right on cluster 0, "b" on cluster 1,
/// "c" is right half of the time everywhere (globally the best single LLM is c or a tie).
fn synthetic(n: usize, seed: u64) -> (RoutingDataset, Embeddings) {
    let mut rng = Lcg(seed);
    let mut lines = Vec::new();
    let mut emb = Vec::new();
    for i in 0..n {
        let cluster = i % 2;
        for j in 0..D_IN {
            let centre = if j == cluster { 2.0 } else { 0.0 };
            emb.push((centre + 0.3 * (rng.next() - 0.5)) as f32);
        }
        let (qa, qb) = if cluster == 0 { (1.0, 0.0) } else { (0.0, 1.0) };
        let qc = if rng.next() < 0.5 { 1.0 } else { 0.0 };
        let split = if i < n * 3 / 4 { "train" } else { "test" };
        lines.push(format!(
            r#"{{"id":"q{i}","task":"t{cluster}","split":"{split}","query":"q","quality":{{"a":{qa},"b":{qb},"c":{qc}}},"cost_usd":{{"a":0.01,"b":0.01,"c":0.001}}}}"#
        ));
    }
    let data = RoutingDataset::parse(&lines.join("\n"), "synthetic.jsonl").unwrap();
    let emb = Embeddings::from_vec(emb, D_IN, "synthetic.f32").unwrap();
    (data, emb)
}

fn small_params() -> FitParams {
    FitParams {
        dim: 4,
        embedder_id: "test-embedder".into(),
        contrastive_epochs: 20,
        bt_max_epochs: 300,
        bt_lr: 0.05,
        ..FitParams::default()
    }
}

fn fitted() -> (Prior, RoutingDataset, Embeddings) {
    let (data, emb) = synthetic(400, 7);
    let learning = sources::from_routing(&data, &data.split_indices("train"), 0.5).unwrap();
    let (prior, _) = fit(&emb, &learning, &small_params(), &mut |_, _, _| {}).unwrap();
    (prior, data, emb)
}

#[test]
fn learns_who_wins_where_and_beats_the_global_order() {
    let (data, emb) = synthetic(400, 7);
    let train = data.split_indices("train");
    let learning = sources::from_routing(&data, &train, 0.5).unwrap();
    let mut stages = Vec::new();
    let (prior, summary) = fit(&emb, &learning, &small_params(), &mut |s, done, total| {
        stages.push((s, done, total));
    })
    .unwrap();
    assert!(
        stages
            .iter()
            .any(|s| s.0 == pilot_prior::Stage::BradleyTerry)
    );
    assert!(
        summary.valid_accuracy > 0.9,
        "held-out {}",
        summary.valid_accuracy
    );
    assert_eq!(prior.context_dim(), 5);
    assert_eq!(prior.llms().len(), 3);

    let report = evaluate(&prior, &emb, &data, &train, &data.split_indices("test")).unwrap();
    assert!(
        report.prior_accuracy > 0.9,
        "prior {}",
        report.prior_accuracy
    );
    // No fixed order can get a-vs-b right on both clusters.
    assert!(
        report.global_oracle_accuracy < 0.8,
        "{}",
        report.global_oracle_accuracy
    );
    for l in &report.per_llm {
        let (p, a) = (l.predicted.unwrap(), l.actual.unwrap());
        assert!(
            (p - a).abs() < 0.15,
            "{}: predicted {p}, actual {a}",
            l.name
        );
    }

    // The calibrated prediction is on the quality scale: near 1 where an LLM is right.
    let mut ctx = vec![0.0; prior.context_dim()];
    prior.context(emb.get(0).unwrap(), &mut ctx).unwrap();
    assert_eq!(ctx[4], 1.0);
    let norm: f32 = ctx[..4].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    let a = prior.predict("a", &ctx).unwrap().unwrap();
    let b = prior.predict("b", &ctx).unwrap().unwrap();
    assert!(a > 0.75 && b < 0.25, "cluster 0: a {a}, b {b}");
    assert_eq!(prior.predict("zzz", &ctx).unwrap(), None);
}

#[test]
fn same_seed_same_prior_other_seed_differs() {
    let (data, emb) = synthetic(200, 3);
    let learning = sources::from_routing(&data, &data.split_indices("train"), 0.5).unwrap();
    let run = |seed| {
        let params = FitParams {
            seed,
            ..small_params()
        };
        fit(&emb, &learning, &params, &mut |_, _, _| {}).unwrap().0
    };
    let (p1, p2, p3) = (run(1), run(1), run(2));
    assert_eq!(p1.to_bytes().unwrap(), p2.to_bytes().unwrap());
    assert_ne!(p1.to_bytes().unwrap(), p3.to_bytes().unwrap());
}

#[test]
fn prior_file_round_trips_and_refuses_misuse() {
    let (prior, _, _) = fitted();
    let bytes = prior.to_bytes().unwrap();
    let ok = Expect {
        embedder_id: Some("test-embedder"),
        d_in: Some(D_IN),
    };
    assert_eq!(Prior::from_bytes(&bytes, ok, "p.bin").unwrap(), prior);

    let e = Prior::from_bytes(
        &bytes,
        Expect {
            embedder_id: Some("all-MiniLM-L6-v2"),
            d_in: None,
        },
        "p.bin",
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongFormat);
    assert!(e.message().contains("\"test-embedder\""), "{e}");
    let e = Prior::from_bytes(
        &bytes,
        Expect {
            embedder_id: None,
            d_in: Some(384),
        },
        "p.bin",
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DimensionMismatch);

    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 3;
    corrupt[last] ^= 0x40;
    let e = Prior::from_bytes(&corrupt, ok, "p.bin").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChecksumMismatch);
    assert!(e.message().starts_with("p.bin"), "{e}");
    let e = Prior::from_bytes(&bytes[..bytes.len() - 1], ok, "p.bin").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Truncated);
    let e = Prior::from_bytes(b"{\"not\": \"a prior file at all\"}", ok, "p.bin").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongFormat);

    let dir = std::env::temp_dir().join(format!("pilot-prior-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    prior.save(dir.join("p.bin")).unwrap();
    prior.save_json(dir.join("p.json")).unwrap();
    assert_eq!(Prior::load(dir.join("p.bin"), ok).unwrap(), prior);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("p.json")).unwrap()).unwrap();
    assert_eq!(json["embedder_id"], "test-embedder");
    assert_eq!(json["llms"].as_array().unwrap().len(), 3);
    let e = Prior::load(dir.join("absent.bin"), ok).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn context_rejects_wrong_dimensions_and_nan() {
    let (prior, _, _) = fitted();
    let mut out = vec![0.0; prior.context_dim()];
    let e = prior.context(&[0.0; 7], &mut out).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DimensionMismatch);
    let e = prior.context(&[0.0; D_IN], &mut out[..3]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DimensionMismatch);
    let mut x = [0.5f32; D_IN];
    x[2] = f32::NAN;
    assert_eq!(
        prior.context(&x, &mut out).unwrap_err().kind(),
        ErrorKind::NonFinite
    );
    assert_eq!(
        prior.predict("a", &out[..2]).unwrap_err().kind(),
        ErrorKind::DimensionMismatch
    );
}

#[test]
fn restricting_to_a_pool_records_the_llms_without_a_prior() {
    let (mut prior, _, _) = fitted();
    prior.restrict_to(&["a".into(), "c".into(), "new-llm".into()]);
    let names: Vec<&str> = prior.llms().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(prior.missing(), ["new-llm"]);
    assert_eq!(prior.calibration().intercepts.len(), 2);
    // Still a valid file.
    Prior::from_bytes(&prior.to_bytes().unwrap(), Expect::default(), "p").unwrap();
}

#[test]
fn bad_inputs_are_errors_that_say_what() {
    let (data, emb) = synthetic(100, 1);
    let train = data.split_indices("train");
    let learning = sources::from_routing(&data, &train, 0.5).unwrap();
    let none = &mut |_, _, _| {};

    let e = fit(
        &emb,
        &learning,
        &FitParams {
            dim: 0,
            ..small_params()
        },
        none,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    assert!(e.message().contains("`dim`"), "{e}");
    let e = fit(
        &emb,
        &learning,
        &FitParams {
            dim: 9,
            ..small_params()
        },
        none,
    )
    .unwrap_err();
    assert!(e.message().contains("at most the base dimension 8"), "{e}");
    let e = fit(
        &emb,
        &learning,
        &FitParams {
            bt_lr: f64::NAN,
            ..small_params()
        },
        none,
    )
    .unwrap_err();
    assert!(e.message().contains("`bt_lr`"), "{e}");

    // Embeddings with fewer rows than the pairs reference.
    let short =
        Embeddings::from_vec(emb.as_slice()[..10 * D_IN].to_vec(), D_IN, "short.f32").unwrap();
    let e = fit(&short, &learning, &small_params(), none).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DimensionMismatch);
    assert!(e.message().contains("short.f32"), "{e}");

    // No pairs at all.
    let empty = sources::from_pairs(PreferenceSet {
        source: "p.jsonl".into(),
        llms: vec!["a".into(), "b".into()],
        pairs: vec![],
    });
    assert_eq!(
        fit(&emb, &empty, &small_params(), none).unwrap_err().kind(),
        ErrorKind::Empty
    );

    // Only ties on the chosen rows: no strict preference.
    let tied = RoutingDataset::parse(
        r#"{"task":"t","split":"train","query":"q","quality":{"a":1,"b":1},"cost_usd":{"a":0,"b":0}}"#,
        "tied.jsonl",
    )
    .unwrap();
    let e = sources::from_routing(&tied, &[0], 0.5).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Empty);
    assert!(e.message().contains("tied.jsonl"), "{e}");
    assert_eq!(
        sources::from_routing(&data, &train, 2.0)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidParameter
    );
    assert_eq!(
        sources::from_routing(&data, &[10_000], 0.5)
            .unwrap_err()
            .kind(),
        ErrorKind::OutOfRange
    );

    // Evaluating a prior whose LLM names match nothing in the dataset.
    let (prior, _, _) = fitted();
    let other = RoutingDataset::parse(
        r#"{"task":"t","split":"test","query":"q","quality":{"x":1,"y":0},"cost_usd":{"x":0,"y":0}}"#,
        "other.jsonl",
    )
    .unwrap();
    let one = Embeddings::from_vec(vec![1.0; D_IN], D_IN, "one.f32").unwrap();
    let e = evaluate(&prior, &one, &other, &[0], &[0]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Empty);
    assert!(e.message().contains("x, y"), "{e}");
}

#[test]
fn a_pairs_file_fits_with_win_fraction_calibration() {
    let (data, emb) = synthetic(200, 5);
    let derived = sources::from_routing(&data, &data.split_indices("train"), 0.0).unwrap();
    let pairs = PreferenceSet {
        source: "pairs.jsonl".into(),
        ..derived.prefs
    };
    assert!(pairs.pairs.iter().all(|p: &Preference| !p.tie));
    let learning = sources::from_pairs(pairs);
    let (prior, summary) = fit(&emb, &learning, &small_params(), &mut |_, _, _| {}).unwrap();
    assert!(summary.valid_accuracy > 0.9, "{}", summary.valid_accuracy);
    assert!(prior.calibration().target.contains("win fraction"));
    assert!(prior.calibration().scale > 0.0);
}

#[test]
fn judge_scores_map_names_and_warn_about_llms_without_data() {
    let text = concat!(
        r#"{"prompt":"p0","judge_score":{"claude-1":9,"gpt-4-1106-preview":3,"vicuna":5}}"#,
        "\n",
        r#"{"prompt":"p1","judge_score":{"claude-1":2,"gpt-4-1106-preview":8,"vicuna":5}}"#,
        "\n"
    );
    let judge = pilot_data::JudgeDataset::parse(text, "j.jsonl").unwrap();
    let pool: Vec<String> = ["gpt-4-1106-preview", "claude-v1", "zero-one-ai/Yi-34B-Chat"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let l = sources::from_judge(&judge, sources::ARENA_TO_ROUTERBENCH, &pool, true, 0.5).unwrap();
    assert_eq!(l.prefs.llms, ["claude-v1", "gpt-4-1106-preview", "vicuna"]);
    assert_eq!(l.prefs.pairs.len(), 6);
    assert!(
        l.warnings[0].contains("zero-one-ai/Yi-34B-Chat"),
        "{:?}",
        l.warnings
    );
    let q = l.quality.unwrap();
    // Scores 2..9 map onto [0, 1].
    assert_eq!(q.get(0, 0), Some(1.0));
    assert_eq!(q.get(1, 0), Some(0.0));
    let l = sources::from_judge(&judge, sources::ARENA_TO_ROUTERBENCH, &pool, false, 0.0).unwrap();
    assert_eq!(l.prefs.llms.len(), 2);
    assert_eq!(l.prefs.pairs.len(), 2);
}

/// An LLM added from preferences elsewhere (here: the test split's) gets a vector in the
/// prior's space that ranks it as the joint fit does: "a" above "b" on cluster 0, below on
/// cluster 1, and its prediction agrees with the jointly fitted one's side of "b" on almost
/// every query.
#[test]
fn an_llm_fitted_from_other_preferences_ranks_as_the_joint_fit() {
    let (prior, data, emb) = fitted();
    let test = data.split_indices("test");
    let elsewhere = sources::from_routing(&data, &test, 0.5).unwrap();
    let added = pilot_prior::fit_llm(&prior, "a", &emb, &elsewhere.prefs, &small_params()).unwrap();
    assert_eq!(added.name, "a");
    assert!(added.pairs > 0);
    assert_eq!(added.theta.len(), prior.context_dim());
    let mut ctx = vec![0.0; prior.context_dim()];
    let dot = |t: &[f32], c: &[f32]| t.iter().zip(c).map(|(a, b)| a * b).sum::<f32>();
    let (mut agree, mut by_cluster) = (0, [0.0f32; 2]);
    for &i in &test {
        prior.context(emb.get(i).unwrap(), &mut ctx).unwrap();
        let b = prior.predict("b", &ctx).unwrap().unwrap();
        let joint = prior.predict("a", &ctx).unwrap().unwrap();
        let mine = dot(&added.theta, &ctx);
        agree += usize::from((mine > b) == (joint > b));
        by_cluster[i % 2] += mine - b;
    }
    assert!(by_cluster[0] > 0.0 && by_cluster[1] < 0.0, "{by_cluster:?}");
    assert!(agree * 10 >= test.len() * 9, "{agree} of {}", test.len());
    // No pair with a known LLM, or vectors of another embedder: clear errors.
    let unknown = PreferenceSet {
        llms: vec!["x".into(), "y".into()],
        pairs: vec![Preference {
            row: 0,
            preferred: 0,
            other: 1,
            tie: false,
            weight: 1.0,
        }],
        ..PreferenceSet::default()
    };
    let err = pilot_prior::fit_llm(&prior, "x", &emb, &unknown, &small_params()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Empty);
    let narrow = Embeddings::from_vec(vec![1.0; 4], 4, "narrow.f32").unwrap();
    let err =
        pilot_prior::fit_llm(&prior, "a", &narrow, &elsewhere.prefs, &small_params()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch);
}
