//! `pilot simulate --embedder minilm`: embed a routing dataset's queries with the native
//! all-MiniLM-L6-v2 model instead of reading an embeddings file.
//!
//! Kept apart from `simulate.rs` so that file only chooses where the vectors come from.

use std::path::{Path, PathBuf};

use anyhow::bail;
use pilot_data::{Embeddings, RoutingDataset};

/// An embedder `pilot simulate` can run on a dataset's queries itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryEmbedder {
    /// all-MiniLM-L6-v2 (384-d, the embedder of `shared/data/*.minilm.f32`); needs the
    /// `minilm` feature and `cargo xtask fetch-model`.
    Minilm,
}

/// How to run the query embedder.
// Without the feature nothing runs, so nothing reads the options.
#[cfg_attr(not(feature = "minilm"), allow(dead_code))]
pub struct EmbedOptions<'a> {
    /// Model directory (default: `$PILOT_MODEL_DIR`, else the `cargo xtask fetch-model` cache).
    pub model_dir: Option<&'a Path>,
    /// Queries per encoder call.
    pub batch: usize,
    /// Where to also write the vectors (raw little-endian f32 rows), for reuse with
    /// `--embeddings`.
    pub save: Option<&'a Path>,
    /// Prior files the run will use: checked against the embedder id before embedding, so a
    /// mismatch fails at once rather than after minutes of embedding.
    pub priors: &'a [PathBuf],
}

/// Embeds the `query` field of every row of `dataset`, row `i` for row `i`, showing a progress
/// bar; returns the embedder id and the vectors.
///
/// # Errors
/// The model cannot be loaded (the message says how to fetch it), this `pilot` was built
/// without the `minilm` feature, a query cannot be embedded, or `save` cannot be written.
pub fn embed_queries(
    dataset: &RoutingDataset,
    embedder: QueryEmbedder,
    options: &EmbedOptions<'_>,
) -> anyhow::Result<(String, Embeddings)> {
    match embedder {
        QueryEmbedder::Minilm => embed_minilm(dataset, options),
    }
}

#[cfg(feature = "minilm")]
fn embed_minilm(
    dataset: &RoutingDataset,
    options: &EmbedOptions<'_>,
) -> anyhow::Result<(String, Embeddings)> {
    use std::time::Instant;

    use anyhow::Context as _;
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use pilot_minilm::{MiniLm, resolve_model_dir};

    if options.batch == 0 {
        bail!("--embed-batch must be at least 1");
    }
    let dir = resolve_model_dir(options.model_dir)?;
    let model = MiniLm::load(&dir)?.with_batch_size(options.batch);
    for path in options.priors {
        let expect = pilot_prior::Expect {
            embedder_id: Some(MiniLm::ID),
            d_in: Some(MiniLm::DIM),
        };
        pilot_prior::Prior::load(path, expect)?;
    }
    let queries: Vec<&str> = dataset.rows.iter().map(|r| r.query.as_str()).collect();
    let started = Instant::now();
    let bar =
        ProgressBar::with_draw_target(Some(queries.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} embedding queries [{bar:40}] {pos}/{len}, {per_sec}, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut vectors = vec![0.0f32; queries.len() * MiniLm::DIM];
    // One call over all queries, so the length sort that keeps padding small sees every query.
    model
        .embed_batch_with_progress(&queries, &mut vectors, &mut |n| bar.inc(n as u64))
        .with_context(|| format!("embedding the queries of {}", dataset.source.display()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "embedded {} queries with {} in {seconds:.1} s ({:.1} queries/s)",
        queries.len(),
        MiniLm::ID,
        queries.len() as f64 / seconds.max(1e-9)
    );
    let name = PathBuf::from(format!("{} [{}]", dataset.source.display(), MiniLm::ID));
    let embeddings = Embeddings::from_vec(vectors, MiniLm::DIM, name)?;
    if let Some(path) = options.save {
        embeddings.save(path)?;
        println!("wrote the query vectors to {}", path.display());
    }
    Ok((MiniLm::ID.to_owned(), embeddings))
}

#[cfg(not(feature = "minilm"))]
fn embed_minilm(_: &RoutingDataset, _: &EmbedOptions<'_>) -> anyhow::Result<(String, Embeddings)> {
    bail!(
        "--embedder minilm needs the native MiniLM embedder, which this `pilot` was built \
         without; rebuild with `cargo build --release -p pilot --features minilm` and fetch the \
         model with `cargo xtask fetch-model` (or pass --embeddings FILE)"
    )
}
