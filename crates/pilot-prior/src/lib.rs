//! PILOT's preference prior: a projection of base query embeddings into a shared space and one
//! vector per LLM, learned offline from pairwise preferences, so that `⟨context, θ'_a⟩`
//! predicts LLM a's quality on a query before any online feedback.
//!
//! ```text
//! x (d_in, e.g. 384-d MiniLM) ──W·x + b──▶ z ──normalize──▶ ẑ ──append 1──▶ context (d + 1)
//! expected quality of LLM a  ≈  ⟨context, θ'_a⟩
//! ```
//!
//! The fit (see `docs/prior.md`): PCA initialisation of W, a contrastive refinement that pulls
//! together queries on which the same LLMs win, Bradley–Terry on the pairs with early stopping
//! on held-out queries, then an affine calibration onto the quality scale. The prior is saved
//! with postcard inside `pilot_core::envelope` and refuses vectors from another embedder.
//!
//! ```no_run
//! use pilot_data::{Embeddings, RoutingDataset, MINILM_DIM};
//! use pilot_prior::{FitParams, fit, sources};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = RoutingDataset::load("../shared/data/routerbench-3k.jsonl")?;
//! let emb = Embeddings::load_rows("../shared/data/routerbench-3k.minilm.f32", MINILM_DIM, data.rows.len())?;
//! let learning = sources::from_routing(&data, &data.split_indices("train"), 0.5)?;
//! let (prior, summary) = fit(&emb, &learning, &FitParams::default(), &mut |_, _, _| {})?;
//! let mut ctx = vec![0.0; prior.context_dim()];
//! prior.context(emb.get(0).unwrap_or_default(), &mut ctx)?;
//! println!("{:?} in {:.1} s", prior.predict("gpt-4-1106-preview", &ctx)?, summary.total_seconds());
//! # Ok(()) }
//! ```

mod adam;
mod bradley_terry;
mod calibrate;
mod contrastive;
mod dataset;
mod error;
mod eval;
mod extend;
mod file;
mod fit;
mod model;
mod params;
mod pca;
pub mod sources;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{PriorError, Result};
pub use eval::{EvalReport, LlmEval, evaluate};
pub use extend::fit_llm;
pub use file::{Expect, MAGIC, VERSION};
pub use fit::{FitSummary, Stage, fit};
pub use model::{Calibration, LlmVector, Prior};
pub use params::FitParams;
