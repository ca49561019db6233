//! [`MiniLm`]: tokenise, run the encoder on batches spread over threads, mean-pool,
//! L2-normalise.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use candle_core::Device;
use pilot_core::{Embedder, Error, ErrorKind};
use tokenizers::{Tokenizer, TruncationParams};

use crate::config::BertConfig;
use crate::engine::Encoder;
use crate::error::LoadError;
use crate::model_dir::{CONFIG, TOKENIZER, WEIGHTS, read_verified, resolve_model_dir};

/// The all-MiniLM-L6-v2 sentence embedder (384-d, mean pooling over the attention mask,
/// L2-normalised, inputs truncated to 256 tokens), running on the CPU.
///
/// Load it once ([`MiniLm::load`]) and reuse it: loading reads and checksums 90 MB.
pub struct MiniLm {
    encoder: Encoder,
    tokenizer: Tokenizer,
    batch_size: usize,
    threads: usize,
}

impl MiniLm {
    /// The embedding-space id (what [`Embedder::id`] returns).
    pub const ID: &'static str = "all-MiniLM-L6-v2";
    /// The output dimension.
    pub const DIM: usize = 384;
    /// Longest input in tokens, `[CLS]` and `[SEP]` included (sentence-transformers'
    /// `max_seq_length` for this model); longer inputs are truncated.
    pub const MAX_TOKENS: usize = 256;
    /// Queries run through the encoder together by [`MiniLm::embed_batch`], by default.
    pub const DEFAULT_BATCH_SIZE: usize = 32;

