//! Off-policy evaluation on the PILOT router's decision log: how would another policy have done
//! on the traffic the router logged, without deploying it?
//!
//! 1. [`join`] (or [`read_log`] on the JSON lines `pilot_router::log::to_line` writes) pairs
//!    every logged decision with its settlement (real cost) and feedback (reward) by request id.
//! 2. A [`Target`] gives its own probabilities π(a | context, candidates) on each logged
//!    context, under the same candidate set (the LLMs that survived the budget filter);
//!    [`PolicyTarget`] wraps any `pilot_core::Policy` with an [`Exploration`](pilot_router::Exploration).
//! 3. [`evaluate`] runs the estimators — IPS, self-normalised IPS, the direct method (a ridge
//!    reward model per LLM fitted on the log), doubly robust, switch-DR for a *frozen* target,
//!    and the replay (rejection) method of Li et al. (2011) for a *learning* one — each with a
//!    confidence interval and its effective sample size, and the target's estimated spend beside
//!    its estimated reward. What cannot be estimated is refused with the reason.
//!
//! Formulas, the log format and when each estimator applies: `docs/ope.md`.

mod estimate;
mod join;
mod model;
mod stats;
mod target;

pub use estimate::{
    Case, Estimator, IntervalMethod, OpeConfig, Report, Row, Verdict, evaluate, unsupported_mass,
};
pub use join::{JoinCounts, Log, Logged, join, read_log};
pub use model::RewardModel;
pub use stats::normal_quantile;
pub use target::{PolicyTarget, Target};

/// What went wrong, in words a caller can show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpeError {
    /// The log cannot be read or joined (damaged, inconsistent).
    Log(String),
    /// The target does not fit the log (dimension, pool size) or failed.
    Target(String),
    /// A setting is out of range.
    Config(String),
}

impl core::fmt::Display for OpeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Log(m) => write!(f, "decision log: {m}"),
            Self::Target(m) => write!(f, "target policy: {m}"),
            Self::Config(m) => write!(f, "settings: {m}"),
        }
    }
}

impl std::error::Error for OpeError {}

/// Result of this crate.
pub type Result<T> = core::result::Result<T, OpeError>;
