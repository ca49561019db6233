//! `pilot prior …`: learn a preference prior from a routing dataset, judge scores or a pairs
//! file, print its fit report, and show a saved prior.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use pilot_data::{Embeddings, JudgeDataset, PreferenceSet, RoutingDataset};
use pilot_prior::{
    EvalReport, Expect, FitParams, FitSummary, Prior, Stage, evaluate, fit, sources,
};

/// Subcommands of `pilot prior`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Learn a prior and print its fit report.
    Fit(Box<FitArgs>),
    /// Print a summary of a prior file (or the whole prior as JSON).
    Show(ShowArgs),
}

/// Where the preferences come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// A routing dataset (RouterBench format): pairs from observed quality on the learning split.
    Routerbench,
    /// Judge scores (arena format), mapped onto the RouterBench pool.
    Arena,
}

/// Arguments of `pilot prior fit`.
#[derive(clap::Args)]
pub struct FitArgs {
    /// The preference source file: a routing dataset or judge scores (see --source).
    #[arg(long, conflicts_with = "pairs", required_unless_present = "pairs")]
    dataset: Option<PathBuf>,
    /// A pairs file (header {"llms": [...]}, then {"row", "preferred", "other", "tie"?, "weight"?}).
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Base embeddings of the source's lines (raw little-endian f32).
    #[arg(long)]
    embeddings: PathBuf,
    /// What --dataset holds.
    #[arg(long, value_enum, default_value = "routerbench")]
    source: Source,
    /// Values per embedding row.
    #[arg(long, default_value_t = pilot_data::MINILM_DIM)]
    emb_dim: usize,
    /// Id of the embedder that made the embeddings (saved; loading checks it), e.g. the
    /// `hash-v1:d=256` that `pilot embed --model hash` prints [default: all-MiniLM-L6-v2 for a
    /// 384-value `*.minilm.f32` file, else unnamed:d=<emb-dim>].
    #[arg(long)]
    embedder_id: Option<String>,
    /// Shared-space dimension d (the policy context has d + 1).
    #[arg(long, default_value_t = 32)]
    dim: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weight of a tie pair (0 drops ties).
    #[arg(long, default_value_t = 0.5)]
    tie_weight: f64,
    /// Epochs of the contrastive refinement (0 keeps the PCA projection).
    #[arg(long)]
    contrastive_epochs: Option<usize>,
    /// Learning split of a routing dataset.
    #[arg(long, default_value = "train")]
    split: String,
    /// Split the report evaluates on (held out from learning).
    #[arg(long, default_value = "test")]
    eval_split: String,
    /// A routing dataset to evaluate on and whose pool the prior is saved for (for --source arena
    /// or --pairs; a routing --dataset is its own).
    #[arg(long, requires = "eval_embeddings")]
    eval_dataset: Option<PathBuf>,
    /// Embeddings of --eval-dataset.
    #[arg(long, requires = "eval_dataset")]
    eval_embeddings: Option<PathBuf>,
    /// Where to write the prior (postcard in a checksummed envelope).
    #[arg(long)]
    out: PathBuf,
    /// Also write the prior as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Arguments of `pilot prior show`.
#[derive(clap::Args)]
pub struct ShowArgs {
    /// The prior file.
    file: PathBuf,
    /// Print the whole prior as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs a `pilot prior` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Fit(args) => fit_command(&args),
        Command::Show(args) => show(&args),
    }
}

