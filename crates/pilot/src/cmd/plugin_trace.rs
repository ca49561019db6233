//! A policy plugin that keeps its detailed errors where the CLI can read them.
//!
//! At the `Policy` / `Snapshot` trait boundary a plugin's error becomes an allocation-free
//! `pilot_core::Error` ("plugin trapped in PluginPolicy::select"), which is all the simulator
//! and the conformance kit get to see. [`Traced`] passes every call through and records, next
//! to that short form, the host's detailed error ("plugin trapped in `router.select`: call
//! stack exhausted at …", "arm 2: width -0.5 is negative"), so `pilot simulate` and
//! `pilot plugin check` can print the reason.

use std::sync::{Arc, Mutex};

use pilot_core::{ArmId, ArmScore, Policy, Result as CoreResult, Reward, RngCore, Snapshot};
use pilot_plugin_host::{PluginError, PluginPolicy};

/// One recorded failure: the short core error as the caller saw it, and the detailed one.
#[derive(Clone, Debug)]
pub struct Failure {
    /// `pilot_core::Error`'s text, as it appears inside the caller's message.
    pub short: String,
    /// The host's detailed error (plugin strings already escaped and capped by the host).
    pub detailed: String,
}

/// The failures of every policy sharing one log, in the order they happened.
pub type Log = Arc<Mutex<Vec<Failure>>>;

/// At most this many failures are kept (a failing policy fails every call after).
const MAX_KEPT: usize = 64;

/// A [`PluginPolicy`] that records its detailed errors in a shared [`Log`].
pub struct Traced {
    policy: PluginPolicy,
    log: Log,
}

impl Traced {
    /// Wraps `policy`; its failures go to `log`.
    pub fn new(policy: PluginPolicy, log: Log) -> Self {
        Self { policy, log }
    }

    fn record<T>(&self, context: &'static str, result: Result<T, PluginError>) -> CoreResult<T> {
        result.map_err(|e| {
            let core = e.to_core(context);
            if let Ok(mut log) = self.log.lock()
                && log.len() < MAX_KEPT
            {
                log.push(Failure {
                    short: core.to_string(),
                    detailed: e.to_string(),
                });
            }
            core
        })
    }
}

impl Policy<f32> for Traced {
    fn dim(&self) -> usize {
        self.policy.dim()
    }

    fn arm_count(&self) -> usize {
        self.policy.arm_count()
    }

    fn select(
        &mut self,
        context: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> CoreResult<ArmId> {
        let result = self.policy.select_with_costs(context, &[], rng, scores);
        self.record("PluginPolicy::select", result)
    }

    fn update(&mut self, arm: ArmId, context: &[f32], reward: Reward<f32>) -> CoreResult<()> {
        let result = self.policy.observe(arm, context, reward.get());
        self.record("PluginPolicy::update", result)
    }
}

impl pilot_core::GrowPool<f32> for Traced {
    fn add_arm(&mut self, prior: Option<&[f32]>) -> pilot_core::Result<pilot_core::ArmId> {
        self.policy.add_arm(prior)
    }
}

impl Snapshot for Traced {
    fn snapshot_len(&self) -> usize {
        self.policy.snapshot_len()
    }

    fn save(&self, out: &mut [u8]) -> CoreResult<usize> {
        let bytes = self.policy.snapshot_bytes();
        let bytes = self.record("PluginPolicy::save", bytes)?;
        pilot_plugin_host::validate::snapshot_into(&bytes, out, "PluginPolicy::save")
    }

    fn restore(&mut self, bytes: &[u8]) -> CoreResult<()> {
        let result = self.policy.restore_state(bytes);
        self.record("PluginPolicy::restore", result)
    }
}

/// The detailed cause behind `message` (a caller's error text that quotes a short core error):
/// the first failure at or after `*from` whose short form `message` contains. `*from` moves past
/// it, so consecutive messages are matched with consecutive failures.
pub fn cause_of(log: &Log, message: &str, from: &mut usize) -> Option<String> {
    let log = log.lock().ok()?;
    let (i, failure) = log
        .iter()
        .enumerate()
        .skip(*from)
        .find(|(_, f)| message.contains(&f.short))?;
    *from = i + 1;
    Some(failure.detailed.clone())
}
