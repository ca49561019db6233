//! Online budget policies: queries arrive one at a time, each chooses an arm within the budget.

mod config;
mod ledger;
mod pacing;
mod spread;
mod threshold;

pub use config::{OnlineConfig, ValueOf};
pub use pacing::{PacingParams, PacingPolicy};
pub use spread::{MAX_BINS, Spread};
pub use threshold::{ThresholdParams, ThresholdPolicy, ZclPolicy, ratio_bounds};
