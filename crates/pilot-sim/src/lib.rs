//! Bandit-feedback replay simulator for PILOT router: policies × budgets × seeds, metrics and reports.
//!
//! A [`Problem`] holds a pool of LLMs, a learning split and a deployment split with every LLM's
//! real quality and cost. An [`Episode`] replays the deployment stream (ordered per seed and
//! [`Scenario`]) through a `pilot_router::Router` around any policy and cost policy — the same
//! object live traffic goes through: only the chosen LLM's quality and cost are revealed,
//! decisions are made on [`CostModel`] estimates, and the router's budget guard keeps the real
//! spend within the budget. A [`Grid`] runs every combination of
//! policies, cost policies, budgets and seeds on a few threads; [`summary`], [`report`] and
//! [`plot`] turn the cells into CSV files, a table and SVG plots.
//!
//! [`plan`] is what a run is made of, as plain data (serde): loading, prior fitting, tuning
//! and the experiment's assembly, so the `pilot simulate` CLI only builds a plan and prints.

mod context;
mod cost_model;
pub mod data;
mod engine;
mod error;
pub mod experiment;
pub mod grid;
pub mod hyper;
pub mod lineup;
mod neighbours;
pub mod offline;
pub mod plan;
pub mod plot;
pub mod priors;
mod problem;
mod reference;
pub mod report;
pub mod stream;
pub mod summary;
pub mod synthetic;
pub mod tune;
pub mod world;

pub use context::{ContextMap, ContextTable};
pub use cost_model::{CostModel, UPPER_SAFETY};
pub use engine::{Changes, Episode, Event, Outcome, run_episode, run_episode_with, starting_pool};
pub use error::{Result, SimError};
pub use grid::{CellResult, CostPolicySpec, Grid, PolicySpec};
pub use neighbours::Neighbours;
pub use problem::{Problem, Queries};
pub use reference::{Frozen, ReadOut};
pub use stream::{Scenario, deployment_order};
