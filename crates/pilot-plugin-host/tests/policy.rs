//! Policy plugins: inputs and outputs validated, and learned state that survives every trap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pilot_core::{ArmId, ArmScore, ErrorKind, Policy, PolicyExt, Snapshot};
use pilot_plugin_host::{Limits, PluginError, PluginPolicy};
use rand_core::SeedableRng;
use rand_pcg::Pcg64;

const FAULT_PANIC: f32 = 1001.0;
const FAULT_LOOP: f32 = 1002.0;
const FAULT_ARM: f32 = 1003.0;
const FAULT_NAN: f32 = 1004.0;
const FAULT_SHORT: f32 = 1005.0;
const FAULT_ALLOC: f32 = 1006.0;
const FAULT_NOT_BEST: f32 = 1007.0;

fn limits() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        fuel_per_call: 20_000_000,
        checkpoint_every: 4,
        ..Limits::default()
    }
}

fn scores_of(p: &mut PluginPolicy) -> (ArmId, Vec<ArmScore<f32>>) {
    let mut rng = Pcg64::seed_from_u64(1);
    p.select_vec(&[0.5, 0.5], &mut rng).unwrap()
}

/// A policy with some learned state: 10 updates (two checkpoints at 4 and 8, two journaled).
fn trained() -> Option<PluginPolicy> {
    let plugin = common::load("misbehaving-policy", limits())?;
    let mut p = PluginPolicy::new(&plugin, "k=3 d=2").unwrap();
    assert_eq!((p.dim(), p.arm_count()), (2, 3));
    for i in 0..10u32 {
        let arm = ArmId(i % 3);
        let reward = if arm.0 == 1 { 1.0 } else { 0.25 };
        p.observe(arm, &[0.1, 0.2], reward).unwrap();
    }
    assert_eq!(p.journal_len(), 2);
    Some(p)
}

#[test]
fn learns_and_snapshots_round_trip() {
    let Some(mut p) = trained() else { return };
    let (arm, scores) = scores_of(&mut p);
    assert_eq!(arm, ArmId(1), "{scores:?}");
    assert!((scores[1].estimate - 1.0).abs() < 1e-6);
    let saved = p.save_vec().unwrap();
    p.observe(ArmId(0), &[0.0, 0.0], 1.0).unwrap();
    assert_ne!(scores_of(&mut p).1, scores);
    p.restore(&saved).unwrap();
    assert_eq!(scores_of(&mut p).1, scores);
}

#[test]
fn bad_snapshots_are_refused_and_change_nothing() {
    let Some(mut p) = trained() else { return };
    let before = scores_of(&mut p);
    let saved = p.save_vec().unwrap();
    let mut flipped = saved.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    for (bytes, kind) in [
        (&saved[..10], ErrorKind::Truncated),
        (&flipped[..], ErrorKind::ChecksumMismatch),
        (&b"XXXXXXXXXXXXXXXXXXXXXXXX"[..], ErrorKind::WrongFormat),
    ] {
        let err = p.restore(bytes).unwrap_err();
        assert_eq!(err.kind(), kind, "{:?}", p.last_error());
        assert_eq!(scores_of(&mut p), before);
    }
}

#[test]
fn input_is_checked_before_the_plugin_is_called() {
    let Some(mut p) = trained() else { return };
    let mut rng = Pcg64::seed_from_u64(2);
    let mut scores = [ArmScore::default(); 3];
    let kind = |e: pilot_core::Error| e.kind();
    assert_eq!(
        kind(p.select(&[0.1], &mut rng, &mut scores).unwrap_err()),
        ErrorKind::DimensionMismatch
    );
    assert_eq!(
        kind(
            p.select(&[f32::NAN, 0.0], &mut rng, &mut scores)
                .unwrap_err()
        ),
        ErrorKind::NonFinite
    );
    assert_eq!(
        kind(
            p.select(&[0.0, 0.0], &mut rng, &mut scores[..2])
                .unwrap_err()
        ),
        ErrorKind::DimensionMismatch
    );
    assert_eq!(
        kind(p.observe_reward(ArmId(3), 0.5).unwrap_err()),
        ErrorKind::UnknownArm
    );
    // The reward range is the plugin's to know; its refusal keeps its kind.
    let err = p.observe(ArmId(0), &[0.0, 0.0], 2.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    let err = p
        .select_with_costs(&[0.0, 0.0], &[0.1, -1.0, 0.2], &mut rng, &mut scores)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NegativeCost);
    assert_eq!(p.restarts(), 0);
}

trait ObserveReward {
    fn observe_reward(&mut self, arm: ArmId, reward: f32) -> pilot_core::Result<()>;
}

impl ObserveReward for PluginPolicy {
    fn observe_reward(&mut self, arm: ArmId, reward: f32) -> pilot_core::Result<()> {
        PolicyExt::observe(self, arm, &[0.0, 0.0], reward)
    }
}

#[test]
fn a_trap_mid_update_loses_nothing() {
    let Some(mut p) = trained() else { return };
    let before = scores_of(&mut p);
    // The plugin changes its state, then panics: none of that change may survive.
    let err = p.observe(ArmId(2), &[FAULT_PANIC, 0.0], 1.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginTrap, "{err}");
    assert_eq!(p.restarts(), 1);
    assert_eq!(scores_of(&mut p), before);
    let err = p.observe(ArmId(2), &[FAULT_LOOP, 0.0], 1.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginOutOfFuel, "{err}");
    assert_eq!(scores_of(&mut p), before);
    // And it keeps learning from where it was.
    p.observe(ArmId(2), &[0.0, 0.0], 1.0).unwrap();
    assert!(scores_of(&mut p).1[2].estimate > before.1[2].estimate);
}

#[test]
fn every_bad_selection_is_named_and_changes_nothing() {
    let Some(mut p) = trained() else { return };
    let before = scores_of(&mut p);
    let mut rng = Pcg64::seed_from_u64(3);
    let mut scores = [ArmScore::default(); 3];
    for (fault, kind, needle) in [
        (FAULT_PANIC, ErrorKind::PluginTrap, "router.select"),
        (FAULT_LOOP, ErrorKind::PluginOutOfFuel, "out of fuel"),
        (FAULT_ALLOC, ErrorKind::PluginMemoryLimit, "memory limit"),
        (
            FAULT_ARM,
            ErrorKind::PluginOutput,
            "chose arm 3 of a pool of 3",
        ),
        (FAULT_NAN, ErrorKind::PluginOutput, "not finite"),
        (
            FAULT_SHORT,
            ErrorKind::PluginOutput,
            "expected 3 scores, found 2",
        ),
        (
            FAULT_NOT_BEST,
            ErrorKind::PluginOutput,
            "has the highest score",
        ),
    ] {
        let err = p.select(&[fault, 0.0], &mut rng, &mut scores).unwrap_err();
        assert_eq!(err.kind(), kind, "fault {fault}: {:?}", p.last_error());
        let detailed = p.last_error().unwrap();
        assert!(detailed.to_string().contains(needle), "{detailed}");
        assert_eq!(scores_of(&mut p), before, "fault {fault}");
    }
    assert_eq!(p.restarts(), 3);
}

#[test]
fn an_embedder_is_not_a_policy() {
    let Some(plugin) = common::load("misbehaving-embedder", Limits::default()) else {
        return;
    };
    let err = PluginPolicy::new(&plugin, "").unwrap_err();
    assert!(matches!(err, PluginError::Abi(_)), "{err}");
}
