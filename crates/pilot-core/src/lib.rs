//! Core vocabulary of PILOT router: ids, the scalar trait, validated values, errors and traits.
//!
//! Everything here is `#![no_std]` and needs no allocator. The other crates implement the small
//! object-safe traits defined here, so that each box of a routing decision can be swapped:
//!
//! ```text
//! text ──Embedder──▶ x ──(projection, pilot-embed)──▶ z ──Policy──▶ per-arm ArmScore
//!      ──CostPolicy──▶ Decision (an arm, or "budget exhausted") ... feedback ──Policy::update
//! ```
//!
//! Offline, a batch of queries under one budget is a multiple-choice knapsack, solved by an
//! [`MckpSolver`].
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod arm;
mod budget;
mod embedder;
pub mod envelope;
mod error;
mod mckp;
mod policy;
mod real;
mod value;

pub use arm::{ArmId, ArmScore, argmax_score};
pub use budget::{BudgetState, CostPolicy, Decision};
pub use embedder::Embedder;
pub use error::{Detail, Error, ErrorKind, Result};
pub use mckp::{MckpInstance, MckpSolution, MckpSolver};
pub use policy::{GrowPool, Policy, PolicyExt, Snapshot};
pub use rand_core::RngCore;
pub use real::Real;
pub use value::{Cost, Reward, check_finite, check_len};
