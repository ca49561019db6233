//! Offline multiple-choice knapsack solvers: LP relaxation, greedy, exact (core) and plain DP.

pub(crate) mod core;
#[cfg(feature = "alloc")]
pub(crate) mod count;
mod dp;
#[cfg(feature = "alloc")]
pub(crate) mod exchange;
mod generate;
pub(crate) mod greedy;
mod lp;
#[cfg(feature = "alloc")]
pub(crate) mod ranks;
pub(crate) mod relax;
mod scratch;

pub use self::core::{CoreSolver, CoreStats, Hint};
pub use dp::DpSolver;
pub use generate::{InstanceKind, capacity_at, generate_into};
pub use greedy::GreedySolver;
pub use lp::LpSolver;
pub use relax::{Fractional, Relaxation};
pub use scratch::{ClassSlot, CoreScratch, DpScratch, Increment, ItemSlot, Record, Scratch, State};
