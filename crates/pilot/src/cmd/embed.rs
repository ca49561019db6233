//! `pilot embed`: embed one text field of a JSON-lines file into raw little-endian f32 rows
//! (row i for line i, no header: the format of `shared/data/*.minilm.f32`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pilot_core::Embedder;

/// Which embedder writes the vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// all-MiniLM-L6-v2 (384-d); needs the `minilm` feature and `cargo xtask fetch-model`.
    Minilm,
    /// The dependency-free hashing embedder (`--dim` values, 256 by default).
    Hash,
}

/// Arguments of `pilot embed`.
#[derive(clap::Args)]
pub struct Args {
    /// The embedder.
    #[arg(long, value_enum)]
    model: Model,
    /// Output dimension: any for `hash` (default 256); `minilm` is always 384.
    #[arg(long)]
    dim: Option<usize>,
    /// The string field of each JSON line to embed.
    #[arg(long, default_value = "query")]
    field: String,
    /// MiniLM model directory (default: $PILOT_MODEL_DIR, else ~/.cache/pilot/all-MiniLM-L6-v2).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// MiniLM queries per encoder call.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Input: one JSON object per line.
    input: PathBuf,
    /// Output: raw little-endian f32 rows, written to a temporary file and renamed when done.
    output: PathBuf,
}

/// Runs `pilot embed`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let texts = read_field(&args.input, &args.field)?;
    let started = Instant::now();
    let progress = progress_bar(texts.len());
    let (id, dim, rows) = match args.model {
        Model::Hash => embed_hash(&texts, args.dim.unwrap_or(256), &progress)?,
        Model::Minilm => embed_minilm(&texts, &args, &progress)?,
    };
    progress.finish_and_clear();
    write_rows(&args.output, &rows)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "embedded {} rows of `{}` with {id} ({dim} values each) in {seconds:.1} s \
         ({:.0} rows/s) into {}",
        texts.len(),
        args.field,
        texts.len() as f64 / seconds.max(1e-9),
        args.output.display()
    );
    println!(
        "use them with: --embeddings {} --dim {dim} --embedder-id {id} (pilot simulate; \
         pilot prior fit takes --emb-dim {dim})",
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The string `field` of every line of `path`, in order. Blank lines are refused, since row i
/// of the output must belong to line i.
fn read_field(path: &Path, field: &str) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut texts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), index + 1);
        if line.trim().is_empty() {
            bail!("{}: empty line (each line must be a JSON object)", at());
        }
        let row: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}: not valid JSON", at()))?;
        match row.get(field) {
            Some(serde_json::Value::String(s)) => texts.push(s.clone()),
            Some(other) => bail!(
                "{}: field `{field}`: expected a string, found {}",
                at(),
                json_kind(other)
            ),
            None => bail!("{}: field `{field}` is missing", at()),
        }
    }
    if texts.is_empty() {
        bail!("{}: no lines to embed", path.display());
    }
    Ok(texts)
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn progress_bar(rows: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(rows as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} embedding [{bar:40}] {pos}/{len} rows, {per_sec}, eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

type Embedded = (String, usize, Vec<f32>);

fn embed_hash(texts: &[String], dim: usize, progress: &ProgressBar) -> anyhow::Result<Embedded> {
    let mut embedder = pilot_embed::HashingEmbedder::new(dim).context("--dim")?;
    let mut rows = vec![0.0f32; texts.len() * dim];
    for (i, (text, row)) in texts.iter().zip(rows.chunks_exact_mut(dim)).enumerate() {
        embedder
            .embed(text, row)
            .with_context(|| format!("input line {}", i + 1))?;
        progress.inc(1);
    }
    Ok((embedder.id().to_owned(), dim, rows))
}

#[cfg(feature = "minilm")]
fn embed_minilm(texts: &[String], args: &Args, progress: &ProgressBar) -> anyhow::Result<Embedded> {
    use pilot_minilm::{MiniLm, resolve_model_dir};

    if let Some(dim) = args.dim.filter(|&d| d != MiniLm::DIM) {
        bail!(
            "--dim {dim}: the minilm model writes {} values",
            MiniLm::DIM
        );
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let dir = resolve_model_dir(args.model_dir.as_deref())?;
    let model = MiniLm::load(&dir)?.with_batch_size(args.batch);
    let mut rows = vec![0.0f32; texts.len() * MiniLm::DIM];
    // Windows bound the tokenizer's memory on large inputs while still sorting by length.
    const WINDOW: usize = 1024;
    for (i, (window, out)) in texts
        .chunks(WINDOW)
        .zip(rows.chunks_mut(WINDOW * MiniLm::DIM))
        .enumerate()
    {
        model
            .embed_batch_with_progress(window, out, &mut |n| progress.inc(n as u64))
            .with_context(|| {
                format!(
                    "input lines {}..={}",
                    i * WINDOW + 1,
                    i * WINDOW + window.len()
                )
            })?;
    }
    Ok((model.id().to_owned(), MiniLm::DIM, rows))
}

#[cfg(not(feature = "minilm"))]
fn embed_minilm(_: &[String], _: &Args, _: &ProgressBar) -> anyhow::Result<Embedded> {
    bail!(
        "this `pilot` was built without the `minilm` feature; rebuild with \
         `cargo build --release -p pilot --features minilm` and fetch the model with \
         `cargo xtask fetch-model` (or use `--model hash`)"
    )
}

/// Writes `rows` as little-endian f32 to `path` via a temporary file, so a failure never
/// leaves a truncated output behind.
fn write_rows(path: &Path, rows: &[f32]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for v in rows {
            file.write_all(&v.to_le_bytes())?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}
