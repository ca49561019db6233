//! A policy plugin as a [`pilot_core::Policy`] and [`pilot_core::Snapshot`]: inputs checked before
//! the call, outputs validated after it, and learned state that survives a trap.

use std::cell::RefCell;

use pilot_core::{
    ArmId, ArmScore, Detail, Error as CoreError, ErrorKind, Policy, Result as CoreResult, Reward,
    RngCore, Snapshot, check_finite, check_len,
};
use wasmtime::component::ResourceAny;

use crate::bindings::policy::PolicyPlugin;
use crate::engine::Pre;
use crate::sandbox::Sandbox;
use crate::{CompiledPlugin, PluginError, PluginKind, validate};

struct Live {
    sandbox: Sandbox,
    bindings: PolicyPlugin,
    router: ResourceAny,
}

/// One successful update, kept until the next checkpoint so a trap loses nothing.
struct Observation {
    arm: u32,
    context: Vec<f32>,
    reward: f32,
}

struct Inner {
    live: Option<Live>,
    /// The last snapshot taken by the host; `None` = fresh from the configuration.
    checkpoint: Option<Vec<u8>>,
    /// Updates applied since `checkpoint`.
    journal: Vec<Observation>,
    /// Bytes the journal holds (contexts plus per-entry overhead).
    journal_bytes: usize,
    /// Checkpoints that failed since the last one that worked.
    checkpoint_failures: usize,
    /// Set when the policy failed for good ([`PluginError::CheckpointFailed`]); every call
    /// returns it.
    failed: Option<PluginError>,
    /// A snapshot of the current state, valid until the next update or restore.
    snapshot_cache: Option<Vec<u8>>,
    last_error: Option<PluginError>,
    restarts: u64,
}

/// A routing policy running in a plugin.
///
/// Randomness: each `select` draws one `u64` from the caller's RNG and passes it to the plugin
/// (which has no entropy of its own), so runs replay from the caller's seed.
///
/// Learned state and traps: the host snapshots the plugin every
/// [`Limits::checkpoint_every`](crate::Limits) updates and journals the updates in between.
/// When a call trips a limit or traps, the instance is discarded, a fresh one is created from the
/// same configuration, the checkpoint is restored and the journal replayed — the policy is
/// exactly as it was before the failed call, and the failed call returns its error.
///
/// Checkpoint failures are bounded: after [`Limits::checkpoint_failures`](crate::Limits) failed
/// checkpoints in a row, or when the journal reaches
/// [`Limits::journal_len`](crate::Limits) updates or [`Limits::journal_bytes`](crate::Limits)
/// bytes without one, the policy fails for good with [`PluginError::CheckpointFailed`] (the
/// update that tripped it was applied, but the instance is dropped), and every later call
/// returns that error.
pub struct PluginPolicy {
    plugin: CompiledPlugin,
    config: String,
    dim: usize,
    arms: usize,
    inner: RefCell<Inner>,
}

impl std::fmt::Debug for PluginPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPolicy")
            .field("plugin", &self.plugin.name())
            .field("config", &self.config)
            .field("dim", &self.dim)
            .field("arms", &self.arms)
            .finish_non_exhaustive()
    }
}

impl PluginPolicy {
    /// Instantiates `plugin` and creates its policy from `config` (plugin-defined).
    ///
    /// # Errors
    /// [`PluginError::Abi`] when `plugin` is an embedder plugin, [`PluginError::Reported`] when
    /// the plugin rejects the configuration, [`PluginError::Output`] for a zero or huge dimension
    /// or pool, and any sandbox error raised while starting it.
    pub fn new(plugin: &CompiledPlugin, config: &str) -> Result<Self, PluginError> {
        if plugin.kind() != PluginKind::Policy {
            return Err(PluginError::Abi(format!(
                "{} is an {}, not a policy-plugin",
                plugin.name(),
                plugin.kind()
            )));
        }
        let mut live = instantiate(plugin, config)?;
        let (dim, arms) = shape_of(&mut live)?;
        Ok(Self {
            plugin: plugin.clone(),
            config: config.to_string(),
            dim,
            arms,
            inner: RefCell::new(Inner {
                live: Some(live),
                checkpoint: None,
                journal: Vec::new(),
                journal_bytes: 0,
                checkpoint_failures: 0,
                failed: None,
                snapshot_cache: None,
                last_error: None,
                restarts: 0,
            }),
        })
    }

