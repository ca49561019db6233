//! What a PILOT router plugin author depends on: one trait to implement and one export macro.
//!
//! A plugin is the router's own trait, compiled to a WebAssembly component:
//!
//! - an **embedder** implements [`pilot_core::Embedder`] plus [`EmbedderPlugin::create`], then
//!   calls [`export_embedder!`];
//! - a **policy** implements [`pilot_core::Policy<f32>`] and [`pilot_core::Snapshot`] plus
//!   [`PolicyPlugin::create`], then calls [`export_policy!`].
//!
//! So a native embedder or policy becomes a plugin with a constructor and one macro line, and a
//! plugin can be tested natively like any other implementation (the conformance kit in
//! `pilot-bandit`). Build for `wasm32-unknown-unknown` with `linker = "wasm-component-ld"`
//! (`cargo xtask plugins` does it); see `docs/plugins.md`.
//!
//! Randomness: a plugin has no entropy. Each `select` receives a seed drawn by the host from the
//! caller's RNG, and the SDK hands the policy [`seed_rng`]`(seed)`: a run replays from the
//! caller's seed, and a native run fed the same seeds makes the same decisions.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;

/// The router's core vocabulary (errors, the snapshot envelope, …).
pub use pilot_core;
pub use pilot_core::{
    ArmId, ArmScore, Embedder, Error, ErrorKind, Policy, Result, Reward, RngCore, Snapshot,
};

/// The version of the `pilot:plugin` WIT package these macros export (the plugin ABI version).
pub const ABI_VERSION: &str = "0.1.0";

/// The RNG a policy plugin's `select` receives.
pub type SeedRng = rand_pcg::Pcg32;

/// The RNG built from a per-call seed: `Pcg32::seed_from_u64(seed)`.
pub fn seed_rng(seed: u64) -> SeedRng {
    use rand_core::SeedableRng;
    rand_pcg::Pcg32::seed_from_u64(seed)
}

/// An embedder that can be built from a configuration string and exported as a plugin.
pub trait EmbedderPlugin: Embedder + Sized + 'static {
    /// Builds the embedder from the host's configuration string (empty = defaults).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a configuration it cannot use.
    fn create(config: &str) -> Result<Self>;

    /// Embeds `text` into a new vector of [`dim`](Embedder::dim) values. The default calls
    /// [`Embedder::embed`]; there is rarely a reason to override it.
    ///
    /// # Errors
    /// As [`Embedder::embed`].
    fn embed_vec(&mut self, text: &str) -> Result<Vec<f32>> {
        let mut out = alloc::vec![0.0; self.dim()];
        self.embed(text, &mut out)?;
        Ok(out)
    }
}

/// A policy that can be built from a configuration string and exported as a plugin.
pub trait PolicyPlugin: Policy<f32> + Snapshot + Sized + 'static {
    /// Builds the policy from the host's configuration string (plugin-defined, e.g. `d=16 k=11`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidParameter`] for a configuration it cannot use.
    fn create(config: &str) -> Result<Self>;

    /// Scores every arm; `costs` holds one cost per arm or is empty. The default ignores the
    /// costs and calls [`Policy::select`].
    ///
    /// # Errors
    /// As [`Policy::select`].
    fn select_scored(
        &mut self,
        context: &[f32],
        costs: &[f32],
        rng: &mut dyn RngCore,
    ) -> Result<(ArmId, Vec<ArmScore<f32>>)> {
        let _ = costs;
        let mut scores = alloc::vec![ArmScore::default(); self.arm_count()];
        let arm = self.select(context, rng, &mut scores)?;
        Ok((arm, scores))
    }
}

/// Parses a configuration of `key=value` pairs separated by spaces or commas, calling `set` for
/// each; a convenience for [`EmbedderPlugin::create`] and [`PolicyPlugin::create`].
///
/// # Errors
/// [`ErrorKind::InvalidParameter`] for a pair without `=`, or whatever `set` returns.
pub fn parse_config(config: &str, mut set: impl FnMut(&str, &str) -> Result<()>) -> Result<()> {
    for pair in config
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "plugin config: expected key=value",
            ));
        };
        set(key.trim(), value.trim())?;
    }
    Ok(())
}

/// Parses a configuration value as an unsigned integer.
///
/// # Errors
/// [`ErrorKind::InvalidParameter`] with `context` when it is not one.
pub fn parse_usize(context: &'static str, value: &str) -> Result<usize> {
    value
        .parse()
        .map_err(|_| Error::new(ErrorKind::InvalidParameter, context))
}

/// Parses a configuration value as a finite float.
///
/// # Errors
/// [`ErrorKind::InvalidParameter`] with `context` when it is not one.
pub fn parse_f32(context: &'static str, value: &str) -> Result<f32> {
    match value.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(Error::new(ErrorKind::InvalidParameter, context)),
    }
}

include!(concat!(env!("OUT_DIR"), "/export_macros.rs"));

/// Used by the export macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use alloc::string::String;
    pub use alloc::vec::Vec;
    pub use core::cell::RefCell;
    pub use wit_bindgen;

    use crate::{ArmId, ArmScore, PolicyPlugin, Result, Reward};

    /// Sizes cross the ABI as `u32`; anything larger saturates (and the host rejects it).
    pub fn to_u32(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    pub fn message(e: &crate::Error) -> String {
        alloc::format!("{e}")
    }

    pub fn select<P: PolicyPlugin>(
        policy: &mut P,
        context: &[f32],
        costs: &[f32],
        seed: u64,
    ) -> Result<(u32, Vec<ArmScore<f32>>)> {
        let mut rng = crate::seed_rng(seed);
        let (arm, scores) = policy.select_scored(context, costs, &mut rng)?;
        Ok((arm.0, scores))
    }

    pub fn observe<P: PolicyPlugin>(
        policy: &mut P,
        arm: u32,
        context: &[f32],
        reward: f32,
    ) -> Result<()> {
        policy.update(ArmId(arm), context, Reward::new(reward)?)
    }

    pub fn snapshot<P: PolicyPlugin>(policy: &P) -> Result<Vec<u8>> {
        let mut bytes = alloc::vec![0u8; policy.snapshot_len()];
        let n = policy.save(&mut bytes)?;
        bytes.truncate(n);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_pairs_parse_and_bad_pairs_are_named() {
        let mut seen = Vec::new();
        parse_config("d=16, k=11  alpha=0.5", |k, v| {
            seen.push((
                alloc::string::String::from(k),
                alloc::string::String::from(v),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].0, "alpha");
        let err = parse_config("d16", |_, _| Ok(())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameter);
        assert_eq!(parse_usize("d", "16").unwrap(), 16);
        assert!(parse_f32("alpha", "NaN").is_err());
    }

    #[test]
    fn seed_rng_replays() {
        let (mut a, mut b) = (seed_rng(7), seed_rng(7));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(seed_rng(8).next_u64(), seed_rng(7).next_u64());
    }
}
