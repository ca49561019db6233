//! The PILOT router: one decision path for simulation, serving and firmware.
#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod step;

#[cfg(feature = "alloc")]
mod event;
#[cfg(feature = "std")]
pub mod log;
#[cfg(feature = "alloc")]
mod router;

pub use step::{Exploration, Status, Step, StepInput, StepScratch, decide};

#[cfg(feature = "alloc")]
pub use event::{
    ArmStart, Candidate, DecisionEvent, EVENT_VERSION, Event, Price, Record, Versions,
};
#[cfg(feature = "alloc")]
pub use router::{
    Arm, Decision, Input, LiveCost, LivePolicy, NoEmbedder, Quote, Router, RouterConfig,
    RoutingPolicy,
};
