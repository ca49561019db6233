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

#[test]
fn a_wrong_function_type_in_a_policy_is_named_on_load() {
    let Some(path) = common::plugin_path("wrong-type-policy") else {
        return;
    };
    let err = common::engine().load_file(&path).unwrap_err();
    assert!(matches!(err, PluginError::Abi(_)), "{err}");
    let text = err.to_string();
    for needle in [
        "`[method]router.observe` of `pilot:plugin/policy@0.1.0` has the wrong type",
        "expected `func(self: borrow<router>, arm: u32, context: list<f32>, reward: f32) -> \
         result<_, failure>`",
        "found `func(self: borrow<router>, arm: u32, context: list<f32>, reward: f64) -> \
         result<_, failure>`",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    // The functions before it, records included (`select` returns `result<selection,
    // failure>`), matched: only the wrong one is named.
    assert!(!text.contains("router.select"), "{text}");
}

const FAULT_RECURSE: f32 = 1008.0;

/// Updates until one fails; returns how many succeeded and the error.
fn update_until_error(p: &mut PluginPolicy, max: usize) -> (usize, PluginError) {
    for i in 0..max {
        if let Err(e) = p.observe(ArmId((i % 3) as u32), &[0.1, 0.2], 0.5) {
            return (i, e);
        }
    }
    panic!("{max} updates and no error");
}

#[test]
fn failing_checkpoints_fail_the_policy_by_name_after_a_few_tries() {
    for (mode, needle) in [
        ("error", "asked to fail snapshot"),
        ("panic", "unreachable"),
        ("loop", "out of fuel"),
    ] {
        let Some(plugin) = common::load("misbehaving-policy", limits()) else {
            return;
        };
        let started = std::time::Instant::now();
        let mut p = PluginPolicy::new(&plugin, &format!("k=3 d=2 snapshot={mode}")).unwrap();
        // Checkpoints at updates 4, 5 and 6 fail; the third failure in a row fails the policy.
        let (ok, err) = update_until_error(&mut p, 100);
        assert_eq!(ok, 5, "{mode}: {err}");
        assert!(
            matches!(err, PluginError::CheckpointFailed { .. }),
            "{mode}: {err}"
        );
        let text = err.to_string();
        for n in [
            "misbehaving_policy.wasm",
            "failed for good",
            "3 checkpoints in a row failed",
            "router.snapshot",
            needle,
        ] {
            assert!(text.contains(n), "{mode}: {n} missing in {text}");
        }
        assert_eq!(p.failure().unwrap().to_string(), text);
        assert_eq!(p.journal_len(), 0, "the journal is dropped");
        // Every later call says the same, without calling the plugin again.
        let restarts = p.restarts();
        let mut rng = Pcg64::seed_from_u64(4);
        let mut scores = [ArmScore::default(); 3];
        p.select(&[0.1, 0.2], &mut rng, &mut scores).unwrap_err();
        assert_eq!(p.last_error().unwrap().to_string(), text);
        assert!(p.save_vec().is_err());
        assert_eq!(p.restarts(), restarts);
        eprintln!("snapshot={mode}: failed after {:?}", started.elapsed());
    }
}

#[test]
fn a_checkpoint_that_works_again_resets_the_count() {
    let Some(plugin) = common::load("misbehaving-policy", limits()) else {
        return;
    };
    // The first snapshot works (update 4); from the second on they fail: updates 8, 9, 10.
    let mut p = PluginPolicy::new(&plugin, "k=3 d=2 snapshot=error snapshot_from=1").unwrap();
    let (ok, err) = update_until_error(&mut p, 100);
    assert_eq!(ok, 9, "{err}");
    assert!(err.to_string().contains("3 checkpoints in a row"), "{err}");
    // Two failures then a restore (a new checkpoint) start the count again.
    let mut p = PluginPolicy::new(&plugin, "k=3 d=2 snapshot=error snapshot_from=1").unwrap();
    for i in 0..9u32 {
        p.observe(ArmId(i % 3), &[0.1, 0.2], 0.5).unwrap();
    }
    assert_eq!((p.checkpoint_failures(), p.journal_len()), (2, 5));
    let fresh = PluginPolicy::new(&plugin, "k=3 d=2").unwrap();
    p.restore(&fresh.save_vec().unwrap()).unwrap();
    assert_eq!((p.checkpoint_failures(), p.journal_len()), (0, 0));
}

#[test]
fn the_journal_is_capped_in_bytes_and_length() {
    let Some(plugin) = common::load("misbehaving-policy", limits()) else {
        return;
    };
    // Bytes: a large context fills 4 KiB within a few updates; the forced checkpoint fails.
    let bytes = plugin
        .with_limits(Limits {
            checkpoint_every: 64,
            checkpoint_failures: 100,
            journal_bytes: 4096,
            ..limits()
        })
        .unwrap();
    let mut p = PluginPolicy::new(&bytes, "k=3 d=256 snapshot=error").unwrap();
    let context = vec![0.1f32; 256];
    let mut failed = None;
    for i in 0..64u32 {
        if let Err(e) = p.observe(ArmId(i % 3), &context, 0.5) {
            failed = Some((i, e));
            break;
        }
        assert!(p.journal_bytes() < 4096 + 2048, "{}", p.journal_bytes());
    }
    let (at, err) = failed.unwrap();
    assert_eq!(at, 3, "{err}");
    assert!(
        err.to_string().contains("journal reached")
            && err.to_string().contains("`journal_bytes` = 4096"),
        "{err}"
    );
    // Length: checkpoints every 8, failing, with room for 10 failures but only 12 entries.
    let length = plugin
        .with_limits(Limits {
            checkpoint_every: 8,
            checkpoint_failures: 10,
            journal_len: 12,
            ..limits()
        })
        .unwrap();
    let mut p = PluginPolicy::new(&length, "k=3 d=2 snapshot=error").unwrap();
    let (ok, err) = update_until_error(&mut p, 100);
    assert_eq!(ok, 11, "{err}");
    assert!(
        err.to_string().contains("journal reached 12 updates"),
        "{err}"
    );
    // A journal cap below the checkpoint interval is refused.
    let err = Limits {
        checkpoint_every: 64,
        journal_len: 32,
        ..Limits::default()
    }
    .check()
    .unwrap_err();
    assert!(err.to_string().contains("journal_len"), "{err}");
}

#[test]
fn a_trap_in_select_keeps_its_reason() {
    let Some(mut p) = trained() else { return };
    let before = scores_of(&mut p);
    let mut rng = Pcg64::seed_from_u64(5);
    let mut scores = [ArmScore::default(); 3];
    let err = p
        .select(&[FAULT_RECURSE, 0.0], &mut rng, &mut scores)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginTrap);
    let detailed = p.last_error().unwrap().to_string();
    assert!(detailed.contains("router.select"), "{detailed}");
    assert!(detailed.contains("call stack exhausted"), "{detailed}");
    assert_eq!(scores_of(&mut p), before);
}

#[test]
fn a_create_error_is_escaped() {
    let Some(plugin) = common::load("misbehaving-policy", limits()) else {
        return;
    };
    let err = PluginPolicy::new(&plugin, "create=evil").unwrap_err();
    let text = err.to_string();
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(
        text.contains("\\nresult:  every check passed\\u{1b}[8m"),
        "{text}"
    );
}
