//! The router's events: every decision, settlement, feedback, expiry and operator change, in one
//! versioned log that serves recovery, off-policy evaluation and replicas alike.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::step::{Exploration, Status};

/// Version of the event format; a reader refuses other versions.
pub const EVENT_VERSION: u16 = 1;

/// One entry of the log: its position, the caller's time and the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Format version ([`EVENT_VERSION`]).
    pub v: u16,
    /// Position in the log, from 0, without gaps.
    pub seq: u64,
    /// The caller's time of the event (its tick or timestamp).
    pub at: u64,
    /// What happened.
    pub event: Event,
}

/// The price of an LLM, in currency per million tokens, and its output limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Price {
    /// Per million input tokens.
    pub input_per_mtok: f64,
    /// Per million output tokens.
    pub output_per_mtok: f64,
    /// Most output tokens a call may produce (its worst case).
    pub max_output_tokens: u64,
}

impl Price {
    /// The cost of `input` input and `output` output tokens.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input_per_mtok + output as f64 * self.output_per_mtok) / 1e6
    }

    /// Whether the prices are finite and non-negative.
    pub fn is_valid(&self) -> bool {
        self.input_per_mtok.is_finite()
            && self.output_per_mtok.is_finite()
            && self.input_per_mtok >= 0.0
            && self.output_per_mtok >= 0.0
    }
}

/// What produced the decisions that follow, until the next such event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Versions {
    /// The router build.
    pub router: String,
    /// The policy and its settings (a line-up name, a plugin file, …).
    pub policy: String,
    /// The prior (file name, source, seed), empty without one.
    pub prior: String,
    /// The embedder's id, empty when callers pass vectors.
    pub embedder: String,
}

/// One arm's view in a decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The policy's mean estimate μ.
    pub estimate: f32,
    /// Its uncertainty width.
    pub width: f32,
    /// The score it ranks by.
    pub score: f32,
    /// Estimated cost of the call (currency).
    pub cost: f64,
    /// Worst-case cost of the call (guard units).
    pub worst: u64,
    /// Probability it was drawn.
    pub probability: f64,
    /// Chosen, candidate, over budget or disabled.
    pub status: Status,
}

/// A routing decision, with everything recovery and off-policy evaluation need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// The caller's request id.
    pub request: u64,
    /// The policy context (projected vector).
    pub context: Vec<f32>,
    /// One entry per arm of the pool at the time.
    pub arms: Vec<Candidate>,
    /// The arm called (`None`: nothing fit the budget).
    pub chosen: Option<u32>,
    /// The cost policy's own proposal (`None`: it reported the budget exhausted).
    pub proposed: Option<u32>,
    /// Whether the budget guard replaced the proposal.
    pub overridden: bool,
    /// π(chosen | context, candidates).
    pub propensity: f64,
    /// How the arm was drawn.
    pub draw: Exploration,
    /// Units held for the call.
    pub hold: u64,
    /// Units the guard kept aside for later calls at this decision.
    pub keep_aside: u64,
}

/// How a new arm's learned state starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ArmStart {
    /// At this prior vector (dimension of the policy context).
    Vector(Vec<f32>),
    /// At the mean of the other arms' start vectors (an average LLM).
    MeanOfOthers,
    /// At the policy's neutral start (zero).
    Neutral,
}

/// Everything that changes a router's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The versions of what makes the decisions that follow.
    Versions(Versions),
    /// A routing decision (also when nothing fit: the cost policy still saw the query).
    Decision(DecisionEvent),
    /// A call finished and cost `cost` (currency; `units` in the guard's units).
    Settle {
        /// Request id.
        request: u64,
        /// Real cost.
        cost: f64,
        /// Whether it exceeded the hold.
        overrun: bool,
    },
    /// A call failed before costing anything: its hold was returned.
    Release {
        /// Request id.
        request: u64,
    },
    /// The reward of a call arrived and was learned from.
    Feedback {
        /// Request id.
        request: u64,
        /// Reward in `[0, 1]`.
        reward: f32,
        /// Time since the decision.
        delay: u64,
    },
    /// A decision's time ran out: it is forgotten, and its hold charged in full if it was
    /// never settled.
    Expire {
        /// Request id.
        request: u64,
        /// Whether its hold was charged (never settled).
        charged: bool,
    },
    /// An LLM joined the pool.
    ArmAdded {
        /// Its name.
        name: String,
        /// Its price.
        price: Price,
        /// The resolved start vector (`None`: neutral).
        start: Option<Vec<f32>>,
    },
    /// An LLM was disabled (`false`) or enabled again (`true`).
    ArmEnabled {
        /// Arm index.
        arm: u32,
        /// New state.
        enabled: bool,
    },
    /// An LLM's price changed.
    PriceChanged {
        /// Arm index.
        arm: u32,
        /// New price.
        price: Price,
    },
    /// The budget changed (currency), keeping what is spent.
    BudgetChanged {
        /// New budget.
        budget: f64,
    },
    /// A new budget period began (currency): spent restarts at zero.
    NewPeriod {
        /// The period's budget.
        budget: f64,
    },
}
