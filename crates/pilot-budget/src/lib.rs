#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod mckp;
mod online;

#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "alloc")]
pub mod owned;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use mckp::{
    ClassSlot, CoreScratch, CoreSolver, CoreStats, DpScratch, DpSolver, Fractional, GreedySolver,
    Hint, Increment, InstanceKind, ItemSlot, LpSolver, Record, Relaxation, Scratch, State,
    capacity_at, generate_into,
};
pub use online::{
    BudgetLedger, COST_SNAPSHOT_VERSION, Fit, Guard, Guarded, MAX_BINS, OnlineConfig, PacingParams,
    PacingPolicy, Spread, ThresholdParams, ThresholdPolicy, ValueOf, ZclPolicy, ratio_bounds,
    to_units,
};
