//! Fits the RouterBench-train prior and the arena prior on the shared data and prints the
//! held-out pairwise accuracies against the global-order rules (the figures in docs/prior.md).
//!
//! `cargo run --release -p pilot-prior --example routerbench [DIM] [SEED] [CONTRASTIVE_EPOCHS] [TIE_WEIGHT]`

use std::error::Error;

use pilot_data::{Embeddings, JudgeDataset, MINILM_DIM, RoutingDataset, shared_file};
use pilot_prior::{FitParams, evaluate, fit, sources};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| -> f64 {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
    };
    let params = FitParams {
        dim: arg(0, 32.0) as usize,
        seed: arg(1, 0.0) as u64,
        contrastive_epochs: arg(2, FitParams::default().contrastive_epochs as f64) as usize,
        ..FitParams::default()
    };
    let tie_weight = arg(3, 0.5);
    let data_path = shared_file("routerbench-3k.jsonl")?;
    let emb_path = shared_file("routerbench-3k.minilm.f32")?;
    let data = RoutingDataset::load(&data_path)?;
    let emb = Embeddings::load_rows(&emb_path, MINILM_DIM, data.rows.len())?;
    let train = data.split_indices("train");
    let test = data.split_indices("test");

    let learning = sources::from_routing(&data, &train, tie_weight)?;
    let (prior, summary) = fit(&emb, &learning, &params, &mut |_, _, _| {})?;
    let report = evaluate(&prior, &emb, &data, &train, &test)?;
    println!(
        "routerbench prior: d={} seed={} contrastive={} ties={tie_weight}: fit {:.2}s (pca {:.2}, contrastive {:.2}, bt {:.2} [{} epochs, best {}]); \
         valid acc {:.4}; test pairs {}: prior {:.4} | global(train) {:.4} | global(test oracle) {:.4}",
        params.dim,
        params.seed,
        params.contrastive_epochs,
        summary.total_seconds(),
        summary.seconds[0],
        summary.seconds[1],
        summary.seconds[2],
        summary.bt_epochs,
        summary.bt_best_epoch,
        summary.valid_accuracy,
        report.pairs,
        report.prior_accuracy,
        report.global_learning_accuracy,
        report.global_oracle_accuracy
    );

    let judge = JudgeDataset::load(shared_file("arena-bench-300.jsonl")?)?;
    let judge_emb = Embeddings::load_rows(
        shared_file("arena-bench-300.minilm.f32")?,
        MINILM_DIM,
        judge.rows.len(),
    )?;
    let learning = sources::from_judge(
        &judge,
        sources::ARENA_TO_ROUTERBENCH,
        &data.llms,
        true,
        tie_weight,
    )?;
    let (mut arena, summary) = fit(&judge_emb, &learning, &params, &mut |_, _, _| {})?;
    arena.restrict_to(&data.llms);
    let report = evaluate(&arena, &emb, &data, &train, &test)?;
    println!(
        "arena prior: fit {:.2}s; arena held-out acc {:.4}; routerbench test pairs {}: prior {:.4} | global(train) {:.4} | global(test oracle) {:.4}; without prior: {}",
        summary.total_seconds(),
        summary.valid_accuracy,
        report.pairs,
        report.prior_accuracy,
        report.global_learning_accuracy,
        report.global_oracle_accuracy,
        report.without_prior.join(", ")
    );
    Ok(())
}