    /// Loads the model from `dir` (`model.safetensors`, `tokenizer.json`, `config.json`),
    /// checking each file against the published sha256. Nothing is downloaded.
    ///
    /// # Errors
    /// [`LoadError`] naming the file: missing or altered (the message says how to fetch the
    /// model), unreadable, or not the expected architecture.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        // Report every missing file by name before spending time on checksums.
        for file in crate::MODEL_FILES {
            let path = dir.join(file.name);
            if !path.is_file() {
                return Err(LoadError::Missing { path });
            }
        }
        let config = load_config(dir)?;
        let tokenizer = load_tokenizer(dir)?;
        let weights_path = dir.join(WEIGHTS.name);
        let weights = read_verified(dir, WEIGHTS)?;
        let weights_error = |message: String| LoadError::Weights {
            path: weights_path.clone(),
            message,
        };
        let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu)
            .map_err(|e| weights_error(e.to_string()))?;
        drop(weights);
        let encoder = Encoder::load(&tensors, &config).map_err(weights_error)?;
        drop(tensors);
        let model = Self {
            encoder,
            tokenizer,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        };
        // One forward pass now, so a weights/config mismatch surfaces here and not mid-run.
        let mut probe = [0.0f32; Self::DIM];
        model
            .embed_batch(&["probe"], &mut probe)
            .map_err(|e| LoadError::Weights {
                path: weights_path,
                message: format!("test forward pass failed: {e}"),
            })?;
        Ok(model)
    }

    /// Loads the model from the directory [`resolve_model_dir`] picks with no explicit path:
    /// `$PILOT_MODEL_DIR`, else the cache directory `cargo xtask fetch-model` fills.
    ///
    /// # Errors
    /// As [`MiniLm::load`], plus [`LoadError::NoModelDir`].
    pub fn load_default() -> Result<Self, LoadError> {
        Self::load(&resolve_model_dir(None)?)
    }

    /// The same embedder running `batch_size` queries through the encoder at a time
    /// (at least 1). Larger batches are faster per query; results do not depend on it.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets how many queries run through the encoder at a time (at least 1).
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// Queries per encoder call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The same embedder running up to `threads` encoder batches at once (at least 1; by
    /// default the CPUs this process may use). A single batch runs on one thread, so one
    /// query at a time uses one core; results do not depend on the thread count.
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Sets how many encoder batches run at once (at least 1).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Encoder batches run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Number of tokens `text` becomes, `[CLS]`/`[SEP]` included, after truncation.
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`] if the tokenizer rejects the text.
    pub fn token_count(&self, text: &str) -> pilot_core::Result<usize> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().len())
            .map_err(|_| Error::new(ErrorKind::Malformed, "MiniLm::token_count: tokenizer"))
    }

    /// Embeds `texts` into `out`, row `i` (384 values) for `texts[i]`.
    ///
    /// # Errors
    /// [`ErrorKind::DimensionMismatch`] when `out.len() != texts.len() * 384`; otherwise see
    /// [`MiniLm::embed_batch_with_progress`]. On error `out` is left unchanged.
    pub fn embed_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
        out: &mut [f32],
    ) -> pilot_core::Result<()> {
        self.embed_batch_with_progress(texts, out, &mut |_| {})
    }

    /// As [`MiniLm::embed_batch`], calling `progress(n)` after each encoder batch of `n` rows.
    ///
    /// Texts go through the encoder [`batch_size`](MiniLm::batch_size) at a time, up to
    /// [`threads`](MiniLm::threads) batches at once. A batch holds its texts' tokens back to
    /// back without padding, so its cost is the sum of its texts' lengths whatever their mix.
    ///
    /// # Errors
    /// [`ErrorKind::DimensionMismatch`] for a wrong `out` length, [`ErrorKind::Malformed`] if
    /// the tokenizer rejects a text, [`ErrorKind::NonFinite`] / [`ErrorKind::ZeroVector`] if the
    /// encoder produced an unusable vector, [`ErrorKind::Corrupt`] if the forward pass failed.
    /// On error `out` is left unchanged.
    pub fn embed_batch_with_progress<S: AsRef<str>>(
        &self,
        texts: &[S],
        out: &mut [f32],
        progress: &mut dyn FnMut(usize),
    ) -> pilot_core::Result<()> {
        let expected = texts.len().saturating_mul(Self::DIM);
        if out.len() != expected {
            return Err(Error::dimension(
                "MiniLm::embed_batch: out",
                expected,
                out.len(),
            ));
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|_| Error::new(ErrorKind::Malformed, "MiniLm::embed_batch: tokenizer"))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let members = balanced_batches(&ids, self.batch_size);
        let batches: Vec<Vec<&[u32]>> = members
            .iter()
            .map(|batch| batch.iter().map(|&i| ids[i]).collect())
            .collect();
        let mut staged = vec![0.0f32; expected];
        let mut place = |batch: usize, pooled: &[f32]| {
            for (&row, vector) in members[batch].iter().zip(pooled.chunks_exact(Self::DIM)) {
                staged[row * Self::DIM..(row + 1) * Self::DIM].copy_from_slice(vector);
            }
            progress(members[batch].len());
        };
        let workers = self.threads.min(batches.len());
        if workers <= 1 {
            for (i, rows) in batches.iter().enumerate() {
                place(i, &self.encode_rows(rows)?);
            }
        } else {
            // Workers take batches in turn and send each result back here, where progress is
            // reported (the callback need not be thread-safe) and the rows are placed.
            let next = AtomicUsize::new(0);
            let (sender, receiver) = mpsc::channel();
            let mut failure = None;
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    let sender = sender.clone();
                    let (next, batches) = (&next, &batches);
                    scope.spawn(move || {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(rows) = batches.get(i) else { break };
                            if sender.send((i, self.encode_rows(rows))).is_err() {
                                break;
                            }
                        }
                    });
                }
                drop(sender);
                for (i, result) in receiver {
                    match result {
                        Ok(pooled) => place(i, &pooled),
                        Err(e) => {
                            // Stop handing out batches; the first error is the one reported.
                            next.store(batches.len(), Ordering::Relaxed);
                            failure.get_or_insert(e);
                        }
                    }
                }
            });
            if let Some(e) = failure {
                return Err(e);
            }
        }
        out.copy_from_slice(&staged);
        Ok(())
    }

    /// Runs one batch and returns its rows' pooled, normalised vectors in order.
    fn encode_rows(&self, rows: &[&[u32]]) -> pilot_core::Result<Vec<f32>> {
        const CONTEXT: &str = "MiniLm::embed_batch: forward pass";
        let hidden = self
            .encoder
            .forward(rows)
            .map_err(|_| Error::new(ErrorKind::Corrupt, CONTEXT))?;
        let tokens: usize = rows.iter().map(|r| r.len()).sum();
        if hidden.len() != tokens * Self::DIM {
            return Err(Error::dimension(CONTEXT, tokens * Self::DIM, hidden.len()));
        }
        let mut pooled = vec![0.0f32; rows.len() * Self::DIM];
        let mut start = 0;
        for (row, out) in rows.iter().zip(pooled.chunks_exact_mut(Self::DIM)) {
            mean_pool_normalized(&hidden[start * Self::DIM..], row.len(), out)?;
            start += row.len();
        }
        Ok(pooled)
    }
}

/// Splits rows `0..ids.len()` into the fewest batches of at most `batch_size` rows, with
/// similar token totals: rows go longest first, each to the batch with the fewest tokens so
/// far that has room. Batches run in parallel, so one heavy batch would leave a core idle.
fn balanced_batches(ids: &[&[u32]], batch_size: usize) -> Vec<Vec<usize>> {
    let count = ids.len().div_ceil(batch_size.max(1));
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
    let mut batches: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); count];
    for i in order {
        let lightest = batches
            .iter_mut()
            .filter(|(_, rows)| rows.len() < batch_size)
            .min_by_key(|(tokens, _)| *tokens);
        if let Some((tokens, rows)) = lightest {
            *tokens += ids[i].len();
            rows.push(i);
        }
    }
    batches.into_iter().map(|(_, rows)| rows).collect()
}

/// Mean of the first `tokens` hidden states (the unpadded ones), scaled to unit length.
fn mean_pool_normalized(hidden: &[f32], tokens: usize, out: &mut [f32]) -> pilot_core::Result<()> {
    const CONTEXT: &str = "MiniLm::embed_batch: pooled vector";
    out.fill(0.0);
    for state in hidden.chunks_exact(MiniLm::DIM).take(tokens) {
        for (o, h) in out.iter_mut().zip(state) {
            *o += h;
        }
    }
    // Accumulate the squared norm in f64 so rounding cannot push a row's norm off 1 by >1e-7.
    let norm_sq: f64 = out.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    if !norm_sq.is_finite() {
        return Err(Error::non_finite(CONTEXT, norm_sq));
    }
    if norm_sq <= 0.0 {
        return Err(Error::new(ErrorKind::ZeroVector, CONTEXT));
    }
    // The mean's 1/tokens factor cancels under normalisation, so only the norm is divided out.
    let inv = 1.0 / norm_sq.sqrt();
    for o in out.iter_mut() {
        *o = (f64::from(*o) * inv) as f32;
    }
    Ok(())
}

fn load_config(dir: &Path) -> Result<BertConfig, LoadError> {
    let path = dir.join(CONFIG.name);
    let bytes = read_verified(dir, CONFIG)?;
    let config: BertConfig = serde_json::from_slice(&bytes).map_err(|e| LoadError::Config {
        path: path.clone(),
        field: "(file)",
        expected: "a BERT config.json".to_owned(),
        found: e.to_string(),
    })?;
    let mismatch = |field: &'static str, expected: String, found: String| LoadError::Config {
        path: path.clone(),
        field,
        expected,
        found,
    };
    if config.hidden_size != MiniLm::DIM {
        return Err(mismatch(
            "hidden_size",
            MiniLm::DIM.to_string(),
            config.hidden_size.to_string(),
        ));
    }
    if config.num_attention_heads == 0
        || !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
    {
        return Err(mismatch(
            "num_attention_heads",
            format!("a divisor of {}", config.hidden_size),
            config.num_attention_heads.to_string(),
        ));
    }
    if config.hidden_act != "gelu" {
        return Err(mismatch(
            "hidden_act",
            "\"gelu\"".to_owned(),
            format!("{:?}", config.hidden_act),
        ));
    }
    if config.position_embedding_type != "absolute" {
        return Err(mismatch(
            "position_embedding_type",
            "\"absolute\"".to_owned(),
            format!("{:?}", config.position_embedding_type),
        ));
    }
    if config.max_position_embeddings < MiniLm::MAX_TOKENS {
        return Err(mismatch(
            "max_position_embeddings",
            format!("at least {}", MiniLm::MAX_TOKENS),
            config.max_position_embeddings.to_string(),
        ));
    }
    Ok(config)
}

fn load_tokenizer(dir: &Path) -> Result<Tokenizer, LoadError> {
    let path = dir.join(TOKENIZER.name);
    let bytes = read_verified(dir, TOKENIZER)?;
    let fail = |message: String| LoadError::Tokenizer {
        path: path.clone(),
        message,
    };
    let mut tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| fail(e.to_string()))?;
    // The shipped tokenizer.json truncates at 128 and pads every input to 128; the model's
    // sentence-transformers setting (and the reference embeddings) use 256 and no padding.
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MiniLm::MAX_TOKENS,
            ..TruncationParams::default()
        }))
        .map_err(|e| fail(e.to_string()))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

impl Embedder for MiniLm {
    fn id(&self) -> &str {
        Self::ID
    }

    fn dim(&self) -> usize {
        Self::DIM
    }

    fn embed(&mut self, text: &str, out: &mut [f32]) -> pilot_core::Result<()> {
        if out.len() != Self::DIM {
            return Err(Error::dimension("MiniLm::embed: out", Self::DIM, out.len()));
        }
        self.embed_batch(&[text], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_averages_only_real_tokens_and_normalises() {
        let mut hidden = vec![0.0f32; 3 * MiniLm::DIM];
        hidden[0] = 3.0; // token 0
        hidden[MiniLm::DIM + 1] = 4.0; // token 1
        hidden[2 * MiniLm::DIM + 2] = 100.0; // padding: must be ignored
        let mut out = vec![0.0f32; MiniLm::DIM];
        mean_pool_normalized(&hidden, 2, &mut out).unwrap();
        assert!((out[0] - 0.6).abs() < 1e-6);
        assert!((out[1] - 0.8).abs() < 1e-6);
        assert_eq!(out[2], 0.0);
    }

    #[test]
    fn batches_hold_every_row_once_within_size_and_balance_tokens() {
        let lengths = [50usize, 3, 3, 3, 40, 9, 9, 30, 2, 2];
        let rows: Vec<Vec<u32>> = lengths.iter().map(|&n| vec![0; n]).collect();
        let ids: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let batches = balanced_batches(&ids, 4);
        assert_eq!(batches.len(), 3);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        assert!(batches.iter().all(|b| b.len() <= 4));
        let totals: Vec<usize> = batches
            .iter()
            .map(|b| b.iter().map(|&i| lengths[i]).sum())
            .collect();
        // 151 tokens in 3 batches: the longest rows (50, 40, 30) start one batch each and the
        // short ones fill the lighter batches, so the totals end within a few tokens.
        let (lo, hi) = (totals.iter().min().unwrap(), totals.iter().max().unwrap());
        assert!(hi - lo <= 3, "{totals:?}");
        assert!(balanced_batches(&[], 4).is_empty());
    }

    #[test]
    fn pooling_rejects_zero_and_non_finite_states() {
        let mut out = vec![0.0f32; MiniLm::DIM];
        let zeros = vec![0.0f32; MiniLm::DIM];
        let err = mean_pool_normalized(&zeros, 1, &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ZeroVector);
        let mut nan = vec![0.0f32; MiniLm::DIM];
        nan[5] = f32::NAN;
        let err = mean_pool_normalized(&nan, 1, &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NonFinite);
    }
}
