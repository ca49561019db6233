//! Dataset formats for PILOT router: routing datasets, judge scores, raw f32 embeddings, bandit
//! logs and preference pairs, with errors that name the file, the line, the field, and what was
//! expected versus found.
//!
//! ```no_run
//! use pilot_data::{Embeddings, RoutingDataset};
//! # fn main() -> Result<(), pilot_data::DataError> {
//! let data = RoutingDataset::load("../shared/data/routerbench-3k.jsonl")?;
//! let emb = Embeddings::load_rows("../shared/data/routerbench-3k.minilm.f32", 384, data.rows.len())?;
//! let learn = data.split_indices("train");
//! println!("{} LLMs, {} learning rows, dim {}", data.llms.len(), learn.len(), emb.dim());
//! # Ok(()) }
//! ```

mod bandit_log;
mod embeddings;
mod error;
mod jsonl;
mod judge;
mod pairs;
mod routing;
mod shared;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bandit_log::{BanditLog, BanditLogHeader, BanditLogWriter, BanditStep};
pub use embeddings::Embeddings;
pub use error::{DataError, Result};
pub use judge::{JudgeDataset, JudgeRow};
pub use pairs::{Preference, PreferenceSet};
pub use routing::{MissingCell, RoutingDataset, RoutingRow};
pub use shared::{
    Input, MINILM_DIM, MINILM_ID, default_embedder_id, shared_data_dir, shared_file, shared_input,
};
