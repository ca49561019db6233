//! [`MiniLm`]: tokenise, run the encoder in length-sorted batches, mean-pool, L2-normalise.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use pilot_core::{Embedder, Error, ErrorKind};
use tokenizers::{Tokenizer, TruncationParams};

use crate::bert::{Bert, BertConfig};
use crate::error::LoadError;
use crate::model_dir::{CONFIG, TOKENIZER, WEIGHTS, read_verified, resolve_model_dir};

/// The all-MiniLM-L6-v2 sentence embedder (384-d, mean pooling over the attention mask,
/// L2-normalised, inputs truncated to 256 tokens), running on the CPU.
///
/// Load it once ([`MiniLm::load`]) and reuse it: loading reads and checksums 90 MB.
pub struct MiniLm {
    bert: Bert,
    tokenizer: Tokenizer,
    device: Device,
    batch_size: usize,
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
        let device = Device::Cpu;
        let weights_path = dir.join(WEIGHTS.name);
        let weights = read_verified(dir, WEIGHTS)?;
        let bert = VarBuilder::from_slice_safetensors(&weights, DType::F32, &device)
            .and_then(|vb| Bert::load(vb, &config))
            .map_err(|e| LoadError::Weights {
                path: weights_path.clone(),
                message: e.to_string(),
            })?;
        drop(weights);
        let model = Self {
            bert,
            tokenizer,
            device,
            batch_size: Self::DEFAULT_BATCH_SIZE,
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
    /// Texts are sorted by token count and cut into batches of at most
    /// [`batch_size`](MiniLm::batch_size) rows of similar length, so little is spent on
    /// padding; the output order is the input order.
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
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut staged = vec![0.0f32; expected];
        let mut start = 0;
        while start < order.len() {
            let shortest = ids[order[start]].len();
            let mut end = start + 1;
            while end < order.len()
                && end - start < self.batch_size
                && little_padding(shortest, ids[order[end]].len())
            {
                end += 1;
            }
            let chunk = &order[start..end];
            start = end;
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| ids[i]).collect();
            let pooled = self.encode_rows(&rows)?;
            for (&row, vector) in chunk.iter().zip(pooled.chunks_exact(Self::DIM)) {
                let start = row * Self::DIM;
                staged[start..start + Self::DIM].copy_from_slice(vector);
            }
            progress(chunk.len());
        }
        out.copy_from_slice(&staged);
        Ok(())
    }

    /// Runs one padded batch and returns its rows' pooled, normalised vectors in order.
    fn encode_rows(&self, rows: &[&[u32]]) -> pilot_core::Result<Vec<f32>> {
        const CONTEXT: &str = "MiniLm::embed_batch: forward pass";
        let forward_failed = |_| Error::new(ErrorKind::Corrupt, CONTEXT);
        let batch = rows.len();
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let padded = rows.iter().any(|r| r.len() != seq);
        let mut ids = vec![0u32; batch * seq];
        let mut mask = vec![0u32; batch * seq];
        for (b, row) in rows.iter().enumerate() {
            ids[b * seq..b * seq + row.len()].copy_from_slice(row);
            mask[b * seq..b * seq + row.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (batch, seq), &self.device).map_err(forward_failed)?;
        let mask = if padded {
            Some(Tensor::from_vec(mask, (batch, seq), &self.device).map_err(forward_failed)?)
        } else {
            None
        };
        let hidden = self
            .bert
            .forward(&ids, mask.as_ref())
            .and_then(|h| h.flatten_all())
            .and_then(|h| h.to_vec1::<f32>())
            .map_err(forward_failed)?;
        if hidden.len() != batch * seq * Self::DIM {
            return Err(Error::dimension(
                CONTEXT,
                batch * seq * Self::DIM,
                hidden.len(),
            ));
        }
        let mut pooled = vec![0.0f32; batch * Self::DIM];
        for (b, row) in rows.iter().enumerate() {
            let out = &mut pooled[b * Self::DIM..(b + 1) * Self::DIM];
            mean_pool_normalized(&hidden[b * seq * Self::DIM..], row.len(), out)?;
        }
        Ok(pooled)
    }
}

/// Whether a row of `len` tokens may share a batch whose shortest row has `shortest` tokens:
/// at most a quarter (plus a few tokens) of padding. On the CPU a batch costs about the sum of
/// its padded rows, so a long row joining short ones would mostly compute padding.
fn little_padding(shortest: usize, len: usize) -> bool {
    len * 4 <= shortest * 5 + 16
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
    fn batches_keep_padding_small() {
        assert!(little_padding(40, 40));
        assert!(little_padding(40, 54)); // 35 % more, but within the few-token slack
        assert!(!little_padding(40, 60));
        assert!(little_padding(2, 6)); // tiny rows: the slack dominates
        assert!(!little_padding(10, 200));
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
