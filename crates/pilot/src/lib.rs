//! PILOT router: adaptive, budget-aware LLM routing — one import for every pilot-* crate.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`core`] | `pilot-core` | ids, errors, the traits |
//! | [`embed`] | `pilot-embed` | embedding-space math, the hashing embedder |
//! | [`bandit`] | `pilot-bandit` | PILOT, LinUCB, LinTS, baselines |
//! | [`budget`] | `pilot-budget` | knapsack solvers, online budget policies |
//! | [`prior`] | `pilot-prior` | the preference prior learner |
//! | [`data`] | `pilot-data` | dataset formats and loaders |
//! | [`router`] | `pilot-router` | the router: route, settle, feedback, live arms, events |
//! | [`ope`] | `pilot-ope` | off-policy evaluation on the router's decision log |
//! | [`sim`] | `pilot-sim` | the replay simulator |

pub use pilot_bandit as bandit;
pub use pilot_budget as budget;
pub use pilot_core as core;
pub use pilot_data as data;
pub use pilot_embed as embed;
#[cfg(feature = "minilm")]
pub use pilot_minilm as minilm;
pub use pilot_ope as ope;
#[cfg(feature = "plugins")]
pub use pilot_plugin_host as plugin_host;
pub use pilot_prior as prior;
pub use pilot_router as router;
pub use pilot_sim as sim;
