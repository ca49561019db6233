//! Bandit policies for PILOT router: PILOT, LinUCB, linear Thompson sampling and baselines.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc = include_str!("../README.md")]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod baseline;
mod codec;
mod kernel;
pub mod packed;
pub mod params;
mod policies;
pub mod random;
mod ridge;
pub mod storage;
mod trust;

#[cfg(feature = "dev")]
pub mod conformance;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use baseline::{FixedArm, UniformRandom};
pub use codec::SNAPSHOT_VERSION;
pub use params::{
    EpsilonGreedyConfig, EpsilonGreedyParams, LinTsConfig, LinTsParams, LinUcbConfig, LinUcbParams,
    RidgeConfig, RidgeParams,
};
pub use policies::{EpsilonGreedy, EpsilonGreedyFixed, LinTs, LinTsFixed, LinUcb, LinUcbFixed};
#[cfg(feature = "alloc")]
pub use policies::{EpsilonGreedyVec, LinTsVec, LinUcbVec};
pub use ridge::{Estimate, MAX_DIM, Ridge, snapshot_max_len};
#[cfg(feature = "alloc")]
pub use storage::VecArms;
pub use storage::{FixedArms, LinearArms, Pool};
#[cfg(feature = "alloc")]
pub use trust::PriorTrustVec;
pub use trust::{ArmTrust, PriorTrust, PriorTrustFixed, TrustParams};
