//! Online budget policies: queries arrive one at a time, each chooses an arm within the budget.

mod config;
mod guard;
mod ledger;
mod pacing;
mod snapshot;
mod spread;
mod threshold;

pub use config::{OnlineConfig, ValueOf};
pub use guard::{BudgetLedger, Fit, Guard, Guarded, to_units};
pub use pacing::{PacingParams, PacingPolicy};
pub use snapshot::COST_SNAPSHOT_VERSION;
pub use spread::{MAX_BINS, Spread};
pub use threshold::{ThresholdParams, ThresholdPolicy, ZclPolicy, ratio_bounds};
