//! The LinUCB plugin against native LinUCB: same decisions and scores on the same seed, snapshots
//! that move between the two, and the conformance kit every policy must pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pilot_bandit::conformance::{KitOptions, check_policy};
use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_core::{ArmId, ArmScore, Policy, PolicyExt, RngCore, Snapshot};
use pilot_plugin_host::{Limits, PluginPolicy};
use rand_core::SeedableRng;
use rand_pcg::Pcg64;

const D: usize = 16;
const K: usize = 11;

fn context(rng: &mut Pcg64) -> Vec<f32> {
    (0..D)
        .map(|_| (rng.next_u32() as f32 / u32::MAX as f32) * 2.0 - 1.0)
        .collect()
}

fn native_linucb() -> LinUcbVec<f32> {
    LinUcbVec::new(LinUcb::params().check().unwrap(), K, D).unwrap()
}

#[test]
fn decisions_equal_native_linucb_on_the_same_seed() {
    let limits = Limits {
        checkpoint_every: 50,
        ..Limits::default()
    };
    let Some(plugin) = common::load("linucb-policy", limits) else {
        return;
    };
    let mut wasm = PluginPolicy::new(&plugin, &format!("d={D} k={K}")).unwrap();
    let mut native = native_linucb();
    let (mut rng_w, mut rng_n) = (Pcg64::seed_from_u64(42), Pcg64::seed_from_u64(42));
    let mut world = Pcg64::seed_from_u64(7);
    let mut differing_arms = std::collections::HashSet::new();
    for step in 0..300 {
        let x = context(&mut world);
        let (a_w, s_w) = wasm.select_vec(&x, &mut rng_w).unwrap();
        let (a_n, s_n) = native.select_vec(&x, &mut rng_n).unwrap();
        assert_eq!(a_w, a_n, "step {step}");
        let bits = |s: &[ArmScore<f32>]| {
            s.iter()
                .map(|s| (s.estimate.to_bits(), s.width.to_bits(), s.score.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&s_w), bits(&s_n), "step {step}");
        differing_arms.insert(a_n);
        // A reward that depends on the arm and the context, so the policies really learn.
        let reward = if (x[a_n.index() % D] > 0.0) == (a_n.0 % 2 == 0) {
            1.0
        } else {
            0.0
        };
        wasm.observe(a_w, &x, reward).unwrap();
        native.observe(a_n, &x, reward).unwrap();
    }
    assert!(
        differing_arms.len() > 3,
        "the run explored {differing_arms:?}"
    );
    // Snapshots are the native format: identical bytes, and they restore across the boundary.
    let w_bytes = wasm.save_vec().unwrap();
    let n_bytes = native.save_vec().unwrap();
    assert_eq!(w_bytes, n_bytes);
    let mut fresh = native_linucb();
    fresh.restore(&w_bytes).unwrap();
    let mut fresh_plugin = PluginPolicy::new(&plugin, &format!("d={D} k={K}")).unwrap();
    fresh_plugin.restore(&n_bytes).unwrap();
    let x = context(&mut world);
    let mut r = Pcg64::seed_from_u64(1);
    assert_eq!(
        fresh_plugin.select_vec(&x, &mut r).unwrap(),
        fresh.select_vec(&x, &mut Pcg64::seed_from_u64(1)).unwrap()
    );
}

#[test]
fn the_plugin_passes_the_conformance_kit() {
    let Some(plugin) = common::load("linucb-policy", Limits::default()) else {
        return;
    };
    let report = check_policy(
        || PluginPolicy::new(&plugin, "d=4 k=3").unwrap(),
        &KitOptions::<f32>::default(),
    );
    for c in &report.checks {
        eprintln!("{}: {:?}", c.name, c.result);
    }
    assert!(
        report.passed(),
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    assert!(report.checks.len() >= 5);
}

#[test]
fn bad_configurations_are_named() {
    let Some(plugin) = common::load("linucb-policy", Limits::default()) else {
        return;
    };
    for (config, needle) in [
        ("k=3", "d is required"),
        ("d=4 k=3 alpha=-1", "alpha"),
        ("d=4 k=3 flavour=mint", "unknown key"),
        ("d=4 k=3 lambda=zero", "lambda"),
    ] {
        let err = PluginPolicy::new(&plugin, config).unwrap_err();
        assert_eq!(
            err.kind(),
            pilot_core::ErrorKind::InvalidParameter,
            "{config}"
        );
        assert!(err.to_string().contains(needle), "{config}: {err}");
    }
    let p = PluginPolicy::new(&plugin, "d=4 k=3").unwrap();
    assert_eq!((p.dim(), p.arm_count()), (4, 3));
    let _ = ArmId(0);
}