    /// [`Policy::select`] with per-arm costs passed to the plugin (empty when there are none)
    /// and the detailed error.
    ///
    /// # Errors
    /// [`PluginError::Input`] for a wrong dimension or non-finite values (the plugin is not
    /// called), [`PluginError::Output`] for scores of the wrong length, non-finite or out of
    /// range, a chosen arm outside the pool or not the best-scoring one, and sandbox errors.
    pub fn select_with_costs(
        &mut self,
        context: &[f32],
        costs: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId, PluginError> {
        let result = self.select_unrecorded(context, costs, rng, scores);
        self.record(result)
    }

    fn select_unrecorded(
        &mut self,
        context: &[f32],
        costs: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId, PluginError> {
        check_len("PluginPolicy::select: context", context, self.dim)?;
        check_finite("PluginPolicy::select: context", context)?;
        check_len("PluginPolicy::select: scores", scores, self.arms)?;
        if !costs.is_empty() {
            check_len("PluginPolicy::select: costs", costs, self.arms)?;
            check_finite("PluginPolicy::select: costs", costs)?;
            if let Some(c) = costs.iter().find(|c| **c < 0.0) {
                return Err(PluginError::Input(
                    CoreError::new(ErrorKind::NegativeCost, "PluginPolicy::select: costs")
                        .with_detail(Detail::Value(f64::from(*c))),
                ));
            }
        }
        let seed = rng.next_u64();
        let bound = self.plugin.limits().output_bound;
        let arms = self.arms;
        let inner = self.inner.get_mut();
        let selection = guarded(inner, &self.plugin, &self.config, "router.select", |live| {
            let guest = live.bindings.pilot_plugin_policy().router();
            let router = live.router;
            live.sandbox
                .call("router.select", |s| {
                    guest.call_select(s, router, context, costs, seed)
                })?
                .map_err(|f| f.into_error("router.select"))
        })?;
        let returned: Vec<ArmScore<f32>> = selection
            .scores
            .iter()
            .map(|s| ArmScore {
                estimate: s.estimate,
                width: s.width,
                score: s.score,
            })
            .collect();
        let arm = validate::selection(selection.arm, &returned, arms, bound)?;
        for (out, s) in scores.iter_mut().zip(&returned) {
            *out = *s;
        }
        Ok(arm)
    }

    /// [`Policy::update`] with the detailed error.
    ///
    /// # Errors
    /// [`PluginError::Input`] for an unknown arm, a wrong dimension or non-finite values,
    /// [`PluginError::Reported`] when the plugin refuses (a reward out of its range, say), and
    /// sandbox errors. The learned state is unchanged on error.
    pub fn observe(&mut self, arm: ArmId, context: &[f32], reward: f32) -> Result<(), PluginError> {
        let result = self.observe_unrecorded(arm, context, reward);
        self.record(result)
    }

    fn observe_unrecorded(
        &mut self,
        arm: ArmId,
        context: &[f32],
        reward: f32,
    ) -> Result<(), PluginError> {
        if arm.index() >= self.arms {
            return Err(PluginError::Input(CoreError::unknown_arm(
                "PluginPolicy::update: arm",
                arm.index(),
                self.arms,
            )));
        }
        check_len("PluginPolicy::update: context", context, self.dim)?;
        check_finite("PluginPolicy::update: context", context)?;
        Reward::new(reward)?;
        let limits = self.plugin.limits();
        let inner = self.inner.get_mut();
        guarded(
            inner,
            &self.plugin,
            &self.config,
            "router.observe",
            |live| {
                let guest = live.bindings.pilot_plugin_policy().router();
                let router = live.router;
                live.sandbox
                    .call("router.observe", |s| {
                        guest.call_observe(s, router, arm.0, context, reward)
                    })?
                    .map_err(|f| f.into_error("router.observe"))
            },
        )?;
        inner.snapshot_cache = None;
        inner.journal.push(Observation {
            arm: arm.0,
            context: context.to_vec(),
            reward,
        });
        inner.journal_bytes = inner
            .journal_bytes
            .saturating_add(std::mem::size_of_val(context) + std::mem::size_of::<Observation>());
        if inner.journal.len() >= limits.checkpoint_every
            || inner.journal_bytes >= limits.journal_bytes
        {
            match take_snapshot(inner, &self.plugin, &self.config) {
                Ok(bytes) => {
                    inner.checkpoint = Some(bytes);
                    inner.journal.clear();
                    inner.journal_bytes = 0;
                    inner.checkpoint_failures = 0;
                }
                Err(e) => {
                    // A failed checkpoint loses nothing (the journal keeps the updates and the
                    // next update tries again), but only a few times and only while the journal
                    // stays within its caps: then the policy fails for good, by name.
                    inner.checkpoint_failures += 1;
                    let why = if inner.checkpoint_failures >= limits.checkpoint_failures {
                        Some(format!(
                            "{} checkpoints in a row failed (limit `checkpoint_failures` = {})",
                            inner.checkpoint_failures, limits.checkpoint_failures
                        ))
                    } else if inner.journal.len() >= limits.journal_len {
                        Some(format!(
                            "its journal reached {} updates without a checkpoint (limit \
                             `journal_len`)",
                            inner.journal.len()
                        ))
                    } else if inner.journal_bytes >= limits.journal_bytes {
                        Some(format!(
                            "its journal reached {} bytes without a checkpoint (limit \
                             `journal_bytes` = {})",
                            inner.journal_bytes, limits.journal_bytes
                        ))
                    } else {
                        None
                    };
                    match why {
                        Some(why) => {
                            let failed = PluginError::CheckpointFailed {
                                plugin: self.plugin.name().to_string(),
                                why,
                                cause: Box::new(e),
                            };
                            inner.failed = Some(failed.clone());
                            inner.live = None;
                            inner.journal = Vec::new();
                            inner.journal_bytes = 0;
                            return Err(failed);
                        }
                        None => inner.last_error = Some(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// Replaces the learned state with `bytes` (as written by [`Snapshot::save`]).
    ///
    /// # Errors
    /// [`PluginError::Reported`] when the plugin rejects the bytes (truncated, corrupt, another
    /// format or configuration), sandbox errors; the state is unchanged on error.
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let result = self.restore_unrecorded(bytes);
        self.record(result)
    }

    /// Keeps the detailed error of a failed call for [`last_error`](Self::last_error).
    fn record<T>(&mut self, result: Result<T, PluginError>) -> Result<T, PluginError> {
        if let Err(e) = &result {
            self.inner.get_mut().last_error = Some(e.clone());
        }
        result
    }

    fn restore_unrecorded(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let inner = self.inner.get_mut();
        guarded(
            inner,
            &self.plugin,
            &self.config,
            "router.restore",
            |live| {
                let guest = live.bindings.pilot_plugin_policy().router();
                let router = live.router;
                live.sandbox
                    .call("router.restore", |s| guest.call_restore(s, router, bytes))?
                    .map_err(|f| f.into_error("router.restore"))
            },
        )?;
        inner.checkpoint = Some(bytes.to_vec());
        inner.journal.clear();
        inner.journal_bytes = 0;
        inner.checkpoint_failures = 0;
        inner.snapshot_cache = None;
        Ok(())
    }

    /// The learned state as bytes, from the plugin.
    ///
    /// # Errors
    /// Sandbox errors and failures the plugin reports.
    pub fn snapshot_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let mut inner = self.inner.borrow_mut();
        if let Some(e) = &inner.failed {
            return Err(e.clone());
        }
        if let Some(bytes) = &inner.snapshot_cache {
            return Ok(bytes.clone());
        }
        let bytes = take_snapshot(&mut inner, &self.plugin, &self.config)?;
        inner.snapshot_cache = Some(bytes.clone());
        Ok(bytes)
    }

    /// The last detailed error (the trait methods return only its kind).
    pub fn last_error(&self) -> Option<PluginError> {
        self.inner.borrow().last_error.clone()
    }

    /// How many times the instance was re-created after a trap.
    pub fn restarts(&self) -> u64 {
        self.inner.borrow().restarts
    }

    /// Updates journaled since the last checkpoint.
    pub fn journal_len(&self) -> usize {
        self.inner.borrow().journal.len()
    }

    /// Bytes the journal holds (its contexts and per-update overhead).
    pub fn journal_bytes(&self) -> usize {
        self.inner.borrow().journal_bytes
    }

    /// Checkpoints that failed since the last one that worked.
    pub fn checkpoint_failures(&self) -> usize {
        self.inner.borrow().checkpoint_failures
    }

    /// The error the policy failed for good with ([`PluginError::CheckpointFailed`]), if it did.
    pub fn failure(&self) -> Option<PluginError> {
        self.inner.borrow().failed.clone()
    }

    /// The compiled plugin behind this policy.
    pub fn plugin(&self) -> &CompiledPlugin {
        &self.plugin
    }

    /// The configuration string it was created with.
    pub fn config(&self) -> &str {
        &self.config
    }
}

fn take_snapshot(
    inner: &mut Inner,
    plugin: &CompiledPlugin,
    config: &str,
) -> Result<Vec<u8>, PluginError> {
    guarded(inner, plugin, config, "router.snapshot", |live| {
        let guest = live.bindings.pilot_plugin_policy().router();
        let router = live.router;
        live.sandbox
            .call("router.snapshot", |s| guest.call_snapshot(s, router))?
            .map_err(|f| f.into_error("router.snapshot"))
    })
}

/// Runs `f` on the live instance (re-creating it first if a trap poisoned it); after a trap,
/// discards the instance and recovers the learned state at once. Records the error.
fn guarded<R>(
    inner: &mut Inner,
    plugin: &CompiledPlugin,
    config: &str,
    call: &'static str,
    f: impl FnOnce(&mut Live) -> Result<R, PluginError>,
) -> Result<R, PluginError> {
    if let Some(failed) = &inner.failed {
        return Err(failed.clone());
    }
    let result = match inner.live.as_mut() {
        Some(live) => f(live),
        None => match recover(inner, plugin, config) {
            Ok(()) => match inner.live.as_mut() {
                Some(live) => f(live),
                None => Err(PluginError::Poisoned(format!("{call}: no live instance"))),
            },
            Err(e) => Err(e),
        },
    };
    if let Err(e) = &result {
        if e.poisons_instance() {
            inner.live = None;
            // Recover now so the caller's next call finds the state as it was; if recovery
            // fails, the next call tries again.
            if let Err(again) = recover(inner, plugin, config) {
                inner.last_error = Some(again);
                return Err(e.clone());
            }
        }
        inner.last_error = Some(e.clone());
    }
    result
}

/// A fresh instance with the learned state of the last checkpoint plus the journal.
fn recover(inner: &mut Inner, plugin: &CompiledPlugin, config: &str) -> Result<(), PluginError> {
    inner.restarts += 1;
    let failed = |step: &str, e: PluginError| PluginError::Poisoned(format!("{step}: {e}"));
    let mut live = instantiate(plugin, config).map_err(|e| failed("re-instantiating", e))?;
    let Live {
        sandbox,
        bindings,
        router,
    } = &mut live;
    let guest = bindings.pilot_plugin_policy().router();
    if let Some(bytes) = &inner.checkpoint {
        sandbox
            .call("router.restore", |s| guest.call_restore(s, *router, bytes))
            .and_then(|r| r.map_err(|f| f.into_error("router.restore")))
            .map_err(|e| failed("restoring the checkpoint", e))?;
    }
    for obs in &inner.journal {
        sandbox
            .call("router.observe", |s| {
                guest.call_observe(s, *router, obs.arm, &obs.context, obs.reward)
            })
            .and_then(|r| r.map_err(|f| f.into_error("router.observe")))
            .map_err(|e| failed("replaying the journal", e))?;
    }
    inner.live = Some(live);
    Ok(())
}

fn instantiate(plugin: &CompiledPlugin, config: &str) -> Result<Live, PluginError> {
    let Pre::Policy(pre) = &*plugin.pre else {
        return Err(PluginError::Abi(format!(
            "{} is not a policy-plugin",
            plugin.name()
        )));
    };
    let mut sandbox = Sandbox::new(&plugin.engine, plugin.limits());
    let bindings = sandbox.instantiate(plugin.name(), pre.instance_pre(), |s, instance| {
        PolicyPlugin::new(s, instance)
    })?;
    let guest = bindings.pilot_plugin_policy().router();
    let router = sandbox
        .call("router.create", |s| guest.call_create(s, config))?
        .map_err(|f| f.into_error("router.create"))?;
    Ok(Live {
        sandbox,
        bindings,
        router,
    })
}

fn shape_of(live: &mut Live) -> Result<(usize, usize), PluginError> {
    let guest = live.bindings.pilot_plugin_policy().router();
    let router = live.router;
    let dim = live
        .sandbox
        .call("router.dim", |s| guest.call_dim(s, router))? as usize;
    let arms = live
        .sandbox
        .call("router.arm-count", |s| guest.call_arm_count(s, router))? as usize;
    validate::policy_shape(dim, arms)?;
    Ok((dim, arms))
}

impl Policy<f32> for PluginPolicy {
    fn dim(&self) -> usize {
        self.dim
    }

    fn arm_count(&self) -> usize {
        self.arms
    }

    fn select(
        &mut self,
        context: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> CoreResult<ArmId> {
        self.select_with_costs(context, &[], rng, scores)
            .map_err(|e| e.to_core("PluginPolicy::select"))
    }

    fn update(&mut self, arm: ArmId, context: &[f32], reward: Reward<f32>) -> CoreResult<()> {
        self.observe(arm, context, reward.get())
            .map_err(|e| e.to_core("PluginPolicy::update"))
    }
}

impl Snapshot for PluginPolicy {
    fn snapshot_len(&self) -> usize {
        // On failure save() reports the real error; zero makes any buffer big enough to get there.
        self.snapshot_bytes().map(|b| b.len()).unwrap_or(0)
    }

    fn save(&self, out: &mut [u8]) -> CoreResult<usize> {
        let bytes = self
            .snapshot_bytes()
            .map_err(|e| e.to_core("PluginPolicy::save"))?;
        validate::snapshot_into(&bytes, out, "PluginPolicy::save")
    }

    fn restore(&mut self, bytes: &[u8]) -> CoreResult<()> {
        self.restore_state(bytes)
            .map_err(|e| e.to_core("PluginPolicy::restore"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_wrappers_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<super::PluginPolicy>();
        send::<crate::PluginEmbedder>();
        send::<crate::CompiledPlugin>();
    }
}