fn fit_command(args: &FitArgs) -> anyhow::Result<ExitCode> {
    let params = FitParams {
        dim: args.dim,
        seed: args.seed,
        embedder_id: args
            .embedder_id
            .clone()
            .unwrap_or_else(|| pilot_data::default_embedder_id(&args.embeddings, args.emb_dim)),
        contrastive_epochs: args
            .contrastive_epochs
            .unwrap_or(FitParams::default().contrastive_epochs),
        ..FitParams::default()
    };
    params.check()?;
    // The evaluation set: a routing dataset and its embeddings, with learning and eval rows.
    let mut eval: Option<(RoutingDataset, Embeddings, Vec<usize>, Vec<usize>)> = None;
    if let (Some(d), Some(e)) = (&args.eval_dataset, &args.eval_embeddings) {
        let data = RoutingDataset::load(d)?;
        let emb = Embeddings::load_rows(e, args.emb_dim, data.rows.len())?;
        let learn = data.split_indices(&args.split);
        let test = split_rows(&data, &args.eval_split)?;
        eval = Some((data, emb, learn, test));
    }

    let (learning, emb) = match (&args.pairs, &args.dataset, args.source) {
        (Some(pairs), _, _) => {
            let emb = Embeddings::load(&args.embeddings, args.emb_dim)?;
            let prefs = PreferenceSet::load(pairs, Some(emb.rows()))?;
            (sources::from_pairs(prefs), emb)
        }
        (None, Some(path), Source::Routerbench) => {
            let data = RoutingDataset::load(path)?;
            let emb = Embeddings::load_rows(&args.embeddings, args.emb_dim, data.rows.len())?;
            let learn = split_rows(&data, &args.split)?;
            let learning = sources::from_routing(&data, &learn, args.tie_weight)?;
            if eval.is_none() && data.splits().contains(&args.eval_split) {
                let test = data.split_indices(&args.eval_split);
                eval = Some((data, emb.clone(), learn, test));
            }
            (learning, emb)
        }
        (None, Some(path), Source::Arena) => {
            let judge = JudgeDataset::load(path)?;
            let emb = Embeddings::load_rows(&args.embeddings, args.emb_dim, judge.rows.len())?;
            let pool = pool_for_arena(eval.as_ref().map(|e| &e.0));
            let learning = sources::from_judge(
                &judge,
                sources::ARENA_TO_ROUTERBENCH,
                &pool,
                true,
                args.tie_weight,
            )?;
            (learning, emb)
        }
        (None, None, _) => bail!("give --dataset or --pairs"),
    };
    for w in &learning.warnings {
        eprintln!("warning: {w}");
    }

    let bar = ProgressBar::new(1);
    if let Ok(style) = ProgressStyle::with_template("{msg:>22} {bar:40} {pos}/{len} {elapsed}") {
        bar.set_style(style);
    }
    let (mut prior, summary) = fit(&emb, &learning, &params, &mut |stage, done, total| {
        bar.set_message(match stage {
            Stage::Pca => "PCA",
            Stage::Contrastive => "contrastive W",
            Stage::BradleyTerry => "Bradley–Terry θ",
            Stage::Calibration => "calibration",
        });
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();

    // Save the prior for the routing pool: a judge source's extra models are dropped.
    match (&eval, args.source, &args.pairs) {
        (Some((data, ..)), _, _) => prior.restrict_to(&data.llms),
        (None, Source::Arena, None) => prior.restrict_to(&pool_for_arena(None)),
        _ => {}
    }
    prior
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    if let Some(json) = &args.json {
        prior.save_json(json)?;
    }

    print_summary(&prior, &summary, &args.out);
    if let Some((data, e, learn, test)) = &eval {
        match evaluate(&prior, e, data, learn, test) {
            Ok(report) => print_eval(&report, data, &args.eval_split),
            Err(err) => eprintln!("warning: no evaluation on {}: {err}", data.source.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn split_rows(data: &RoutingDataset, split: &str) -> anyhow::Result<Vec<usize>> {
    let rows = data.split_indices(split);
    if rows.is_empty() {
        bail!(
            "{}: no row has split \"{split}\" (splits present: {})",
            data.source.display(),
            data.splits().join(", ")
        );
    }
    Ok(rows)
}

/// The pool an arena prior is saved for: the evaluation dataset's, or the mapped RouterBench names.
fn pool_for_arena(eval: Option<&RoutingDataset>) -> Vec<String> {
    match eval {
        Some(d) => d.llms.clone(),
        None => sources::ARENA_TO_ROUTERBENCH
            .iter()
            .map(|(_, to)| (*to).to_string())
            .collect(),
    }
}

fn print_summary(prior: &Prior, s: &FitSummary, out: &Path) {
    println!(
        "prior: {} LLMs, d = {} (context {}), base {} × {}, seed {}",
        prior.llms().len(),
        prior.d(),
        prior.context_dim(),
        prior.embedder_id(),
        prior.d_in(),
        prior.seed()
    );
    println!("source: {}", prior.source());
    println!(
        "fit: {} queries, {} training pairs, {} held-out pairs; {:.2} s (PCA {:.2}, contrastive {:.2}, Bradley–Terry {:.2} in {} epochs, kept {})",
        s.queries,
        s.train_pairs,
        s.valid_pairs,
        s.total_seconds(),
        s.seconds[0],
        s.seconds[1],
        s.seconds[2],
        s.bt_epochs,
        s.bt_best_epoch
    );
    println!(
        "held-out (learning source): pairwise accuracy {:.4} on {} strict pairs, BCE {:.4} \
         (train {:.4})",
        s.valid_accuracy, s.valid_accuracy_pairs, s.bt_valid_loss, s.bt_train_loss
    );
    let c = prior.calibration();
    println!(
        "calibration: scale {:.4}, RMSE {:.4} on {}",
        c.scale, c.rmse, c.target
    );
    if !prior.missing().is_empty() {
        println!(
            "LLMs without data (no prior; PILOT starts them at zero): {}",
            prior.missing().join(", ")
        );
    }
    println!("wrote {}", out.display());
}

fn print_eval(r: &EvalReport, data: &RoutingDataset, split: &str) {
    println!(
        "\nheld-out pairwise accuracy on {} split \"{split}\" ({} strict pairs):",
        data.source.display(),
        r.pairs
    );
    println!(
        "  prior                                   {:.4}",
        r.prior_accuracy
    );
    println!(
        "  global order (learning-split means)     {:.4}",
        r.global_learning_accuracy
    );
    println!(
        "  best global order (eval-split means)    {:.4}",
        r.global_oracle_accuracy
    );
    println!("\n  {:<40} {:>10} {:>10}", "LLM", "predicted", "actual");
    for l in &r.per_llm {
        let fmt = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"));
        println!(
            "  {:<40} {:>10} {:>10}",
            l.name,
            fmt(l.predicted),
            fmt(l.actual)
        );
    }
    if !r.without_prior.is_empty() {
        println!("  without prior: {}", r.without_prior.join(", "));
    }
}

fn show(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let prior = Prior::load(&args.file, Expect::default())?;
    if args.json {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a panic.
        match writeln!(out, "{}", prior.to_json()?) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", args.file.display());
    println!(
        "  embedder {} ({}-d) → shared space d = {}, context {}",
        prior.embedder_id(),
        prior.d_in(),
        prior.d(),
        prior.context_dim()
    );
    println!("  source: {}", prior.source());
    println!("  seed: {}", prior.seed());
    let c = prior.calibration();
    println!(
        "  calibration: scale {:.4}, RMSE {:.4} ({})",
        c.scale, c.rmse, c.target
    );
    println!(
        "  {:<40} {:>8} {:>10} {:>8}",
        "LLM", "pairs", "intercept", "‖θ'‖"
    );
    for (l, i) in prior.llms().iter().zip(&c.intercepts) {
        let norm = l.theta.iter().map(|v| v * v).sum::<f32>().sqrt();
        println!("  {:<40} {:>8} {:>10.4} {:>8.4}", l.name, l.pairs, i, norm);
    }
    if !prior.missing().is_empty() {
        println!("  without prior: {}", prior.missing().join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
