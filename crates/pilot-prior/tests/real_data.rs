//! The prior on the shared RouterBench and arena files, when present: the RouterBench prior
//! beats the best global-order rule on the test split, and the arena prior maps onto the pool.
//! Missing files skip on a bare clone and fail under `CI=true` or `PILOT_REQUIRE_DATA=1`.
#![allow(clippy::unwrap_used)]

use pilot_data::{Embeddings, JudgeDataset, MINILM_DIM, RoutingDataset, shared_input};
use pilot_prior::{FitParams, evaluate, fit, sources};

fn load() -> Option<(RoutingDataset, Embeddings)> {
    let (Some(d), Some(e)) = (
        shared_input("routerbench-3k.jsonl").unwrap(),
        shared_input("routerbench-3k.minilm.f32").unwrap(),
    ) else {
        return None;
    };
    let data = RoutingDataset::load(d).unwrap();
    let emb = Embeddings::load_rows(e, MINILM_DIM, data.rows.len()).unwrap();
    Some((data, emb))
}

#[test]
fn routerbench_prior_beats_the_global_order_on_the_test_split() {
    let Some((data, emb)) = load() else { return };
    let train = data.split_indices("train");
    let test = data.split_indices("test");
    let learning = sources::from_routing(&data, &train, 0.5).unwrap();
    // Fewer contrastive epochs than the default keep the debug-build test short.
    let params = FitParams {
        contrastive_epochs: 10,
        ..FitParams::default()
    };
    let (prior, summary) = fit(&emb, &learning, &params, &mut |_, _, _| {}).unwrap();
    let r = evaluate(&prior, &emb, &data, &train, &test).unwrap();
    eprintln!(
        "routerbench prior: {} test pairs, prior {:.4}, global(train) {:.4}, global(oracle) {:.4}, fit {:.2}s",
        r.pairs,
        r.prior_accuracy,
        r.global_learning_accuracy,
        r.global_oracle_accuracy,
        summary.total_seconds()
    );
    assert!(r.prior_accuracy > r.global_oracle_accuracy + 0.01);
    assert!(r.without_prior.is_empty());
    for l in &r.per_llm {
        let (p, a) = (l.predicted.unwrap(), l.actual.unwrap());
        assert!(
            (p - a).abs() < 0.1,
            "{}: predicted {p:.3}, actual {a:.3}",
            l.name
        );
    }
}

#[test]
fn arena_prior_covers_the_mapped_llms_and_names_the_rest() {
    let Some((data, _)) = load() else { return };
    let (Some(j), Some(e)) = (
        shared_input("arena-bench-300.jsonl").unwrap(),
        shared_input("arena-bench-300.minilm.f32").unwrap(),
    ) else {
        return;
    };
    let judge = JudgeDataset::load(j).unwrap();
    let emb = Embeddings::load_rows(e, MINILM_DIM, judge.rows.len()).unwrap();
    let learning =
        sources::from_judge(&judge, sources::ARENA_TO_ROUTERBENCH, &data.llms, true, 0.5).unwrap();
    assert!(
        learning
            .warnings
            .iter()
            .any(|w| w.contains("zero-one-ai/Yi-34B-Chat")
                && w.contains("WizardLM/WizardLM-13B-V1.2")
                && w.contains("meta/code-llama-instruct-34b-chat"))
    );
    let (mut prior, summary) =
        fit(&emb, &learning, &FitParams::default(), &mut |_, _, _| {}).unwrap();
    assert!(
        summary.valid_accuracy > 0.6,
        "arena held-out {}",
        summary.valid_accuracy
    );
    prior.restrict_to(&data.llms);
    assert_eq!(prior.llms().len(), 8);
    assert_eq!(prior.missing().len(), 3);
}
